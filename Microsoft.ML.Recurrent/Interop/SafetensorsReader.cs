using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.ML.Recurrent.Model;

namespace Microsoft.ML.Recurrent.Interop;

/// <summary>
/// Reads a safetensors file (Hugging Face's format for tensors, which PyTorch writes with
/// <c>safetensors.torch.save_file</c>) with every size checked before anything is allocated:
/// <code>
///   u64            header length N (little-endian), 2 ≤ N ≤ 100,000,000 and N ≤ the bytes after it
///   N bytes        UTF-8 JSON object, starting with '{', optionally padded with spaces:
///                    "name": {"dtype": "F32", "shape": [d0, …], "data_offsets": [begin, end]}   for every tensor
///                    "__metadata__": {"key": "value", …}                                          optional, strings only
///   the rest       the data buffer; tensor bytes [begin, end) relative to its start
/// </code>
/// The header is parsed by System.Text.Json with a depth limit; then every tensor is checked: a name of 1 to 1,024
/// characters, no name twice, a known floating-point dtype (F32; F16, BF16 and F64 are converted to float32; integer,
/// boolean and 8-bit float dtypes are refused by name), a rank of at most 8, end − begin = (product of the shape) ×
/// (element size), and offsets that, sorted, tile the data buffer exactly — no overlap, no hole, nothing left over (as
/// the format requires). Only then are the values read, so the allocation is bounded by twice the file's length (F16 and
/// BF16 widen to float32). Every
/// failure is an <see cref="InvalidDataException"/> that names the file and the tensor or field, in printable text.
/// <para>What this deliberately is not: it does not map the file into memory and it keeps no part of it open; a
/// network's weights are read whole.</para>
/// </summary>
internal static class SafetensorsReader
{
    /// <summary>Largest header accepted, in bytes (the reference implementation's limit).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>Most tensors a file may hold.</summary>
    public const int MaxTensors = 65_536;

    /// <summary>Most bytes read from a stream that cannot seek (it is copied into memory first): 2 GiB.</summary>
    public const long MaxCopyBytes = int.MaxValue;

    /// <summary>Most elements in one tensor: its float32 values (4 bytes each) must fit in one span of bytes.</summary>
    public const int MaxElements = int.MaxValue / 4;

    /// <summary>Longest tensor name or metadata key, in characters.</summary>
    public const int MaxNameLength = 1_024;

    /// <summary>Highest tensor rank.</summary>
    public const int MaxRank = 8;

    /// <summary>Most <c>__metadata__</c> entries.</summary>
    public const int MaxMetadataEntries = 4_096;

    /// <summary>The dtypes of the format that are not floating-point weights (refused by name).</summary>
    private static readonly HashSet<string> OtherDTypes = new(StringComparer.Ordinal)
    {
        "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "I16", "U16", "I32", "U32", "I64", "U64", "C64",
    };

