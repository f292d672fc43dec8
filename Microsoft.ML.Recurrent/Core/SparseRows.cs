namespace Microsoft.ML.Recurrent.Core;

/// <summary>
/// Rows of a sparse matrix [R, F] in compressed-row form: row r holds the values <see cref="Values"/>[k] at columns
/// <see cref="Indices"/>[k] for k in [<see cref="Starts"/>[r], <see cref="Starts"/>[r + 1]). Column indices within a
/// row are distinct and inside [0, F).
/// </summary>
internal sealed class SparseRows
{
    /// <summary>First entry of each row, [R + 1].</summary>
    public int[] Starts { get; }

    /// <summary>Column of each entry.</summary>
    public int[] Indices { get; }

    /// <summary>Value of each entry.</summary>
    public float[] Values { get; }

    /// <summary>Number of rows R.</summary>
    public int Count => Starts.Length - 1;

    /// <summary>Wraps the arrays (no copy) after checking that they fit together and that every column is in [0, <paramref name="width"/>).</summary>
    public SparseRows(int[] starts, int[] indices, float[] values, int width)
    {
        if (starts.Length == 0 || starts[0] != 0 || starts[^1] != indices.Length || indices.Length != values.Length)
            throw new ArgumentException("The row starts, indices and values do not fit together.", nameof(starts));
        for (int r = 1; r < starts.Length; r++)
            if (starts[r] < starts[r - 1]) throw new ArgumentException($"Row {r - 1} ends before it starts.", nameof(starts));
        foreach (int i in indices)
            if ((uint)i >= (uint)width) throw new ArgumentOutOfRangeException(nameof(indices), i, $"A column index is outside [0, {width}).");
        Starts = starts;
        Indices = indices;
        Values = values;
    }

    /// <summary>The given rows (copied), in the given order.</summary>
    public SparseRows Subset(IReadOnlyList<int> rows, int width)
    {
        var starts = new int[rows.Count + 1];
        for (int i = 0; i < rows.Count; i++) starts[i + 1] = checked(starts[i] + Starts[rows[i] + 1] - Starts[rows[i]]);
        var indices = new int[starts[^1]];
        var values = new float[starts[^1]];
        for (int i = 0; i < rows.Count; i++)
        {
            int from = Starts[rows[i]], count = Starts[rows[i] + 1] - from;
            Array.Copy(Indices, from, indices, starts[i], count);
            Array.Copy(Values, from, values, starts[i], count);
        }
        return new SparseRows(starts, indices, values, width);
    }
}
