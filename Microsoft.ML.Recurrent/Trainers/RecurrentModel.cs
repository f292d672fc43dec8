using Microsoft.ML.Data;
using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Model;
using Microsoft.ML.Recurrent.Training;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// Everything a trained recurrent predictor needs at scoring time: how to read the feature column, the task, the
/// label's key values (multiclass) and the network. Persisted inside the transformer's entry of the model zip.
/// </summary>
internal sealed class RecurrentModel
{
    public SequenceInput Input { get; }
    public Objective Objective { get; }
    public RecurrentNetwork Network { get; }
    /// <summary>Label key values for multiclass (names of the classes), or null.</summary>
    public LabelKeyValues? LabelValues { get; }
    /// <summary>Rows scored together when a whole IDataView is transformed.</summary>
    public int ScoringBatchSize { get; }

    public RecurrentModel(SequenceInput input, Objective objective, RecurrentNetwork network, LabelKeyValues? labelValues, int scoringBatchSize)
    {
        Input = input;
        Objective = objective;
        Network = network;
        LabelValues = labelValues;
        ScoringBatchSize = scoringBatchSize;
    }

    /// <summary>Network outputs per row (classes for multiclass, 1 otherwise).</summary>
    public int OutputSize => Network.Config.OutputSize;

    // *** Binary format ***
    // int: objective (0 multiclass, 1 binary, 2 regression)
    // string: feature column name
    // int: key count (token input) or 0
    // int: features per step (dense input) or 0
    // int: maximum sequence length (0 = none)
    // int: scoring batch size
    // int: token map length M (0 = none; else KeyCount + 1), then M × int: embedding row of each key
    // byte: 1 when label key values follow, else 0; then LabelKeyValues
    // network: see NetworkSerializer
    public void Write(BinaryWriter writer)
    {
        writer.Write((int)Objective);
        writer.Write(Input.ColumnName);
        writer.Write(Input.KeyCount);
        writer.Write(Input.FeaturesPerStep);
        writer.Write(Input.MaximumLength);
        writer.Write(ScoringBatchSize);
        var map = Input.TokenMap ?? [];
        writer.Write(map.Length);
        foreach (int row in map) writer.Write(row);
        writer.Write(LabelValues is not null);
        LabelValues?.Write(writer);
        NetworkSerializer.Write(writer, Network);
    }

    /// <summary>Reads what <see cref="Write"/> wrote, validating every field.</summary>
    /// <exception cref="InvalidDataException">The data is invalid, truncated or corrupted.</exception>
    public static RecurrentModel Read(BinaryReader reader)
    {
        try
        {
            int objective = reader.ReadInt32();
            if (!Enum.IsDefined((Objective)objective))
                throw new InvalidDataException($"Unknown objective {objective}.");
            string column = reader.ReadString();
            if (column.Length == 0)
                throw new InvalidDataException("The feature column name is empty.");
            int keyCount = reader.ReadInt32(), featuresPerStep = reader.ReadInt32(), maximumLength = reader.ReadInt32(), batchSize = reader.ReadInt32();
            if (keyCount < 0 || featuresPerStep < 0 || (keyCount == 0) == (featuresPerStep == 0) || maximumLength < 0 || batchSize <= 0)
                throw new InvalidDataException("The recurrent model's input description is invalid.");
            int mapLength = reader.ReadInt32();
            if (mapLength != 0 && mapLength != keyCount + 1)
                throw new InvalidDataException($"The token map has {mapLength} entries for {keyCount} keys.");
            int[]? map = null;
            if (mapLength > 0)
            {
                map = new int[mapLength];
                for (int i = 0; i < mapLength; i++)
                {
                    map[i] = reader.ReadInt32();
                    if (map[i] < 0 || map[i] > i)
                        throw new InvalidDataException($"Invalid token map entry {map[i]} for key {i}.");
                }
            }
            var labels = reader.ReadBoolean() ? LabelKeyValues.Read(reader) : null;
            var network = NetworkSerializer.Read(reader);
            var input = new SequenceInput(column, keyCount, featuresPerStep, maximumLength, map);
            if (input.IsTokens ? network.Config.VocabularySize != input.VocabularySize : network.Config.InputSize != featuresPerStep || network.Config.TokenInput)
                throw new InvalidDataException("The network does not match the recorded input column.");
            if ((Objective)objective == Objective.Multiclass ? network.Config.OutputSize < 2 : network.Config.OutputSize != 1)
                throw new InvalidDataException("The network's output size does not match the task.");
            if (labels is not null && labels.Count != network.Config.OutputSize)
                throw new InvalidDataException("The label key values do not match the number of classes.");
            return new RecurrentModel(input, (Objective)objective, network, labels, batchSize);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException("The recurrent model data is truncated.", e);
        }
    }
}

