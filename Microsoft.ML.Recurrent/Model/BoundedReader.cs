using System.Buffers.Binary;
using System.Text;

namespace Microsoft.ML.Recurrent.Model;

/// <summary>
/// Reads a saved model part from a byte buffer that is already in memory, knowing how many bytes are left: every
/// count and size is checked against those bytes before anything is allocated, so a hostile header cannot make the
/// reader allocate more than the file holds. Every failure is an <see cref="InvalidDataException"/> that names the
/// part and the field, with only printable text in the message. Little-endian, strings as .NET's
/// <see cref="BinaryWriter"/> writes them (7-bit-encoded byte length, UTF-8).
/// </summary>
internal sealed class BoundedReader
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly byte[] _data;
    private readonly int _end;
    private int _position;

    /// <summary>Reads <paramref name="data"/>[<paramref name="start"/>, <paramref name="end"/>); <paramref name="part"/> names it in messages (e.g. "entry 'TransformerChain/Transform_003'").</summary>
    public BoundedReader(byte[] data, int start, int end, string part)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        ArgumentOutOfRangeException.ThrowIfLessThan(end, start);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(end, data.Length);
        _data = data;
        _position = start;
        _end = end;
        Part = part;
    }

    /// <summary>What is being read, for messages.</summary>
    public string Part { get; }

    /// <summary>Bytes not yet read.</summary>
    public int Remaining => _end - _position;

    /// <summary>An error about <paramref name="field"/>.</summary>
    public InvalidDataException Error(string field, string problem) => new($"{Part}: {field} {problem}");

    private ReadOnlySpan<byte> Take(string field, int count)
    {
        if (count > Remaining)
            throw Error(field, $"is cut short: {count} bytes needed, {Remaining} left (the data is truncated or corrupted).");
        var span = _data.AsSpan(_position, count);
        _position += count;
        return span;
    }

    public byte ReadByte(string field) => Take(field, 1)[0];

    /// <summary>A byte that must be 0 or 1.</summary>
    public bool ReadBoolean(string field)
    {
        byte value = ReadByte(field);
        return value <= 1 ? value == 1 : throw Error(field, $"is {value}; expected 0 or 1.");
    }

    public int ReadInt32(string field) => BinaryPrimitives.ReadInt32LittleEndian(Take(field, 4));

    /// <summary>An integer that must lie in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public int ReadInt32(string field, int min, int max)
    {
        int value = ReadInt32(field);
        return value >= min && value <= max ? value : throw Error(field, $"is {value}; expected {min} to {max}.");
    }

    public uint ReadUInt32(string field) => BinaryPrimitives.ReadUInt32LittleEndian(Take(field, 4));

    public long ReadInt64(string field) => BinaryPrimitives.ReadInt64LittleEndian(Take(field, 8));

    public ulong ReadUInt64(string field) => BinaryPrimitives.ReadUInt64LittleEndian(Take(field, 8));

    public float ReadSingle(string field) => BinaryPrimitives.ReadSingleLittleEndian(Take(field, 4));

    /// <summary>
    /// A count of items of at least <paramref name="minimumItemBytes"/> bytes each: non-negative, at most
    /// <paramref name="max"/>, and small enough that the items fit in the bytes left.
    /// </summary>
    public int ReadCount(string field, int minimumItemBytes, int max)
    {
        int count = ReadInt32(field);
        if (count < 0 || count > max)
            throw Error(field, $"is {count}; expected 0 to {max}.");
        if ((long)count * minimumItemBytes > Remaining)
            throw Error(field, $"is {count}, but only {Remaining} bytes are left for its items (the data is truncated or corrupted).");
        return count;
    }

    /// <summary>A string of at most <paramref name="maxBytes"/> UTF-8 bytes (strict UTF-8).</summary>
    public string ReadString(string field, int maxBytes = 4096)
    {
        // 7-bit-encoded length: up to 5 bytes, 7 bits each, high bit = more.
        int length = 0;
        for (int shift = 0; ; shift += 7)
        {
            if (shift > 28) throw Error(field, "has an invalid length prefix.");
            byte b = ReadByte(field);
            length |= (b & 0x7F) << shift;
            if ((b & 0x80) == 0) break;
        }
        if (length < 0 || length > maxBytes)
            throw Error(field, $"has length {(uint)length}; expected at most {maxBytes} bytes.");
        var bytes = Take(field, length);
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw Error(field, "is not valid UTF-8 text.");
        }
    }

    /// <summary>Copies the next <paramref name="count"/> bytes.</summary>
    public byte[] ReadBytes(string field, int count) => Take(field, count).ToArray();

    /// <summary>Fills <paramref name="destination"/> with little-endian floats.</summary>
    public void ReadSingles(string field, Span<float> destination)
    {
        var bytes = Take(field, checked(destination.Length * sizeof(float)));
        if (BitConverter.IsLittleEndian)
            bytes.CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(destination));
        else
            for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.Slice(i * 4));
    }

    /// <summary>The bytes of the range [<paramref name="start"/>, current position), e.g. for a checksum.</summary>
    public ReadOnlySpan<byte> Since(int start) => _data.AsSpan(start, _position - start);

    /// <summary>The current position in the buffer.</summary>
    public int Position => _position;

    /// <summary>Fails unless every byte was read.</summary>
    public void ExpectEnd()
    {
        if (Remaining != 0)
            throw new InvalidDataException($"{Part}: {Remaining} unexpected bytes follow the data.");
    }

    /// <summary>
    /// <paramref name="text"/> (which came from a file) made safe to print: control and other non-printable characters
    /// escaped as \uXXXX, and at most <paramref name="maxLength"/> characters kept.
    /// </summary>
    public static string Printable(string text, int maxLength = 80)
    {
        var result = new StringBuilder();
        foreach (char c in text.Length > maxLength ? text[..maxLength] : text)
        {
            if (char.IsControl(c) || char.IsSurrogate(c) || c == '\uFFFD' || char.GetUnicodeCategory(c) is System.Globalization.UnicodeCategory.Format
                or System.Globalization.UnicodeCategory.OtherNotAssigned or System.Globalization.UnicodeCategory.PrivateUse)
                result.Append($"\\u{(int)c:X4}");
            else
                result.Append(c);
        }
        if (text.Length > maxLength) result.Append('…');
        return result.ToString();
    }
}
