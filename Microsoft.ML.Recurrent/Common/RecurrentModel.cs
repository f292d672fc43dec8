using Microsoft.ML.Data;
using Microsoft.ML.Recurrent.Model;
using Microsoft.ML.Recurrent.Training;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// Everything a trained recurrent predictor needs at scoring time: how to read the feature column, the task, the
/// label's key values (multiclass), the hash of the feature column's vocabulary and the network (inference-only: no
/// gradients, optimizer state or training workspaces). Persisted inside the transformer's entry of the model zip.
/// </summary>
internal sealed class RecurrentModel
{
    /// <summary>Largest scoring batch size a model may record (training refuses larger batch sizes).</summary>
    public const int MaxBatchSize = 1 << 20;

    /// <summary>Largest thread count a model may record.</summary>
    public const int MaxThreads = 1 << 10;

    public SequenceInput Input { get; }
    public Objective Objective { get; }
    public RecurrentNetwork Network { get; }
    /// <summary>Label key values for multiclass (names of the classes), or null.</summary>
    public LabelKeyValues? LabelValues { get; }
    /// <summary>Rows scored together when a whole IDataView is transformed.</summary>
    public int ScoringBatchSize { get; }
    /// <summary>The trainer's <c>NumberOfThreads</c>, or 0 for "all processors".</summary>
    public int NumberOfThreads { get; }
    /// <summary>SHA-256 of the feature column's key values at training (see <see cref="VocabularyHash"/>), or null when the column had none.</summary>
    public byte[]? Vocabulary { get; }

    public RecurrentModel(SequenceInput input, Objective objective, RecurrentNetwork network, LabelKeyValues? labelValues,
        int scoringBatchSize, int numberOfThreads, byte[]? vocabulary)
    {
        if (!network.WeightsFrozen || network.Parameters.Gradients.Length != 0)
            throw new ArgumentException("A model holds an inference-only network.", nameof(network));
        Input = input;
        Objective = objective;
        Network = network;
        LabelValues = labelValues;
        ScoringBatchSize = scoringBatchSize;
        NumberOfThreads = numberOfThreads;
        Vocabulary = vocabulary;
    }

    /// <summary>Network outputs per row (classes for multiclass, 1 otherwise).</summary>
    public int OutputSize => Network.Config.OutputSize;

    /// <summary>Threads a scorer may use: <see cref="NumberOfThreads"/>, or all processors when it is 0.</summary>
    public int ScoringThreads => NumberOfThreads > 0 ? NumberOfThreads : Environment.ProcessorCount;

    // *** Binary format *** (the payload of the entry's integrity envelope, see ModelEntry)
    // i32: objective (0 multiclass, 1 binary, 2 regression)
    // string: feature column name
    // i32: key count (token input) or 0
    // i32: features per step (dense input) or 0
    // i32: maximum sequence length (0 = none)
    // i32: scoring batch size
    // i32: number of threads (0 = all processors)                                   (since 0x00010002)
    // i32: token map length M (0 = none; else KeyCount + 1), then M × i32: embedding row of each key
    // u8: 1 when a vocabulary hash follows, else 0; then 32 bytes: SHA-256            (since 0x00010002)
    // u8: 1 when a character input follows, else 0; then CharacterInput               (since 0x00010003)
    // u8: 1 when a wide input follows, else 0; then WideInput                         (since 0x00010004)
    // u8: 1 when label key values follow, else 0; then LabelKeyValues
    // network: see NetworkSerializer
    public void Write(BinaryWriter writer)
    {
        writer.Write((int)Objective);
        writer.Write(Input.ColumnName);
        writer.Write(Input.KeyCount);
        writer.Write(Input.FeaturesPerStep);
        writer.Write(Input.MaximumLength);
        writer.Write(ScoringBatchSize);
        writer.Write(NumberOfThreads);
        var map = Input.TokenMap ?? [];
        writer.Write(map.Length);
        foreach (int row in map) writer.Write(row);
        writer.Write(Vocabulary is not null);
        if (Vocabulary is not null) writer.Write(Vocabulary);
        writer.Write(Input.Characters is not null);
        Input.Characters?.Write(writer);
        writer.Write(Input.Wide is not null);
        Input.Wide?.Write(writer);
        writer.Write(LabelValues is not null);
        LabelValues?.Write(writer);
        NetworkSerializer.Write(writer, Network);
    }

