using System.Buffers.Text;
using System.Globalization;
using System.Text;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// The mergeable ranks of a tiktoken encoding (token bytes → rank) in the compact form a model zip stores them: for
/// rank 0, 1, …, N − 1 in that order, the token's byte count (7-bit encoded, as <see cref="BinaryWriter"/> writes
/// lengths) followed by its bytes. The ranks are therefore always 0 … N − 1 without gaps, which every OpenAI encoding
/// satisfies. Converts a .tiktoken file to this form, and this form back to the .tiktoken text that
/// <c>TiktokenTokenizer.Create</c> reads.
/// </summary>
internal static class TiktokenRanks
{
    /// <summary>The longest token accepted, in bytes (OpenAI's encodings have at most 128).</summary>
    internal const int MaxTokenBytes = 1 << 16;

    /// <summary>
    /// Reads a .tiktoken file: an optional <c>Capacity: n</c> line, then either one <c>base64 rank</c> line per token
    /// (the format OpenAI publishes) or one base64 line per token ranked by line number (the layout of the
    /// Microsoft.ML.Tokenizers.Data packages). These are the layouts <c>TiktokenTokenizer.Create</c> reads.
    /// </summary>
    /// <returns>The ranks in the compact form.</returns>
    /// <exception cref="InvalidDataException">A line is malformed, or the ranks are not 0 … N − 1.</exception>
    internal static byte[] FromTiktokenFile(Stream file)
    {
        using var reader = new StreamReader(file, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, leaveOpen: true);
        int lineNumber = 1;
        string? line = reader.ReadLine();
        if (line is not null && line.StartsWith("Capacity: ", StringComparison.Ordinal))
            (line, lineNumber) = (reader.ReadLine(), lineNumber + 1);
        while (line is { Length: 0 })
            (line, lineNumber) = (reader.ReadLine(), lineNumber + 1);

        var tokens = new List<byte[]>();
        if (line is not null && !line.Contains(' '))
        {
            // One token per line, its rank the line's position; an empty line would leave a rank unused.
            int emptyLine = 0;
            for (; line is not null; (line, lineNumber) = (reader.ReadLine(), lineNumber + 1))
            {
                if (line.Length == 0)
                {
                    if (emptyLine == 0) emptyLine = lineNumber;
                    continue;
                }
                if (emptyLine != 0)
                    throw new InvalidDataException($"The .tiktoken file has an empty line {emptyLine} between tokens, so its ranks have a gap; only ranks 0 … N − 1 are supported.");
                tokens.Add(Decode(line, lineNumber));
            }
        }
        else
        {
            var ranked = new List<(int Rank, byte[] Bytes)>();
            for (; line is not null; (line, lineNumber) = (reader.ReadLine(), lineNumber + 1))
            {
                if (line.Length == 0) continue;
                int space = line.IndexOf(' ');
                if (space <= 0 || space != line.LastIndexOf(' ')
                    || !int.TryParse(line.AsSpan(space + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int rank))
                    throw new InvalidDataException($"The .tiktoken file's line {lineNumber} is not 'base64 rank'.");
                ranked.Add((rank, Decode(line[..space], lineNumber)));
            }
            ranked.Sort((a, b) => a.Rank.CompareTo(b.Rank));
            for (int i = 0; i < ranked.Count; i++)
            {
                if (ranked[i].Rank != i)
                    throw new InvalidDataException($"The .tiktoken file's ranks are not 0 … N − 1: rank {i} is {(ranked[i].Rank < i ? "listed twice" : "missing")}.");
                tokens.Add(ranked[i].Bytes);
            }
        }
        if (tokens.Count == 0)
            throw new InvalidDataException("The .tiktoken file holds no token.");

        var compact = new MemoryStream();
        foreach (var token in tokens)
        {
            for (uint length = (uint)token.Length; ; length >>= 7)
            {
                if (length < 0x80) { compact.WriteByte((byte)length); break; }
                compact.WriteByte((byte)(length | 0x80));
            }
            compact.Write(token);
        }
        return compact.ToArray();
    }

    private static byte[] Decode(string base64, int lineNumber)
    {
        byte[] bytes;
        try
        {
            bytes = Convert.FromBase64String(base64);
        }
        catch (FormatException e)
        {
            throw new InvalidDataException($"The .tiktoken file's line {lineNumber} is not valid base64.", e);
        }
        if (bytes.Length is 0 or > MaxTokenBytes)
            throw new InvalidDataException($"The .tiktoken file's line {lineNumber} holds a token of {bytes.Length} bytes; 1 to {MaxTokenBytes} are supported.");
        return bytes;
    }

    /// <summary>
    /// Checks the compact form and writes it out as a .tiktoken file, one <c>base64 rank</c> line per token, for
    /// <c>TiktokenTokenizer.Create</c>.
    /// </summary>
    /// <param name="ranks">The ranks in the compact form.</param>
    /// <param name="count">The number of tokens, N.</param>
    /// <exception cref="InvalidDataException">The compact form is malformed; the message names the token.</exception>
    internal static MemoryStream ToTiktokenFile(byte[] ranks, out int count)
    {
        // First pass: check every length against the bytes that follow it and size the text exactly.
        long size = 0;
        int at = 0;
        for (count = 0; at < ranks.Length; count++)
        {
            int length = ReadLength(ranks, ref at, count);
            size += Base64.GetMaxEncodedToUtf8Length(length) + 1 + DecimalDigits(count) + 1;
            at += length;
        }
        if (count == 0)
            throw new InvalidDataException("Invalid tokenizer data: the tiktoken ranks hold no token.");
        if (size > Array.MaxLength)
            throw new InvalidDataException("Invalid tokenizer data: the tiktoken ranks are too large.");

        var text = new byte[size];
        int written = 0;
        at = 0;
        for (int rank = 0; rank < count; rank++)
        {
            int length = ReadLength(ranks, ref at, rank);
            Base64.EncodeToUtf8(ranks.AsSpan(at, length), text.AsSpan(written), out _, out int n);
            written += n;
            text[written++] = (byte)' ';
            rank.TryFormat(text.AsSpan(written), out n, default, CultureInfo.InvariantCulture);
            written += n;
            text[written++] = (byte)'\n';
            at += length;
        }
        return new MemoryStream(text, 0, written, writable: false);
    }

    /// <summary>Reads token <paramref name="rank"/>'s 7-bit-encoded byte count and checks it against the bytes left.</summary>
    private static int ReadLength(byte[] ranks, ref int at, int rank)
    {
        uint length = 0;
        for (int shift = 0; ; shift += 7)
        {
            if (at >= ranks.Length)
                throw new InvalidDataException($"Invalid tokenizer data: the tiktoken ranks end inside the length of token {rank}.");
            byte b = ranks[at++];
            length |= (uint)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) break;
            if (shift >= 14)
                throw new InvalidDataException($"Invalid tokenizer data: the tiktoken ranks give token {rank} a length of more than {MaxTokenBytes} bytes.");
        }
        if (length is 0 or > MaxTokenBytes)
            throw new InvalidDataException($"Invalid tokenizer data: the tiktoken ranks give token {rank} a length of {length} bytes; 1 to {MaxTokenBytes} are valid.");
        if (length > ranks.Length - at)
            throw new InvalidDataException($"Invalid tokenizer data: token {rank} of the tiktoken ranks needs {length} bytes; {ranks.Length - at} are left.");
        return (int)length;
    }

    private static int DecimalDigits(int value)
    {
        int digits = 1;
        for (; value >= 10; value /= 10) digits++;
        return digits;
    }
}
