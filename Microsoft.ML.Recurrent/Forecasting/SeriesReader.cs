using Microsoft.ML.Data;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// Reads the numeric columns of a series held as an <see cref="IDataView"/> (one row per time step, in time order)
/// into one row-major matrix [T, C] — the only copy training makes. Columns may be <see cref="float"/> or
/// <see cref="double"/>.
/// </summary>
internal static class SeriesReader
{
    /// <summary>The getters of <paramref name="names"/> on <paramref name="row"/>, as float readers.</summary>
    public static Func<float>[] Getters(DataViewRow row, IReadOnlyList<string> names)
    {
        var getters = new Func<float>[names.Count];
        for (int i = 0; i < names.Count; i++)
        {
            var column = row.Schema[names[i]];
            if (column.Type == NumberDataViewType.Single)
            {
                var g = row.GetGetter<float>(column);
                float v = 0;
                getters[i] = () => { g(ref v); return v; };
            }
            else
            {
                var g = row.GetGetter<double>(column);
                double v = 0;
                getters[i] = () => { g(ref v); return (float)v; };
            }
        }
        return getters;
    }

    /// <summary>Checks that every column exists and is a float or double scalar; the message names the column and its role.</summary>
    public static void CheckColumns(DataViewSchema schema, IReadOnlyList<string> names, IReadOnlyList<string> roles, string data)
    {
        for (int i = 0; i < names.Count; i++)
        {
            var column = schema.GetColumnOrNull(names[i])
                ?? throw new ArgumentOutOfRangeException(nameof(schema), $"The {roles[i]} column '{names[i]}' is not in the {data}.");
            if (column.Type != NumberDataViewType.Single && column.Type != NumberDataViewType.Double)
                throw new ArgumentOutOfRangeException(nameof(schema), $"The {roles[i]} column '{names[i]}' of the {data} has type {column.Type}; a forecaster reads Single or Double values.");
        }
    }

    /// <summary>
    /// Reads every row of <paramref name="data"/>: [T, C] in the order of <paramref name="names"/>. A NaN or infinite
    /// value is refused with its row and column (impute it first, e.g. with ML.NET's <c>ReplaceMissingValues</c>).
    /// </summary>
    public static float[] Read(IDataView data, IReadOnlyList<string> names, IReadOnlyList<string> roles, string description, Action? checkAlive = null)
    {
        CheckColumns(data.Schema, names, roles, description);
        int c = names.Count;
        var values = new List<float>();
        using var cursor = data.GetRowCursor(names.Select(n => data.Schema[n]));
        var getters = Getters(cursor, names);
        long row = 0;
        while (cursor.MoveNext())
        {
            if ((row & 0xFFF) == 0) checkAlive?.Invoke();
            for (int k = 0; k < c; k++)
            {
                float v = getters[k]();
                if (!float.IsFinite(v))
                    throw new InvalidOperationException($"The {roles[k]} column '{names[k]}' of the {description} has {(float.IsNaN(v) ? "a missing value (NaN)" : $"the value {v}")} at row {row}. " +
                        "The forecaster does not impute: fill the gap first, e.g. with mlContext.Transforms.ReplaceMissingValues, or cut the series.");
                values.Add(v);
            }
            row++;
            if ((long)values.Count > int.MaxValue - c)
                throw new InvalidOperationException($"The {description} holds more than {int.MaxValue / c:N0} rows of {c} columns; forecast a shorter history.");
        }
        return values.ToArray();
    }
}