    /// <summary>
    /// Reads what <see cref="Write"/> wrote (<paramref name="version"/> 4), or the layouts of model versions 3 (no
    /// wide input), 2 (no character input) and 1 (no thread count, no vocabulary hash either), range-checking every field against what training can produce. The task's own fields
    /// may follow; the caller reads them and then checks that nothing else is left.
    /// </summary>
    /// <exception cref="InvalidDataException">The data is invalid, truncated or corrupted; the message names the field.</exception>
    public static RecurrentModel Read(BoundedReader reader, int version)
    {
        int objective = reader.ReadInt32("objective");
        if (!Enum.IsDefined((Objective)objective))
            throw reader.Error("objective", $"is {objective}; expected 0 (multiclass), 1 (binary) or 2 (regression).");
        string column = reader.ReadString("feature column name", 1024);
        if (column.Length == 0)
            throw reader.Error("feature column name", "is empty.");
        int keyCount = reader.ReadInt32("key count", 0, int.MaxValue - 1);
        int featuresPerStep = reader.ReadInt32("features per step", 0, 1 << 26);
        if ((keyCount == 0) == (featuresPerStep == 0))
            throw reader.Error("input description", $"has key count {keyCount} and features per step {featuresPerStep}; exactly one must be positive.");
        int maximumLength = reader.ReadInt32("maximum sequence length", 0, int.MaxValue);
        int batchSize = reader.ReadInt32("scoring batch size", 1, MaxBatchSize);
        int threads = version >= 2 ? reader.ReadInt32("number of threads", 0, MaxThreads) : 0;
        int mapLength = reader.ReadCount("token map length", sizeof(int), int.MaxValue);
        if (mapLength != 0 && mapLength != (long)keyCount + 1)
            throw reader.Error("token map length", $"is {mapLength} for {keyCount} keys; expected 0 or {(long)keyCount + 1}.");
        int[]? map = null;
        if (mapLength > 0)
        {
            map = new int[mapLength];
            for (int i = 0; i < mapLength; i++)
            {
                // Rows are handed out in key order: key i maps to 0 (unknown) or to at most i.
                map[i] = reader.ReadInt32("token map entry");
                if (map[i] < 0 || map[i] > i)
                    throw reader.Error("token map entry", $"{map[i]} for key {i} is invalid; expected 0 to {i}.");
            }
        }
        byte[]? vocabulary = null;
        if (version >= 2 && reader.ReadBoolean("vocabulary hash flag"))
            vocabulary = reader.ReadBytes("vocabulary hash", VocabularyHash.Size);
        var characters = version >= 3 && reader.ReadBoolean("character input flag") ? CharacterInput.Read(reader) : null;
        var wide = version >= 4 && reader.ReadBoolean("wide input flag") ? WideInput.Read(reader) : null;
        var labels = reader.ReadBoolean("label values flag") ? LabelKeyValues.Read(reader) : null;
        var network = NetworkSerializer.Read(reader);
        var input = new SequenceInput(column, keyCount, featuresPerStep, maximumLength, map, characters, wide);
        if ((wide?.Size ?? 0) != network.Config.WideSize)
            throw reader.Error("wide input", $"has {wide?.Size ?? 0} features, but the network's wide part has {network.Config.WideSize}.");
        if ((characters is null) != (network.Config.CharacterVocabularySize == 0)
            || characters is not null && (characters.VocabularySize != network.Config.CharacterVocabularySize || !input.IsTokens))
            throw reader.Error("character input", "does not match the network's character encoder.");
        if (input.IsTokens ? network.Config.VocabularySize != input.VocabularySize : network.Config.InputSize != featuresPerStep || network.Config.TokenInput)
            throw reader.Error("network", "does not match the recorded input column (vocabulary or features per step).");
        if ((Objective)objective is Objective.Multiclass or Objective.Tagging ? network.Config.OutputSize < 2 : network.Config.OutputSize != 1)
            throw reader.Error("network", $"has {network.Config.OutputSize} outputs, which does not fit the task.");
        if ((network.Config.Head == NetworkHeadKind.PerStep) != ((Objective)objective == Objective.Tagging))
            throw reader.Error("network", $"has a {network.Config.Head} head, which does not fit the task.");
        if (labels is not null && labels.Count != network.Config.OutputSize)
            throw reader.Error("label values", $"number {labels.Count}, but the network has {network.Config.OutputSize} classes.");
        return new RecurrentModel(input, (Objective)objective, network, labels, batchSize, threads, vocabulary);
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

    public static LabelKeyValues Read(BoundedReader reader)
    {
        byte kind = reader.ReadByte("label value type");
        if (!Enum.IsDefined((Kind)kind))
            throw reader.Error("label value type", $"is {kind}; expected 1 to 7.");
        int count = reader.ReadCount("number of label values", 1, 1 << 20);
        if (count < 2)
            throw reader.Error("number of label values", $"is {count}; a classifier has at least 2 classes.");
        var values = new string[count];
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        for (int i = 0; i < count; i++)
        {
            values[i] = reader.ReadString("label value", 1 << 16);
            bool valid = (Kind)kind switch
            {
                Kind.Single => float.TryParse(values[i], System.Globalization.NumberStyles.Float, inv, out _),
                Kind.Double => double.TryParse(values[i], System.Globalization.NumberStyles.Float, inv, out _),
                Kind.Int32 => int.TryParse(values[i], System.Globalization.NumberStyles.Integer, inv, out _),
                Kind.UInt32 => uint.TryParse(values[i], System.Globalization.NumberStyles.Integer, inv, out _),
                Kind.Int64 => long.TryParse(values[i], System.Globalization.NumberStyles.Integer, inv, out _),
                Kind.Boolean => values[i] is "True" or "False",
                _ => true,
            };
            if (!valid)
                throw reader.Error("label value", $"'{BoundedReader.Printable(values[i])}' is not a {(Kind)kind} value.");
        }
        return new LabelKeyValues((Kind)kind, values);
    }
}
