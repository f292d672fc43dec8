using Microsoft.ML.Recurrent.Layers;

namespace Microsoft.ML.Recurrent.Model;

/// <summary>
/// The binary format of a <see cref="RecurrentNetwork"/> (little-endian, see docs/model-format.md):
/// <code>
///   u64    magic "MLRNNET\0"
///   i32    format version (2; 1 is read too)
///   i32    cell kind, vocabulary size, input size, hidden size, layers; u8 bidirectional; f32 dropout;
///   i32    pooling flags, output size, padding id; head kind (version 2: 0 pooled, 1 per step)
///   u8     CRF (version 2); when 1: C + C + C·C bytes, the allowed starts, ends and transitions
///   i32    character vocabulary, character embedding, character hidden size, maximum word length (version 2; 0 = none)
///   u8     weight tying: the head's weight is the embedding (version 3)
///   i32    wide feature count F of a wide &amp; deep head, 0 for none (version 4, which also allows the attention
///          pooling flag 16 and its tensors attention.*)
///   i32    forecast steps n, skip columns w, static size S of a forecast head (version 5, which also allows head
///          kind 2, forecast; all 0 for other heads)
///   i32    tensor count K; K × (string name, i32 rank, rank × i32 dims)
///   i64    value count V = Σ tensor sizes; V × f32 values
///   u32    CRC-32 of the values' bytes
/// </code>
/// The reader range-checks every header field and checks the size the header implies against the bytes left before it
/// allocates anything, and the checksum after reading, so a truncated or corrupted file fails with
/// <see cref="InvalidDataException"/>. (Inside a model zip the whole entry is also covered by a SHA-256, see
/// <c>ModelEntry</c>.)
/// </summary>
internal static class NetworkSerializer
{
    private const ulong Magic = 0x0054454E4E524C4DUL; // "MLRNNET\0" little-endian
    /// <summary>Current format version: 2 added the head kind (version 1 networks have a pooled head), 3 weight tying, 4 attention pooling and the wide part, 5 the forecast head.</summary>
    public const int FormatVersion = 5;
    private const int MaxDimension = 1 << 26;

    /// <summary>Writes the network's shape and parameter values.</summary>
    public static void Write(BinaryWriter writer, RecurrentNetwork network)
    {
        var c = network.Config;
        writer.Write(Magic);
        // The oldest version that holds this network, so readers from before a feature still read networks without it.
        int version = c.Head == NetworkHeadKind.Forecast ? 5 : 4;
        writer.Write(version);
        writer.Write((int)c.Cell);
        writer.Write(c.VocabularySize);
        writer.Write(c.InputSize);
        writer.Write(c.HiddenSize);
        writer.Write(c.NumLayers);
        writer.Write(c.Bidirectional);
        writer.Write(c.Dropout);
        writer.Write((int)c.Pooling);
        writer.Write(c.OutputSize);
        writer.Write(c.PaddingId);
        writer.Write((int)c.Head);
        writer.Write(c.UseCrf);
        if (c.UseCrf)
        {
            // Allowed start [C], end [C] and transitions [C, C], one byte each (all 1 without constraints).
            var constraints = c.CrfConstraints ?? CrfConstraints.None(c.OutputSize);
            foreach (bool allowed in constraints.AllowedStart) writer.Write(allowed);
            foreach (bool allowed in constraints.AllowedEnd) writer.Write(allowed);
            foreach (bool allowed in constraints.AllowedTransitions) writer.Write(allowed);
        }
        writer.Write(c.CharacterVocabularySize);
        writer.Write(c.CharacterEmbeddingSize);
        writer.Write(c.CharacterHiddenSize);
        writer.Write(c.MaximumWordLength);
        writer.Write(c.TieWeights);
        writer.Write(c.WideSize);
        if (version >= 5)
        {
            writer.Write(c.ForecastSteps);
            writer.Write(c.SkipColumns);
            writer.Write(c.StaticSize);
        }
        var ps = network.Parameters;
        writer.Write(ps.Parameters.Count);
        foreach (var p in ps.Parameters)
        {
            writer.Write(p.Name);
            writer.Write(p.Shape.Length);
            foreach (int d in p.Shape) writer.Write(d);
        }
        writer.Write((long)ps.Length);
        var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(ps.Values.AsSpan());
        writer.Write(bytes);
        writer.Write(Crc32.Compute(bytes));
    }

