using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Microsoft.ML.Recurrent.Interop;

/// <summary>
/// Writes float32 tensors as a safetensors file (the layout <see cref="SafetensorsReader"/> describes), deterministically:
/// <c>__metadata__</c> first with its keys sorted, then the tensors sorted by name (ordinal), their data in that order
/// and little-endian; the JSON header is padded with spaces to a multiple of 8 bytes, as the reference implementation
/// pads it, so the data starts 8-byte aligned. The same tensors and metadata always give the same bytes.
/// </summary>
internal static class SafetensorsWriter
{
    private static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Writes <paramref name="tensors"/> and <paramref name="metadata"/> to <paramref name="stream"/>.</summary>
    /// <exception cref="ArgumentException">A name is empty, too long, <c>__metadata__</c> or given twice, or a tensor's values do not match its shape.</exception>
    public static void Write(Stream stream, IEnumerable<SafetensorsTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanWrite)
            throw new ArgumentException("The stream cannot be written.", nameof(stream));
        ArgumentNullException.ThrowIfNull(tensors);
        var sorted = tensors.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        for (int i = 0; i < sorted.Count; i++)
        {
            var t = sorted[i];
            if (t.Name.Length == 0 || t.Name.Length > SafetensorsReader.MaxNameLength || t.Name == "__metadata__")
                throw new ArgumentException($"Tensor name '{t.Name}' is not allowed (1 to {SafetensorsReader.MaxNameLength} characters, not __metadata__).", nameof(tensors));
            if (i > 0 && sorted[i - 1].Name == t.Name)
                throw new ArgumentException($"Tensor '{t.Name}' is given twice.", nameof(tensors));
            if (t.Shape.Length > SafetensorsReader.MaxRank || t.Shape.Any(d => d < 0))
                throw new ArgumentException($"Tensor '{t.Name}' has shape {t.ShapeText}; expected at most {SafetensorsReader.MaxRank} non-negative dimensions.", nameof(tensors));
            long count = t.Shape.Aggregate(1L, (a, d) => a * d);
            if (count != t.Values.Length)
                throw new ArgumentException($"Tensor '{t.Name}' has shape {t.ShapeText} ({count} values) but {t.Values.Length} values.", nameof(tensors));
        }

        var header = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(header, JsonOptions))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var pair in metadata.OrderBy(p => p.Key, StringComparer.Ordinal))
                    json.WriteString(pair.Key, pair.Value);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in sorted)
            {
                json.WriteStartObject(t.Name);
                json.WriteString("dtype", "F32");
                json.WriteStartArray("shape");
                foreach (int d in t.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                offset += (long)t.Values.Length * sizeof(float);
                json.WriteNumberValue(offset);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }
        // 8 + N is a multiple of 8: the data starts aligned.
        int padded = (header.WrittenCount + 7) / 8 * 8;
        if (padded > SafetensorsReader.MaxHeaderBytes)
            throw new ArgumentException($"The header would be {padded:N0} bytes; at most {SafetensorsReader.MaxHeaderBytes:N0} are allowed.", nameof(tensors));
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)padded);
        stream.Write(prefix);
        stream.Write(header.WrittenSpan);
        for (int i = header.WrittenCount; i < padded; i++) stream.WriteByte((byte)' ');
        Span<byte> value = stackalloc byte[4];
        foreach (var t in sorted)
        {
            if (BitConverter.IsLittleEndian)
            {
                stream.Write(MemoryMarshal.AsBytes(t.Values.AsSpan()));
            }
            else
            {
                foreach (float v in t.Values)
                {
                    BinaryPrimitives.WriteSingleLittleEndian(value, v);
                    stream.Write(value);
                }
            }
        }
    }

    /// <summary>Writes the file at <paramref name="path"/> (replacing it): to a temporary file beside it, then renamed into place.</summary>
    public static void Write(string path, IEnumerable<SafetensorsTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string full = Path.GetFullPath(path);
        string temporary = full + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16))
                Write(stream, tensors, metadata);
            File.Move(temporary, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary)) File.Delete(temporary);
        }
    }
}
