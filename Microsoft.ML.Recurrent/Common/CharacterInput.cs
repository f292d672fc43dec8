using Microsoft.ML.Data;
using Microsoft.ML.Recurrent.Model;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// The characters of every token, read from a text-vector column aligned one to one with the token keys (for example
/// the <c>TokenizeIntoWords</c> output the keys were made from), for a character-level word encoder. The character
/// vocabulary is built at training: characters seen at least twice get ids 1, 2, … in code order; every other
/// character is id 0, the learned "unknown character". UTF-16 code units are the characters.
/// </summary>
internal sealed class CharacterInput
{
    private readonly Dictionary<char, int> _ids;
    private readonly char[] _characters;

    /// <summary>The text-vector column.</summary>
    public string ColumnName { get; }

    /// <summary>Character ids: the known characters + 1 (id 0 = unknown).</summary>
    public int VocabularySize => _characters.Length + 1;

    /// <summary>The known characters, in id order (id = index + 1).</summary>
    public ReadOnlySpan<char> Characters => _characters;

    public CharacterInput(string columnName, char[] characters)
    {
        ColumnName = columnName;
        _characters = characters;
        _ids = new Dictionary<char, int>(characters.Length);
        for (int i = 0; i < characters.Length; i++)
            if (!_ids.TryAdd(characters[i], i + 1))
                throw new ArgumentException($"Character U+{(int)characters[i]:X4} is listed twice.", nameof(characters));
    }

    /// <summary>A vocabulary of the characters seen at least <paramref name="minimumCount"/> times in <paramref name="codes"/> (UTF-16 code units).</summary>
    public static CharacterInput FromCodes(string columnName, ReadOnlySpan<int> codes, int minimumCount)
    {
        var counts = new Dictionary<int, int>();
        foreach (int c in codes) counts[c] = counts.GetValueOrDefault(c) + 1;
        var known = counts.Where(kv => kv.Value >= minimumCount).Select(kv => (char)kv.Key).Order().ToArray();
        return new CharacterInput(columnName, known);
    }

    /// <summary>The id of a character (0 when unknown).</summary>
    public int Id(char c) => _ids.GetValueOrDefault(c);

    /// <summary>Checks the scoring-time column: it must exist and hold a vector of text.</summary>
    public int ColumnIndex(DataViewSchema schema)
    {
        var column = schema.GetColumnOrNull(ColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(schema), $"Character column '{BoundedReader.Printable(ColumnName)}' not found in the input schema.");
        if (column.Type is not VectorDataViewType { ItemType: TextDataViewType })
            throw new ArgumentOutOfRangeException(nameof(schema), $"Character column '{BoundedReader.Printable(ColumnName)}' has type {column.Type}; expected a vector of text, one word per token.");
        return column.Index;
    }

    /// <summary>
    /// Appends the characters of the first <paramref name="steps"/> words (UTF-16 code units, as raw codes when
    /// <paramref name="raw"/>, else ids) to <paramref name="characters"/> and their counts to <paramref name="lengths"/>.
    /// Invalid (nothing appended) when the row has another number of words than <paramref name="tokens"/>.
    /// </summary>
    public RowStatus ReadWords(in VBuffer<ReadOnlyMemory<char>> words, int tokens, int steps, List<int> characters, List<int> lengths,
        bool raw, out string? problem)
    {
        problem = null;
        if (words.Length != tokens)
        {
            problem = $"character column '{ColumnName}' holds {words.Length} words but the token column holds {tokens} tokens; they must be aligned one to one";
            return RowStatus.Invalid;
        }
        int t = 0;
        foreach (var word in words.DenseValues())
        {
            if (t++ == steps) break;
            foreach (char c in word.Span) characters.Add(raw ? c : Id(c));
            lengths.Add(word.Length);
        }
        return RowStatus.Valid;
    }

    /// <summary>Maps raw character codes (as read with raw: true) to ids, in place.</summary>
    public void MapCodes(Span<int> codes)
    {
        for (int i = 0; i < codes.Length; i++) codes[i] = Id((char)codes[i]);
    }

    // *** Binary format *** (RecurrentModel, version 3)
    // string: column name; i32: character count K; K × u16: the characters in id order
    public void Write(BinaryWriter writer)
    {
        writer.Write(ColumnName);
        writer.Write(_characters.Length);
        foreach (char c in _characters) writer.Write((ushort)c);
    }

    public static CharacterInput Read(BoundedReader reader)
    {
        string column = reader.ReadString("character column name", 1024);
        if (column.Length == 0)
            throw reader.Error("character column name", "is empty.");
        int count = reader.ReadCount("character count", sizeof(ushort), char.MaxValue + 1);
        var bytes = reader.ReadBytes("characters", count * sizeof(ushort));
        var characters = new char[count];
        for (int i = 0; i < count; i++)
            characters[i] = (char)System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(i * 2));
        try
        {
            return new CharacterInput(column, characters);
        }
        catch (ArgumentException e)
        {
            throw reader.Error("characters", e.Message);
        }
    }
}
