using Microsoft.ML.Recurrent.Model;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// The ids a language model reads and predicts: 0 = unknown (a character or key seen fewer than the minimum number
/// of times in training, or never), 1 = end of row (rows are joined into one stream with it, and a row's first token
/// is predicted from it), 2… = the known characters in code order, or the known keys in key order. Character models
/// read UTF-16 code units; token models read the keys of a key column (key 0, a missing value, is unknown).
/// </summary>
internal sealed class LanguageModelVocabulary
{
    /// <summary>Id of an unknown character or key.</summary>
    public const int Unknown = 0;

    /// <summary>Id of the end of a row (also the start of the next).</summary>
    public const int EndOfRow = 1;

    /// <summary>Largest number of key values (words) a token model keeps for rendering.</summary>
    public const int MaxKeys = 1 << 24;

    private readonly char[] _characters;        // character models: the character of id i + 2
    private readonly Dictionary<char, int>? _characterIds;
    private readonly int[] _keyIds;             // token models: id of key k (index k, 0 = missing), [K + 1]
    private readonly int[] _idKeys;             // token models: key of id i + 2
    private readonly string[]? _words;          // token models: text of key k at k − 1, when the column had key values
    private Dictionary<string, int>? _wordIds;

    /// <summary>Whether the model reads characters of a text column (else keys of a key column).</summary>
    public bool IsCharacters { get; }

    /// <summary>Number of keys of the key type (token models), 0 for characters.</summary>
    public int KeyCount { get; }

    /// <summary>Number of ids V.</summary>
    public int Size => 2 + (IsCharacters ? _characters.Length : _idKeys.Length);

    /// <summary>Whether ids can be rendered as text: always for characters, with key values for keys.</summary>
    public bool HasText => IsCharacters || _words is not null;

    private LanguageModelVocabulary(char[] characters)
    {
        IsCharacters = true;
        _characters = characters;
        _characterIds = new Dictionary<char, int>(characters.Length);
        for (int i = 0; i < characters.Length; i++) _characterIds[characters[i]] = i + 2;
        _keyIds = [];
        _idKeys = [];
    }

    private LanguageModelVocabulary(int keyCount, int[] idKeys, string[]? words)
    {
        KeyCount = keyCount;
        _characters = [];
        _idKeys = idKeys;
        _keyIds = new int[keyCount + 1];
        for (int i = 0; i < idKeys.Length; i++) _keyIds[idKeys[i]] = i + 2;
        _words = words;
    }

    /// <summary>The characters seen at least <paramref name="minimumCount"/> times, from counts per UTF-16 code unit [65536].</summary>
    public static LanguageModelVocabulary ForCharacters(long[] counts, int minimumCount)
    {
        var known = new List<char>();
        for (int c = 0; c < counts.Length; c++)
            if (counts[c] >= minimumCount && counts[c] > 0) known.Add((char)c);
        return new LanguageModelVocabulary([.. known]);
    }

    /// <summary>The keys 1…K seen at least <paramref name="minimumCount"/> times, from counts per key [K + 1].</summary>
    public static LanguageModelVocabulary ForKeys(long[] counts, int minimumCount, string[]? words)
    {
        var known = new List<int>();
        for (int k = 1; k < counts.Length; k++)
            if (counts[k] >= minimumCount && counts[k] > 0) known.Add(k);
        return new LanguageModelVocabulary(counts.Length - 1, [.. known], words);
    }

    /// <summary>Id of a character.</summary>
    public int OfCharacter(char c) => _characterIds!.TryGetValue(c, out int id) ? id : Unknown;

    /// <summary>Id of a key (0 or beyond the key count: unknown).</summary>
    public int OfKey(uint key) => key == 0 || key > (uint)KeyCount ? Unknown : _keyIds[key];

    /// <summary>Appends the ids of a text's characters.</summary>
    public void AppendCharacters(ReadOnlySpan<char> text, List<int> ids)
    {
        foreach (char c in text) ids.Add(OfCharacter(c));
    }

