using System.Globalization;

namespace Forecasting;

/// <summary>
/// ETTh1 under the long-horizon protocol: rows 0–8,639 train, 8,640–11,519 validation, 11,520–14,399 test (12/4/4
/// months of 30 days); every variable z-scored with the training rows' mean and (sample) standard deviation, as the
/// reference code's StandardScaler does (population std; the difference is negligible at 8,640 rows).
/// </summary>
internal sealed class Ett
{
    public const int TrainEnd = 12 * 30 * 24, ValidationEnd = TrainEnd + 4 * 30 * 24, TestEnd = ValidationEnd + 4 * 30 * 24;

    /// <summary>Column names in file order (OT, the oil temperature, last).</summary>
    public string[] Columns { get; private init; } = [];

    /// <summary>Normalized values [T, C], row-major, rows 0 to TestEnd.</summary>
    public float[] Values { get; private init; } = [];

    public int Rows => Values.Length / Columns.Length;

    public static string? Find()
    {
        foreach (var dir in new[] { Environment.GetEnvironmentVariable("RECURRENT_DATASETS"), Path.Combine(Accuracy.Machine.RepositoryRoot(), "..", "shared", "datasets") })
            if (dir is not null && File.Exists(Path.Combine(dir, "ett", "ETTh1.csv"))) return Path.Combine(dir, "ett", "ETTh1.csv");
        return null;
    }

    public static Ett Load(string path)
    {
        var lines = File.ReadAllLines(path);
        var columns = lines[0].Split(',')[1..];
        int c = columns.Length;
        var raw = new double[TestEnd, c];
        for (int r = 0; r < TestEnd; r++)
        {
            var parts = lines[r + 1].Split(',');
            for (int k = 0; k < c; k++) raw[r, k] = double.Parse(parts[k + 1], CultureInfo.InvariantCulture);
        }
        var values = new float[TestEnd * c];
        for (int k = 0; k < c; k++)
        {
            double mean = 0, squares = 0;
            for (int r = 0; r < TrainEnd; r++) mean += raw[r, k];
            mean /= TrainEnd;
            for (int r = 0; r < TrainEnd; r++) squares += (raw[r, k] - mean) * (raw[r, k] - mean);
            double std = Math.Sqrt(squares / TrainEnd);
            for (int r = 0; r < TestEnd; r++) values[r * c + k] = (float)((raw[r, k] - mean) / std);
        }
        return new Ett { Columns = columns, Values = values };
    }
}
