using Microsoft.ML.Recurrent.Layers;

namespace Microsoft.ML.Recurrent.Model;

/// <summary>
/// The binary format of a <see cref="RecurrentNetwork"/> (little-endian, see docs/model-format.md):
/// <code>
///   u64    magic "MLRNNET\0"
///   i32    format version (1)
///   i32    cell kind, vocabulary size, input size, hidden size, layers; u8 bidirectional; f32 dropout;
///   i32    pooling flags, output size, padding id
///   i32    tensor count K; K × (string name, i32 rank, rank × i32 dims)
///   i64    value count V = Σ tensor sizes; V × f32 values
///   u32    CRC-32 of the values' bytes
/// </code>
/// The reader validates every size against the network the header describes before it allocates anything, and the
/// checksum after reading, so a truncated or corrupted file fails with <see cref="InvalidDataException"/>.
/// </summary>
internal static class NetworkSerializer
{
    private const ulong Magic = 0x0054454E4E524C4DUL; // "MLRNNET\0" little-endian
    /// <summary>Current format version.</summary>
    public const int FormatVersion = 1;
    private const int MaxDimension = 1 << 26;

    /// <summary>Writes the network's shape and parameter values.</summary>
    public static void Write(BinaryWriter writer, RecurrentNetwork network)
    {
        var c = network.Config;
        writer.Write(Magic);
        writer.Write(FormatVersion);
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

    /// <summary>Reads a network written by <see cref="Write"/>.</summary>
    /// <exception cref="InvalidDataException">The data is not a network of a known version, or it is truncated or corrupted.</exception>
    public static RecurrentNetwork Read(BinaryReader reader)
    {
        try
        {
            if (reader.ReadUInt64() != Magic)
                throw new InvalidDataException("Not a recurrent network: the magic number is wrong.");
            int version = reader.ReadInt32();
            if (version > FormatVersion)
                throw new InvalidDataException($"The network was saved in format version {version}, newer than this library reads ({FormatVersion}). Upgrade Microsoft.ML.Recurrent.");
            if (version < 1)
                throw new InvalidDataException($"Invalid network format version {version}.");
            int cell = reader.ReadInt32();
            if (!Enum.IsDefined((RecurrentCellKind)cell))
                throw new InvalidDataException($"Unknown recurrent cell kind {cell}.");
            var config = new NetworkConfig
            {
                Cell = (RecurrentCellKind)cell,
                VocabularySize = CheckSize(reader.ReadInt32(), "vocabulary size", allowZero: true),
                InputSize = CheckSize(reader.ReadInt32(), "input size"),
                HiddenSize = CheckSize(reader.ReadInt32(), "hidden size"),
                NumLayers = CheckSize(reader.ReadInt32(), "number of layers"),
                Bidirectional = reader.ReadBoolean(),
                Dropout = reader.ReadSingle(),
                Pooling = (PoolingKind)reader.ReadInt32(),
                OutputSize = CheckSize(reader.ReadInt32(), "output size"),
                PaddingId = reader.ReadInt32(),
            };
            if (config.NumLayers > 64)
                throw new InvalidDataException($"Implausible number of layers {config.NumLayers}.");
            long expected = ExpectedParameterCount(config);
            if (expected > int.MaxValue)
                throw new InvalidDataException("The network described by the header is too large.");
            RecurrentNetwork network;
            try
            {
                network = new RecurrentNetwork(config);
            }
            catch (ArgumentException e)
            {
                throw new InvalidDataException("The network header is invalid: " + e.Message, e);
            }
            var ps = network.Parameters;
            int count = reader.ReadInt32();
            if (count != ps.Parameters.Count)
                throw new InvalidDataException($"The file lists {count} tensors; a network of this shape has {ps.Parameters.Count}.");
            foreach (var p in ps.Parameters)
            {
                string name = reader.ReadString();
                int rank = reader.ReadInt32();
                if (name != p.Name || rank != p.Shape.Length)
                    throw new InvalidDataException($"Tensor '{name}' of rank {rank} found where '{p.Name}' of rank {p.Shape.Length} was expected.");
                for (int i = 0; i < rank; i++)
                    if (reader.ReadInt32() != p.Shape[i])
                        throw new InvalidDataException($"Tensor '{name}' has the wrong shape.");
            }
            long values = reader.ReadInt64();
            if (values != ps.Length)
                throw new InvalidDataException($"The file holds {values} parameter values; the network needs {ps.Length}.");
            var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(ps.Values.AsSpan());
            reader.BaseStream.ReadExactly(bytes);
            uint crc = reader.ReadUInt32();
            if (crc != Crc32.Compute(bytes))
                throw new InvalidDataException("The network's parameter values are corrupted (checksum mismatch).");
            return network;
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException("The network data is truncated.", e);
        }
    }

    private static int CheckSize(int value, string what, bool allowZero = false)
    {
        if (value < 0 || (!allowZero && value == 0) || value > MaxDimension)
            throw new InvalidDataException($"Invalid {what} {value} in the network header.");
        return value;
    }

    /// <summary>Parameter count implied by a config, in 64-bit arithmetic (to refuse absurd headers before allocating).</summary>
    private static long ExpectedParameterCount(NetworkConfig c)
    {
        long gates = c.Cell switch { RecurrentCellKind.Lstm => 4, RecurrentCellKind.Gru => 3, _ => 1 };
        long d = c.Bidirectional ? 2 : 1, h = c.HiddenSize;
        long total = (long)c.VocabularySize * c.InputSize;
        for (int l = 0; l < c.NumLayers; l++)
        {
            long input = l == 0 ? c.InputSize : d * h;
            total += d * gates * h * (input + h + 2);
        }
        long pooled = System.Numerics.BitOperations.PopCount((uint)(c.Pooling & ~PoolingKind.InputMean)) * d * h
            + ((c.Pooling & PoolingKind.InputMean) != 0 ? c.InputSize : 0);
        return total + pooled * c.OutputSize + c.OutputSize;
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