    /// <summary>Appends the ids of a prompt: its characters, or (token models) its words split on white space, matched to the key values.</summary>
    public void AppendPrompt(string prompt, List<int> ids)
    {
        if (IsCharacters)
        {
            AppendCharacters(prompt, ids);
            return;
        }
        if (_words is null)
            throw new InvalidOperationException("This token model's input column had no key values (words), so it cannot read a text prompt; use GenerateKeys with key values.");
        foreach (var word in prompt.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
            ids.Add(OfWord(word));
    }

    /// <summary>Whether the ids of a token model can be looked up by word (its key column had key values).</summary>
    public bool HasWords => _words is not null;

    /// <summary>Id of a token model's word (its key value; the first key with that text), or <see cref="Unknown"/>.</summary>
    public int OfWord(string word)
    {
        if (_words is null)
            throw new InvalidOperationException("This token model's input column had no key values (words).");
        if (_wordIds is null)
        {
            var map = new Dictionary<string, int>(_words.Length, StringComparer.Ordinal);
            for (int k = 1; k <= _words.Length && k <= KeyCount; k++)
                map.TryAdd(_words[k - 1], OfKey((uint)k));
            Interlocked.CompareExchange(ref _wordIds, map, null);
        }
        return _wordIds.TryGetValue(word, out int id) ? id : Unknown;
    }

    /// <summary>The key of a token model's id (0 for unknown and end of row).</summary>
    public uint KeyOf(int id) => IsCharacters || id < 2 ? 0u : (uint)_idKeys[id - 2];

    /// <summary>Text of an id: its character or word; end of row → <paramref name="endOfRow"/>; unknown → U+FFFD.</summary>
    public string TextOf(int id, string endOfRow)
    {
        if (id == EndOfRow) return endOfRow;
        if (id == Unknown) return "\uFFFD";
        if (IsCharacters) return _characters[id - 2].ToString();
        int key = _idKeys[id - 2];
        return _words is not null && key <= _words.Length ? _words[key - 1] : key.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    // *** Binary format ***
    // u8: 1 = characters, 0 = keys
    // characters: i32 count C, C × u16 code units (strictly increasing)
    // keys: i32 key count K; i32 known count M, M × i32 keys (strictly increasing, in [1, K]);
    //       u8 1 when words follow, then K strings
    public void Write(BinaryWriter writer)
    {
        writer.Write(IsCharacters);
        if (IsCharacters)
        {
            writer.Write(_characters.Length);
            foreach (char c in _characters) writer.Write((ushort)c);
            return;
        }
        writer.Write(KeyCount);
        writer.Write(_idKeys.Length);
        foreach (int k in _idKeys) writer.Write(k);
        writer.Write(_words is not null);
        if (_words is not null)
        {
            for (int k = 0; k < KeyCount; k++) writer.Write(k < _words.Length ? _words[k] : "");
        }
    }

    /// <summary>Reads what <see cref="Write"/> wrote, range-checking every field.</summary>
    public static LanguageModelVocabulary Read(BoundedReader reader)
    {
        if (reader.ReadBoolean("character vocabulary flag"))
        {
            int count = reader.ReadCount("character count", sizeof(ushort), char.MaxValue + 1);
            var characters = new char[count];
            for (int i = 0; i < count; i++)
            {
                characters[i] = (char)BitConverter.ToUInt16(reader.ReadBytes("character", 2));
                if (i > 0 && characters[i] <= characters[i - 1])
                    throw reader.Error("characters", "are not in strictly increasing order.");
            }
            return new LanguageModelVocabulary(characters);
        }
        int keyCount = reader.ReadInt32("key count", 1, MaxKeys);
        int known = reader.ReadCount("known key count", sizeof(int), keyCount);
        var keys = new int[known];
        for (int i = 0; i < known; i++)
        {
            keys[i] = reader.ReadInt32("known key", 1, keyCount);
            if (i > 0 && keys[i] <= keys[i - 1])
                throw reader.Error("known keys", "are not in strictly increasing order.");
        }
        string[]? words = null;
        if (reader.ReadBoolean("key values flag"))
        {
            if (keyCount > reader.Remaining)
                throw reader.Error("key values", $"for {keyCount} keys cannot fit in the {reader.Remaining} bytes left.");
            words = new string[keyCount];
            for (int k = 0; k < keyCount; k++) words[k] = reader.ReadString("key value", 1 << 16);
        }
        return new LanguageModelVocabulary(keyCount, keys, words);
    }
}