    /// <summary>Reads the file at <paramref name="path"/>.</summary>
    /// <exception cref="InvalidDataException">The file is not a valid safetensors file; the message names the tensor or field.</exception>
    public static SafetensorsFile Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        return Read(stream, Path.GetFileName(path));
    }

    /// <summary>
    /// Reads a safetensors file from the current position of <paramref name="stream"/> to its end. A stream that cannot
    /// seek is first copied into memory, up to <see cref="MaxCopyBytes"/>.
    /// <paramref name="source"/> names the file in messages.
    /// </summary>
    /// <exception cref="InvalidDataException">The data is not a valid safetensors file; the message names the tensor or field.</exception>
    public static SafetensorsFile Read(Stream stream, string source = "stream")
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanRead)
            throw new ArgumentException("The stream cannot be read.", nameof(stream));
        if (!stream.CanSeek)
        {
            // Copied into memory, but never more than MaxCopyBytes: a stream without end does not exhaust memory.
            var copy = new MemoryStream();
            var buffer = new byte[81920];
            int read;
            while ((read = stream.Read(buffer)) > 0)
            {
                if (copy.Length + read > MaxCopyBytes)
                    throw new InvalidDataException($"Safetensors stream '{BoundedReader.Printable(source)}' holds more than {MaxCopyBytes:N0} bytes; a stream that cannot seek is read into memory, up to that size. Read a file instead.");
                copy.Write(buffer, 0, read);
            }
            copy.Position = 0;
            stream = copy;
        }
        source = BoundedReader.Printable(source);
        try
        {
            return ReadSeekable(stream, source);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"Safetensors file '{source}' ended early (it changed while being read, or is truncated).", e);
        }
    }

    private static SafetensorsFile ReadSeekable(Stream stream, string source)
    {
        long length = stream.Length - stream.Position;
        if (length < 8)
            throw Error(source, $"the file is {length} bytes long; a safetensors file starts with an 8-byte header length.");
        Span<byte> prefix = stackalloc byte[8];
        stream.ReadExactly(prefix);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (n < 2 || n > MaxHeaderBytes)
            throw Error(source, $"the header length is {n}; expected 2 to {MaxHeaderBytes:N0} bytes (this is not a safetensors file, or it is corrupted).");
        if (n > (ulong)(length - 8))
            throw Error(source, $"the header length is {n}, but only {length - 8} bytes follow it (the file is truncated or not a safetensors file).");
        var header = new byte[n];
        stream.ReadExactly(header);
        long bufferLength = length - 8 - (long)n;

        List<Entry> entries;
        Dictionary<string, string> metadata;
        try
        {
            (entries, metadata) = ParseHeader(header, bufferLength, source);
        }
        catch (InvalidOperationException e)
        {
            // System.Text.Json reads an escaped lone surrogate (\ud800) in a name or string as invalid only when asked for it.
            throw new InvalidDataException($"Safetensors file '{source}': the header holds a string that is not valid Unicode ({BoundedReader.Printable(e.Message, 200)}).", e);
        }
        CheckCoverage(entries, bufferLength, source);

        // Sorted by offset and tiling the buffer: the values follow one another in this order.
        var tensors = new Dictionary<string, SafetensorsTensor>(entries.Count, StringComparer.Ordinal);
        foreach (var entry in entries)
            tensors.Add(entry.Name, new SafetensorsTensor(entry.Name, entry.Shape, ReadValues(stream, entry), entry.DType));
        return new SafetensorsFile(tensors, metadata, source);
    }

    /// <summary>One tensor's header entry: its dtype and element size, shape, element count and byte range.</summary>
    private sealed record Entry(string Name, string DType, int ElementSize, int[] Shape, int Count, long Begin, long End);

    private static (List<Entry> Entries, Dictionary<string, string> Metadata) ParseHeader(byte[] header, long bufferLength, string source)
    {
        if (header[0] != (byte)'{')
            throw Error(source, "the header does not begin with '{' (a JSON object).");
        // System.Text.Json checks the UTF-8 of strings only when they are read; check all of it first.
        if (!System.Text.Unicode.Utf8.IsValid(header))
            throw Error(source, "the header is not valid UTF-8 text.");
        JsonDocument document;
        try
        {
            // Depth: the root object, a tensor's object, its shape array (and nothing deeper).
            document = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 3 });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Safetensors file '{source}': the header is not valid JSON of at most 3 levels ({BoundedReader.Printable(e.Message, 200)}).", e);
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw Error(source, $"the header is a JSON {root.ValueKind}; expected an object.");
            var entries = new List<Entry>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            Dictionary<string, string>? metadata = null;
            foreach (var property in root.EnumerateObject())
            {
                string name = property.Name;
                if (!names.Add(name))
                    throw Error(source, $"the header names '{BoundedReader.Printable(name)}' twice.");
                if (name == "__metadata__")
                {
                    metadata = ParseMetadata(property.Value, source);
                    continue;
                }
                if (name.Length == 0 || name.Length > MaxNameLength)
                    throw Error(source, $"a tensor name has {name.Length} characters; expected 1 to {MaxNameLength:N0}.");
                if (entries.Count == MaxTensors)
                    throw Error(source, $"the header describes more than {MaxTensors:N0} tensors.");
                entries.Add(ParseEntry(name, property.Value, bufferLength, source));
            }
            return (entries, metadata ?? new Dictionary<string, string>(StringComparer.Ordinal));
        }
    }

    private static Dictionary<string, string> ParseMetadata(JsonElement value, string source)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Error(source, $"__metadata__ is a JSON {value.ValueKind}; expected an object of strings.");
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in value.EnumerateObject())
        {
            if (metadata.Count == MaxMetadataEntries)
                throw Error(source, $"__metadata__ has more than {MaxMetadataEntries:N0} entries.");
            if (pair.Name.Length > MaxNameLength)
                throw Error(source, $"__metadata__ has a key of {pair.Name.Length} characters; expected at most {MaxNameLength:N0}.");
            if (pair.Value.ValueKind != JsonValueKind.String)
                throw Error(source, $"__metadata__ entry '{BoundedReader.Printable(pair.Name)}' is a JSON {pair.Value.ValueKind}; the format allows strings only.");
            if (!metadata.TryAdd(pair.Name, pair.Value.GetString()!))
                throw Error(source, $"__metadata__ names '{BoundedReader.Printable(pair.Name)}' twice.");
        }
        return metadata;
    }

    private static Entry ParseEntry(string name, JsonElement value, long bufferLength, string source)
    {
        string printable = BoundedReader.Printable(name);
        InvalidDataException Bad(string problem) => Error(source, $"tensor '{printable}' {problem}");
        if (value.ValueKind != JsonValueKind.Object)
            throw Bad($"is described by a JSON {value.ValueKind}; expected an object with dtype, shape and data_offsets.");
        JsonElement? dtypeElement = null, shapeElement = null, offsetsElement = null;
        foreach (var field in value.EnumerateObject())
        {
            switch (field.Name)
            {
                case "dtype" when dtypeElement is null: dtypeElement = field.Value; break;
                case "shape" when shapeElement is null: shapeElement = field.Value; break;
                case "data_offsets" when offsetsElement is null: offsetsElement = field.Value; break;
                case "dtype" or "shape" or "data_offsets": throw Bad($"has '{field.Name}' twice.");
                default: throw Bad($"has an unknown field '{BoundedReader.Printable(field.Name)}'; expected dtype, shape and data_offsets only.");
            }
        }
        if (dtypeElement is not { ValueKind: JsonValueKind.String } dtypeValue)
            throw Bad("has no dtype string.");
        if (shapeElement is not { ValueKind: JsonValueKind.Array } shapeValue)
            throw Bad("has no shape array.");
        if (offsetsElement is not { ValueKind: JsonValueKind.Array } offsetsValue)
            throw Bad("has no data_offsets array.");

        string dtype = dtypeValue.GetString()!;
        int elementSize = dtype switch { "F32" => 4, "F16" or "BF16" => 2, "F64" => 8, _ => 0 };
        if (elementSize == 0)
            throw Bad(OtherDTypes.Contains(dtype)
                ? $"has dtype {dtype}; only floating-point tensors (F32, F16, BF16, F64) can be read as weights."
                : $"has the unknown dtype '{BoundedReader.Printable(dtype)}'.");

        int rank = shapeValue.GetArrayLength();
        if (rank > MaxRank)
            throw Bad($"has rank {rank}; at most {MaxRank} is supported.");
        var shape = new int[rank];
        long count = 1;
        int i = 0;
        foreach (var dimension in shapeValue.EnumerateArray())
        {
            if (dimension.ValueKind != JsonValueKind.Number || !dimension.TryGetInt64(out long d) || d < 0 || d > int.MaxValue)
                throw Bad($"has dimension {i} = {BoundedReader.Printable(dimension.GetRawText(), 40)}; expected an integer from 0 to {int.MaxValue}.");
            shape[i++] = (int)d;
            count *= d;   // ≤ Array.MaxLength · int.MaxValue < 2^62: no overflow before the check below
            if (count > MaxElements)
                throw Bad($"has shape {SafetensorsTensor.FormatShape(shape.AsSpan(0, i))}…, more than {MaxElements:N0} elements.");
        }

        if (offsetsValue.GetArrayLength() != 2)
            throw Bad($"has {offsetsValue.GetArrayLength()} data_offsets; expected 2, [begin, end].");
        var begin = offsetsValue[0];
        var end = offsetsValue[1];
        if (begin.ValueKind != JsonValueKind.Number || !begin.TryGetInt64(out long b) || b < 0
            || end.ValueKind != JsonValueKind.Number || !end.TryGetInt64(out long e) || e < b)
            throw Bad($"has data_offsets [{BoundedReader.Printable(begin.GetRawText(), 40)}, {BoundedReader.Printable(end.GetRawText(), 40)}]; expected integers 0 ≤ begin ≤ end.");
        if (e > bufferLength)
            throw Bad($"ends at byte {e} of the data, but the data holds {bufferLength} bytes (the file is truncated or corrupted).");
        if (e - b != count * elementSize)
            throw Bad($"has shape {SafetensorsTensor.FormatShape(shape)} of {dtype} ({count * elementSize} bytes), but data_offsets [{b}, {e}] hold {e - b} bytes.");
        return new Entry(name, dtype, elementSize, shape, (int)count, b, e);
    }

    /// <summary>Sorts the entries by offset and checks that they tile [0, bufferLength) exactly.</summary>
    private static void CheckCoverage(List<Entry> entries, long bufferLength, string source)
    {
        entries.Sort((x, y) => x.Begin != y.Begin ? x.Begin.CompareTo(y.Begin) : x.End.CompareTo(y.End));
        long expected = 0;
        Entry? previous = null;
        foreach (var entry in entries)
        {
            if (entry.Begin < expected)
                throw Error(source, $"tensor '{BoundedReader.Printable(entry.Name)}' (bytes {entry.Begin} to {entry.End}) overlaps tensor '{BoundedReader.Printable(previous!.Name)}' (bytes {previous.Begin} to {previous.End}).");
            if (entry.Begin > expected)
                throw Error(source, $"bytes {expected} to {entry.Begin} of the data are unused before tensor '{BoundedReader.Printable(entry.Name)}' (the format allows no holes).");
            expected = entry.End;
            previous = entry;
        }
        if (expected != bufferLength)
            throw Error(source, $"{bufferLength - expected} bytes after the last tensor are described by no tensor (the format allows no holes).");
    }

    /// <summary>Reads one tensor's bytes (the stream is at its begin) as float32.</summary>
    private static float[] ReadValues(Stream stream, Entry entry)
    {
        var values = new float[entry.Count];
        var bytes = MemoryMarshal.AsBytes(values.AsSpan());
        if (entry.DType == "F32")
        {
            stream.ReadExactly(bytes);
            if (!BitConverter.IsLittleEndian)
            {
                var raw = MemoryMarshal.Cast<float, uint>(values.AsSpan());
                BinaryPrimitives.ReverseEndianness(raw, raw);
            }
            return values;
        }
        // Narrow dtypes are read into the front of the float array's own bytes and widened from the back, so no
        // element is overwritten before it is read; F64 goes through a chunk buffer.
        if (entry.ElementSize == 2)
        {
            var narrow = bytes[..(entry.Count * 2)];
            stream.ReadExactly(narrow);
            for (int i = entry.Count - 1; i >= 0; i--)
            {
                ushort bits = BinaryPrimitives.ReadUInt16LittleEndian(bytes.Slice(i * 2, 2));
                values[i] = entry.DType == "F16" ? (float)BitConverter.UInt16BitsToHalf(bits) : BitConverter.Int32BitsToSingle(bits << 16);
            }
            return values;
        }
        var chunk = new byte[8 * 4096];
        for (int start = 0; start < entry.Count; start += 4096)
        {
            int take = Math.Min(4096, entry.Count - start);
            stream.ReadExactly(chunk.AsSpan(0, take * 8));
            for (int i = 0; i < take; i++)
                values[start + i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(chunk.AsSpan(i * 8, 8));
        }
        return values;
    }

    private static InvalidDataException Error(string source, string problem) => new($"Safetensors file '{source}': {problem}");
}
