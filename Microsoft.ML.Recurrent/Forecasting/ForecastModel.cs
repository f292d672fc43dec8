using Microsoft.ML.Recurrent.Model;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// Everything a trained forecaster needs at scoring time: the column names by role, each column's global scaling
/// (the training rows' mean and standard deviation), the layout (look-back, horizon, segments, window normalization,
/// quantiles) and the inference-only network. Persisted inside the transformer's entry of the model zip and in engine
/// checkpoints. Thread-safe: every <see cref="Scorer"/> has its own activations over the shared weights.
/// </summary>
internal sealed class ForecastModel
{
    /// <summary>Largest look-back plus horizon a model may record.</summary>
    public const int MaxWindow = 1 << 20;

    /// <summary>Largest number of columns a model may record.</summary>
    public const int MaxColumns = 1 << 12;

    /// <summary>Largest (look-back + horizon) × columns a model may record: the size of a forecast's row buffer.</summary>
    public const long MaxWindowValues = 1 << 26;

    public string[] TargetNames { get; }
    public string[] PastNames { get; }
    public string[] FutureNames { get; }
    /// <summary>Global scaling of each column (targets, past, future): z = (x − mean) / scale.</summary>
    public float[] Means { get; }
    public float[] Scales { get; }
    public ForecastLayout Layout { get; }
    public RecurrentNetwork Network { get; }

    public ForecastModel(string[] targetNames, string[] pastNames, string[] futureNames, float[] means, float[] scales,
        ForecastLayout layout, RecurrentNetwork network)
    {
        int c = targetNames.Length + pastNames.Length + futureNames.Length;
        if (means.Length != c || scales.Length != c) throw new ArgumentException("One mean and one scale per column are needed.", nameof(means));
        if (layout.Targets != targetNames.Length || layout.PastCovariates != pastNames.Length || layout.FutureCovariates != futureNames.Length)
            throw new ArgumentException("The layout does not match the columns.", nameof(layout));
        if (!network.WeightsFrozen) throw new ArgumentException("A model holds an inference-only network.", nameof(network));
        TargetNames = targetNames;
        PastNames = pastNames;
        FutureNames = futureNames;
        Means = means;
        Scales = scales;
        Layout = layout;
        Network = network;
    }

    /// <summary>All column names in the series' order: targets, past covariates, future covariates.</summary>
    public IEnumerable<string> ColumnNames => TargetNames.Concat(PastNames).Concat(FutureNames);

    /// <summary>Rows a forecast reads: the look-back, plus the horizon's rows of the future covariates when there are any.</summary>
    public int RowsRead => Layout.LookBack + (Layout.FutureCovariates > 0 ? Layout.Horizon : 0);

    /// <summary>Whether the model forecasts an interval (its first and last quantile) beside the point forecast.</summary>
    public bool HasInterval => Layout.Quantiles.Length >= 2;

    // *** Binary format *** (see docs/model-format.md)
    // i32 × 3: target, past-covariate and future-covariate column counts; then each name (string)
    // f32 × C: means; f32 × C: scales
    // i32: look-back, horizon, segment length, window normalization
    // i32: quantile count Q; f32 × Q: quantiles
    // network: see NetworkSerializer
    public void Write(BinaryWriter writer)
    {
        writer.Write(TargetNames.Length);
        writer.Write(PastNames.Length);
        writer.Write(FutureNames.Length);
        foreach (var name in ColumnNames) writer.Write(name);
        foreach (float m in Means) writer.Write(m);
        foreach (float s in Scales) writer.Write(s);
        writer.Write(Layout.LookBack);
        writer.Write(Layout.Horizon);
        writer.Write(Layout.SegmentLength);
        writer.Write((int)Layout.Normalization);
        writer.Write(Layout.Quantiles.Length);
        foreach (float q in Layout.Quantiles) writer.Write(q);
        NetworkSerializer.Write(writer, Network);
    }

