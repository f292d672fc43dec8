using System.Security.Cryptography;
using Microsoft.ML.Recurrent.Model;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// The integrity envelope around the data of each of our entries in an ML.NET model zip, and the bounded reading of
/// that data. ML.NET's own header (signatures, versions, loader name) comes first, then:
/// <code>
///   i32        payload length P
///   P bytes    payload (the component's fields, see docs/model-format.md)
///   32 bytes   SHA-256 of the payload
/// </code>
/// A change of any byte of the payload or of the hash is detected before a single field is interpreted. Entries
/// written before the envelope existed (model version 0x00010001) have the payload alone and are read without the check.
/// </summary>
internal static class ModelEntry
{
    private const int HashSize = 32;

    /// <summary>Writes <paramref name="writePayload"/>'s bytes inside the envelope.</summary>
    public static void Write(BinaryWriter writer, Action<BinaryWriter> writePayload)
    {
        using var memory = new MemoryStream();
        using (var payloadWriter = new BinaryWriter(memory, System.Text.Encoding.UTF8, leaveOpen: true))
            writePayload(payloadWriter);
        var payload = memory.GetBuffer().AsSpan(0, checked((int)memory.Length));
        writer.Write(payload.Length);
        writer.Write(payload);
        writer.Write(SHA256.HashData(payload));
    }

    /// <summary>
    /// Reads the rest of the entry's model data (ML.NET already holds the entry in memory, so this copies at most the
    /// entry's own size), checks the envelope when <paramref name="enveloped"/>, and returns a reader over the payload.
    /// </summary>
    /// <exception cref="InvalidDataException">The data is truncated, or the hash does not match; the message names the entry.</exception>
    public static BoundedReader Open(ModelLoadContext ctx, bool enveloped)
    {
        string part = $"Model entry '{BoundedReader.Printable(ctx.Directory ?? "(stream)")}'";
        var stream = ctx.Reader.BaseStream;
        long end = ctx.FpMin + ctx.Header.FpModel + ctx.Header.CbModel, position = stream.Position;
        if (end < position || end - position > int.MaxValue || (stream.CanSeek && end > stream.Length))
            throw new InvalidDataException($"{part}: the model data size in ML.NET's header ({ctx.Header.CbModel}) does not fit the entry.");
        int size = (int)(end - position);
        var data = ctx.Reader.ReadBytes(size);
        if (data.Length != size)
            throw new InvalidDataException($"{part}: the model data is cut short ({data.Length} of {size} bytes).");
        var reader = new BoundedReader(data, 0, data.Length, part);
        if (!enveloped)
            return reader;
        int length = reader.ReadInt32("payload length", 0, Math.Max(0, reader.Remaining - HashSize));
        if (reader.Remaining != length + HashSize)
            throw reader.Error("payload length", $"is {length}, but {reader.Remaining - HashSize} bytes lie between it and the hash (the data is truncated or corrupted).");
        Span<byte> hash = stackalloc byte[HashSize];
        SHA256.HashData(data.AsSpan(sizeof(int), length), hash);
        if (!hash.SequenceEqual(data.AsSpan(sizeof(int) + length, HashSize)))
            throw new InvalidDataException($"{part} is corrupted: the SHA-256 of its data does not match the one saved with it (the file was modified or damaged).");
        return new BoundedReader(data, sizeof(int), sizeof(int) + length, part);
    }
}