/// <summary>The key values (class names) of a multiclass label column, of a primitive type, kept to rebuild PredictedLabel's annotation.</summary>
internal sealed class LabelKeyValues
{
    private enum Kind : byte { Text = 1, Single = 2, Double = 3, Int32 = 4, UInt32 = 5, Int64 = 6, Boolean = 7 }

    private readonly Kind _kind;
    private readonly string[] _values; // invariant-culture text of each value

    /// <summary>Number of values (= classes).</summary>
    public int Count => _values.Length;

    private LabelKeyValues(Kind kind, string[] values)
    {
        _kind = kind;
        _values = values;
    }

    /// <summary>The KeyValues annotation of a label column, or null when it has none of a supported type.</summary>
    public static LabelKeyValues? FromColumn(DataViewSchema.Column label)
    {
        var annotation = label.Annotations.Schema.GetColumnOrNull(AnnotationUtils.Kinds.KeyValues);
        if (annotation is not { Type: VectorDataViewType vector })
            return null;
        var item = vector.ItemType;
        if (item is TextDataViewType) return Get<ReadOnlyMemory<char>>(label, Kind.Text, v => v.ToString());
        if (item == NumberDataViewType.Single) return Get<float>(label, Kind.Single, v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
        if (item == NumberDataViewType.Double) return Get<double>(label, Kind.Double, v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
        if (item == NumberDataViewType.Int32) return Get<int>(label, Kind.Int32, v => v.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (item == NumberDataViewType.UInt32) return Get<uint>(label, Kind.UInt32, v => v.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (item == NumberDataViewType.Int64) return Get<long>(label, Kind.Int64, v => v.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (item is BooleanDataViewType) return Get<bool>(label, Kind.Boolean, v => v ? "True" : "False");
        return null;
    }

    private static LabelKeyValues Get<T>(DataViewSchema.Column label, Kind kind, Func<T, string> format)
    {
        VBuffer<T> values = default;
        label.GetKeyValues(ref values);
        return new LabelKeyValues(kind, values.DenseValues().Select(format).ToArray());
    }

    /// <summary>Adds the KeyValues annotation to <paramref name="builder"/>.</summary>
    public void AddTo(DataViewSchema.Annotations.Builder builder)
    {
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        switch (_kind)
        {
            case Kind.Text: Add(builder, TextDataViewType.Instance, _values.Select(v => v.AsMemory()).ToArray()); break;
            case Kind.Single: Add(builder, NumberDataViewType.Single, _values.Select(v => float.Parse(v, inv)).ToArray()); break;
            case Kind.Double: Add(builder, NumberDataViewType.Double, _values.Select(v => double.Parse(v, inv)).ToArray()); break;
            case Kind.Int32: Add(builder, NumberDataViewType.Int32, _values.Select(v => int.Parse(v, inv)).ToArray()); break;
            case Kind.UInt32: Add(builder, NumberDataViewType.UInt32, _values.Select(v => uint.Parse(v, inv)).ToArray()); break;
            case Kind.Int64: Add(builder, NumberDataViewType.Int64, _values.Select(v => long.Parse(v, inv)).ToArray()); break;
            case Kind.Boolean: Add(builder, BooleanDataViewType.Instance, _values.Select(v => v == "True").ToArray()); break;
        }
    }

    /// <summary>Class names as text (for slot names of the score vector).</summary>
    public ReadOnlyMemory<char>[] Names => _values.Select(v => v.AsMemory()).ToArray();

    private static void Add<T>(DataViewSchema.Annotations.Builder builder, PrimitiveDataViewType type, T[] values)
    {
        ValueGetter<VBuffer<T>> getter = (ref VBuffer<T> dst) => new VBuffer<T>(values.Length, values).CopyTo(ref dst);
        builder.AddKeyValues(values.Length, type, getter);
    }

    public void Write(BinaryWriter writer)
    {
        writer.Write((byte)_kind);
        writer.Write(_values.Length);
        foreach (var v in _values) writer.Write(v);
    }

    public static LabelKeyValues Read(BinaryReader reader)
    {
        var kind = (Kind)reader.ReadByte();
        if (!Enum.IsDefined(kind)) throw new InvalidDataException($"Unknown label key value type {(byte)kind}.");
        int count = reader.ReadInt32();
        if (count < 2 || count > 1 << 24) throw new InvalidDataException($"Invalid number of label values {count}.");
        var values = new string[count];
        for (int i = 0; i < count; i++) values[i] = reader.ReadString();
        return new LabelKeyValues(kind, values);
    }
}
