using Microsoft.ML.Data;
using Microsoft.ML.Recurrent.Model;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// The wide features of a wide &amp; deep model: a known-size vector of <see cref="float"/> per row (for example ML.NET's
/// <c>FeaturizeText</c> output, large and sparse), read as its non-zero entries and never densified.
/// </summary>
internal sealed class WideInput
{
    /// <summary>The column's name.</summary>
    public string ColumnName { get; }

    /// <summary>Values per row F.</summary>
    public int Size { get; }

    public WideInput(string columnName, int size)
    {
        ColumnName = columnName;
        Size = size;
    }

    /// <summary>The wide input for a column of <paramref name="schema"/>; throws naming the column when it is missing or not a known-size vector of Single.</summary>
    public static WideInput FromSchema(DataViewSchema schema, string columnName)
    {
        var column = schema.GetColumnOrNull(columnName)
            ?? throw new ArgumentOutOfRangeException(nameof(columnName), $"Wide feature column '{BoundedReader.Printable(columnName)}' not found in the input schema.");
        if (column.Type is not VectorDataViewType { ItemType: var item, Size: > 0 and <= 1 << 26 } vector || item != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(nameof(columnName), $"Wide feature column '{BoundedReader.Printable(columnName)}' has type {column.Type}; expected a vector of Single of known size (at most 2^26), such as FeaturizeText's output.");
        return new WideInput(columnName, vector.Size);
    }

    /// <summary>The column's index in a scoring-time schema, after checking that it has the trained type and size.</summary>
    public int ColumnIndex(DataViewSchema schema)
    {
        var other = FromSchema(schema, ColumnName);
        if (other.Size != Size)
            throw new ArgumentOutOfRangeException(nameof(schema), $"Wide feature column '{BoundedReader.Printable(ColumnName)}' has {other.Size} values per row, but the model was trained on {Size}. Score with the featurizer the model was trained with.");
        return schema[ColumnName].Index;
    }

    /// <summary>
    /// Appends a row's non-zero entries (column, value). Never throws on the row's content: a NaN or infinite value, or a
    /// vector of another length, is <see cref="RowStatus.Invalid"/> (nothing is added; <paramref name="problem"/> names
    /// the slot).
    /// </summary>
    public RowStatus Read(in VBuffer<float> value, List<int> indices, List<float> values, out string? problem)
    {
        problem = null;
        if (value.Length != Size)
        {
            problem = $"the wide feature vector in column '{ColumnName}' has {value.Length} values; expected {Size}";
            return RowStatus.Invalid;
        }
        int before = indices.Count;
        var stored = value.GetValues();
        var where = value.GetIndices();
        for (int k = 0; k < stored.Length; k++)
        {
            float v = stored[k];
            int slot = value.IsDense ? k : where[k];
            if (!float.IsFinite(v))
            {
                indices.RemoveRange(before, indices.Count - before);
                values.RemoveRange(before, values.Count - before);
                problem = $"slot {slot} of the wide feature column '{ColumnName}' is {v}";
                return RowStatus.Invalid;
            }
            if (v == 0) continue;
            indices.Add(slot);
            values.Add(v);
        }
        return RowStatus.Valid;
    }

    // string: column name; i32: size
    public void Write(BinaryWriter writer)
    {
        writer.Write(ColumnName);
        writer.Write(Size);
    }

    public static WideInput Read(BoundedReader reader)
    {
        string name = reader.ReadString("wide feature column name", 1024);
        if (name.Length == 0) throw reader.Error("wide feature column name", "is empty.");
        return new WideInput(name, reader.ReadInt32("wide feature count", 1, 1 << 26));
    }
}