    /// <summary>Reads a model written by <see cref="Write"/>; every size and value is checked before use.</summary>
    /// <exception cref="InvalidDataException">The data is truncated, corrupted or inconsistent; the message names the field.</exception>
    public static ForecastModel Read(BoundedReader reader)
    {
        int ct = reader.ReadInt32("target column count", 1, MaxColumns);
        int cp = reader.ReadInt32("past-covariate column count", 0, MaxColumns);
        int cf = reader.ReadInt32("future-covariate column count", 0, MaxColumns);
        int c = ct + cp + cf;
        if (c > MaxColumns) throw reader.Error("column counts", $"add up to {c}, more than {MaxColumns}.");
        var names = new string[c];
        for (int i = 0; i < c; i++)
        {
            names[i] = reader.ReadString("column name", 1024);
            if (names[i].Length == 0) throw reader.Error("column name", "is empty.");
        }
        if (names.Distinct(StringComparer.Ordinal).Count() != c) throw reader.Error("column names", "repeat a name.");
        var means = new float[c];
        var scales = new float[c];
        reader.ReadSingles("column means", means);
        reader.ReadSingles("column scales", scales);
        for (int i = 0; i < c; i++)
            if (!float.IsFinite(means[i]) || !(scales[i] > 0) || !float.IsFinite(scales[i]))
                throw reader.Error("column scaling", $"of '{BoundedReader.Printable(names[i])}' is ({means[i]}, {scales[i]}); a finite mean and a positive finite scale are needed.");
        int lookBack = reader.ReadInt32("look-back", 1, MaxWindow);
        int horizon = reader.ReadInt32("horizon", 1, MaxWindow);
        if ((long)(lookBack + horizon) * c > MaxWindowValues)
            throw reader.Error("look-back and horizon", $"are {lookBack} and {horizon} over {c} columns: ({lookBack} + {horizon}) × {c} values exceed {MaxWindowValues:N0}.");
        int segment = reader.ReadInt32("segment length", 1, lookBack);
        int normalization = reader.ReadInt32("window normalization", 0, 2);
        int q = reader.ReadInt32("quantile count", 0, 64);
        var quantiles = new float[q];
        reader.ReadSingles("quantiles", quantiles);
        var layout = new ForecastLayout
        {
            LookBack = lookBack, Horizon = horizon, SegmentLength = segment, Targets = ct, PastCovariates = cp, FutureCovariates = cf,
            Normalization = (WindowNormalization)normalization, Quantiles = quantiles,
        };
        try
        {
            layout.Validate();
        }
        catch (ArgumentException e)
        {
            throw reader.Error("forecast layout", "is invalid: " + e.Message);
        }
        var network = NetworkSerializer.Read(reader);
        var n = network.Config;
        if (n.Head != NetworkHeadKind.Forecast || n.TokenInput || n.Bidirectional || n.InputSize != layout.FeaturesPerStep || n.OutputSize != layout.OutputSize
            || n.ForecastSteps != layout.Steps || (n.SkipColumns != 0 && n.SkipColumns != segment) || n.StaticSize != layout.StaticSize)
            throw reader.Error("network", $"does not fit the forecast layout (look-back {lookBack}, horizon {horizon}, segments of {segment}, {c} columns).");
        return new ForecastModel(names[..ct], names[ct..(ct + cp)], names[(ct + cp)..], means, scales, layout, network);
    }

    /// <summary>
    /// Forecasts from raw rows; one per thread (it owns activations and buffers). Not thread-safe itself.
    /// </summary>
    public sealed class Scorer(ForecastModel model)
    {
        private readonly RecurrentNetwork _network = model.Network.CreateInferenceSibling();
        private readonly ForecastBatch _batch = new(model.Layout);
        private readonly float[] _series = new float[(model.Layout.LookBack + model.Layout.Horizon) * model.Layout.Columns];
        private readonly float[] _outputs = new float[model.Layout.Targets * model.Layout.OutputSize];
        private readonly int[] _starts = Enumerable.Repeat(model.Layout.LookBack, model.Layout.Targets).ToArray();
        private readonly int[] _channels = Enumerable.Range(0, model.Layout.Targets).ToArray();

        /// <summary>Threads for the network (results do not depend on it).</summary>
        public int Threads
        {
            get => _network.Threads;
            set => _network.Threads = value;
        }

        /// <summary>
        /// Forecasts from <paramref name="rows"/> [RowsRead, C] in raw units (row-major, the model's column order): the
        /// look-back rows, then — with future covariates — the horizon's rows, whose target and past-covariate cells are
        /// not read. Writes <paramref name="forecast"/> [Ct·H] (target-major) and, for an interval model, the bounds.
        /// Returns the row and column of the first missing (NaN or infinite) value read, or (−1, −1) when none; then
        /// the outputs are NaN.
        /// </summary>
        public (int Row, int Column) Forecast(ReadOnlySpan<float> rows, Span<float> forecast, Span<float> lower, Span<float> upper)
        {
            var l = model.Layout;
            int c = l.Columns, ct = l.Targets, h = l.Horizon, o = l.OutputSize;
            // The look-back rows' targets and past covariates, and the horizon rows' future covariates: nothing else is read.
            for (int r = 0; r < model.RowsRead; r++)
                for (int k = r < l.LookBack ? 0 : ct + l.PastCovariates, end = r < l.LookBack ? ct + l.PastCovariates : c; k < end; k++)
                {
                    float v = rows[r * c + k];
                    if (!float.IsFinite(v))
                    {
                        forecast.Fill(float.NaN);
                        lower.Fill(float.NaN);
                        upper.Fill(float.NaN);
                        return (r, k);
                    }
                    _series[r * c + k] = (v - model.Means[k]) / model.Scales[k];
                }
            _batch.Fill(_series, _starts, _channels, withTargets: false);
            _network.Forward(_batch.Batch, _batch.Data, _outputs);
            _batch.Restore(_outputs);
            int q = l.Quantiles.Length;
            for (int t = 0; t < ct; t++)
            {
                var row = _outputs.AsSpan(t * o, o);
                float mean = model.Means[t], scale = model.Scales[t];
                for (int r = 0; r < h; r++)
                {
                    forecast[t * h + r] = row[r] * scale + mean;
                    if (q >= 2 && !lower.IsEmpty)
                    {
                        // Independent quantile outputs can cross; the interval is the lowest and highest of them
                        // (sorting the quantile forecasts, Chernozhukov et al. 2010, only ever narrows the error).
                        float lo = float.MaxValue, hi = float.MinValue;
                        for (int k = 1; k <= q; k++)
                        {
                            float v = row[k * h + r];
                            lo = Math.Min(lo, v);
                            hi = Math.Max(hi, v);
                        }
                        lower[t * h + r] = lo * scale + mean;
                        upper[t * h + r] = hi * scale + mean;
                    }
                }
            }
            return (-1, -1);
        }
    }
}