    /// <summary>
    /// Reads a network written by <see cref="Write"/> as an inference-only network (no gradient buffer). Every header
    /// field is range-checked, and the parameter count it implies is checked against the bytes left before the values
    /// are allocated; then the tensor list must match the network the header describes, name by name and shape by shape.
    /// </summary>
    /// <exception cref="InvalidDataException">The data is not a network of a known version, or it is truncated or corrupted; the message names the field.</exception>
    public static RecurrentNetwork Read(BoundedReader reader)
    {
        if (reader.ReadUInt64("network magic number") != Magic)
            throw reader.Error("network magic number", "is wrong: this is not a recurrent network.");
        int version = reader.ReadInt32("network format version");
        if (version > FormatVersion)
            throw reader.Error("network format version", $"is {version}, newer than this library reads ({FormatVersion}). Upgrade Microsoft.ML.Recurrent.");
        if (version < 1)
            throw reader.Error("network format version", $"is {version}; expected 1 to {FormatVersion}.");
        int cell = reader.ReadInt32("cell kind");
        if (!Enum.IsDefined((RecurrentCellKind)cell))
            throw reader.Error("cell kind", $"is {cell}; expected 0 (LSTM), 1 (GRU), 2 (RNN-tanh) or 3 (RNN-ReLU).");
        var config = new NetworkConfig
        {
            Cell = (RecurrentCellKind)cell,
            VocabularySize = reader.ReadInt32("vocabulary size", 0, MaxDimension),
            InputSize = reader.ReadInt32("input size", 1, MaxDimension),
            HiddenSize = reader.ReadInt32("hidden size", 1, MaxDimension),
            NumLayers = reader.ReadInt32("number of layers", 1, 64),
            Bidirectional = reader.ReadBoolean("bidirectional flag"),
            Dropout = reader.ReadSingle("dropout"),
            Pooling = (PoolingKind)reader.ReadInt32("pooling flags", 1, (int)(PoolingKind.FinalState | PoolingKind.Mean | PoolingKind.Max | PoolingKind.InputMean | PoolingKind.Attention)),
            OutputSize = reader.ReadInt32("output size", 1, MaxDimension),
            PaddingId = reader.ReadInt32("padding id", -1, MaxDimension),
            Head = version >= 2 ? (NetworkHeadKind)reader.ReadInt32("head kind", 0, version >= 5 ? 2 : 1) : NetworkHeadKind.Pooled,
        };
        if (version >= 2 && reader.ReadBoolean("CRF flag"))
        {
            if (config.Head != NetworkHeadKind.PerStep)
                throw reader.Error("CRF flag", "is set for a pooled head.");
            int c = config.OutputSize;
            if ((long)c * (c + 2) > reader.Remaining)
                throw reader.Error("CRF constraints", $"for {c} tags need {(long)c * (c + 2)} bytes; {reader.Remaining} are left.");
            var allowedStart = new bool[c];
            var allowedEnd = new bool[c];
            var allowedTransitions = new bool[c * c];
            for (int i = 0; i < c; i++) allowedStart[i] = reader.ReadBoolean("CRF allowed start");
            for (int i = 0; i < c; i++) allowedEnd[i] = reader.ReadBoolean("CRF allowed end");
            for (int i = 0; i < c * c; i++) allowedTransitions[i] = reader.ReadBoolean("CRF allowed transition");
            var constraints = new CrfConstraints(allowedStart, allowedEnd, allowedTransitions);
            config = config with { UseCrf = true, CrfConstraints = constraints.AllowsEverything ? null : constraints };
        }
        if (version >= 2)
        {
            config = config with
            {
                CharacterVocabularySize = reader.ReadInt32("character vocabulary size", 0, char.MaxValue + 1),
                CharacterEmbeddingSize = reader.ReadInt32("character embedding size", 0, 1 << 16),
                CharacterHiddenSize = reader.ReadInt32("character hidden size", 0, 1 << 16),
                MaximumWordLength = reader.ReadInt32("maximum word length", 0, 1 << 20),
            };
            if (config.UsesCharacters != (config.CharacterEmbeddingSize > 0) || config.UsesCharacters != (config.CharacterHiddenSize > 0)
                || config.UsesCharacters && !config.TokenInput)
                throw reader.Error("character encoder", "sizes are inconsistent (all three are positive, with token input, or all zero).");
        }
        if (version >= 3)
            config = config with { TieWeights = reader.ReadBoolean("weight tying flag") };
        if (version >= 4)
            config = config with { WideSize = reader.ReadInt32("wide feature count", 0, MaxDimension) };
        if (version >= 5)
            config = config with
            {
                ForecastSteps = reader.ReadInt32("forecast steps", 0, MaxDimension),
                SkipColumns = reader.ReadInt32("forecast skip columns", 0, MaxDimension),
                StaticSize = reader.ReadInt32("forecast static size", 0, MaxDimension),
            };
        if ((config.Head == NetworkHeadKind.Forecast) != (config.ForecastSteps > 0) || config.Head != NetworkHeadKind.Forecast && (config.SkipColumns | config.StaticSize) != 0)
            throw reader.Error("forecast steps", $"are {config.ForecastSteps} (skip {config.SkipColumns}, static {config.StaticSize}) for head kind {(int)config.Head}; only a forecast head (2) has them, and it needs a positive number of steps.");
        if (config.WideSize > 0 && config.Head != NetworkHeadKind.Pooled)
            throw reader.Error("wide feature count", $"is {config.WideSize} for a per-step head; a wide part needs a pooled head.");
        if (!(config.Dropout >= 0 && config.Dropout < 1))
            throw reader.Error("dropout", $"is {config.Dropout}; expected a value in [0, 1).");
        if ((config.Pooling & ~PoolingKind.InputMean) == 0)
            throw reader.Error("pooling flags", $"are {(int)config.Pooling}; at least one of final state (1), mean (2), max (4) and attention (16) is needed.");
        if (version < 4 && (config.Pooling & PoolingKind.Attention) != 0)
            throw reader.Error("pooling flags", $"are {(int)config.Pooling}: attention pooling (16) needs format version 4, the file says {version}.");
        if (config.PaddingId >= Math.Max(config.VocabularySize, 0) && config.PaddingId != -1)
            throw reader.Error("padding id", $"is {config.PaddingId}, outside the vocabulary of {config.VocabularySize}.");
        long expected = RecurrentNetwork.CountParameters(config);
        // The values (4 bytes each) and the checksum must still be in the data: refuses absurd headers before allocating.
        if (expected > int.MaxValue || expected * sizeof(float) + sizeof(uint) > reader.Remaining)
            throw reader.Error("network header", $"describes {expected:N0} parameters ({expected * 4:N0} bytes), more than the {reader.Remaining:N0} bytes left (the data is truncated or corrupted).");
        var values = new float[expected];
        RecurrentNetwork network;
        try
        {
            network = RecurrentNetwork.ForInference(config, values);
        }
        catch (ArgumentException e)
        {
            throw reader.Error("network header", "is invalid: " + e.Message);
        }
        var parameters = network.Parameters.Parameters;
        int count = reader.ReadInt32("tensor count");
        if (count != parameters.Count)
            throw reader.Error("tensor count", $"is {count}; a network of this shape has {parameters.Count} tensors.");
        foreach (var p in parameters)
        {
            string name = reader.ReadString("tensor name", 256);
            int rank = reader.ReadInt32("rank of tensor " + p.Name);
            if (name != p.Name || rank != p.Shape.Length)
                throw reader.Error("tensor list", $"has '{BoundedReader.Printable(name)}' of rank {rank} where '{p.Name}' of rank {p.Shape.Length} was expected.");
            for (int i = 0; i < rank; i++)
            {
                int dimension = reader.ReadInt32($"dimension {i} of tensor {p.Name}");
                if (dimension != p.Shape[i])
                    throw reader.Error($"dimension {i} of tensor {p.Name}", $"is {dimension}; the header implies {p.Shape[i]}.");
            }
        }
        long valueCount = reader.ReadInt64("parameter value count");
        if (valueCount != expected)
            throw reader.Error("parameter value count", $"is {valueCount}; the network needs {expected}.");
        int start = reader.Position;
        reader.ReadSingles("parameter values", values);
        uint crc = Crc32.Compute(reader.Since(start));
        if (reader.ReadUInt32("parameter checksum") != crc)
            throw reader.Error("parameter values", "are corrupted (CRC-32 mismatch).");
        return network;
    }
}

/// <summary>CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), table-driven.</summary>
internal static class Crc32
{
    private static readonly uint[] Table = BuildTable();

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++)
                c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        return table;
    }

    /// <summary>CRC-32 of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFFu;
        foreach (byte b in data)
            crc = Table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return ~crc;
    }
}
