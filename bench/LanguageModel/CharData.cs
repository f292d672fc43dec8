namespace LanguageModel;

/// <summary>
/// Tiny Shakespeare as character ids: the vocabulary is the sorted distinct characters of the whole file (65); the first
/// 90 % of the characters train, the last 10 % validate (split on the character count).
/// </summary>
internal sealed class CharData
{
    public required string Path { get; init; }
    public required char[] Vocabulary { get; init; }
    public required int[] Train { get; init; }
    public required int[] Validation { get; init; }

    public int VocabularySize => Vocabulary.Length;

    public static CharData Load(string path)
    {
        string text = File.ReadAllText(path);
        var vocabulary = text.Distinct().Order().ToArray();
        var index = new Dictionary<char, int>();
        for (int i = 0; i < vocabulary.Length; i++) index[vocabulary[i]] = i;
        var ids = new int[text.Length];
        for (int i = 0; i < text.Length; i++) ids[i] = index[text[i]];
        int n = (int)(text.Length * 0.9);
        return new CharData { Path = path, Vocabulary = vocabulary, Train = ids[..n], Validation = ids[n..] };
    }

    public override string ToString() =>
        $"{System.IO.Path.GetFileName(System.IO.Path.GetDirectoryName(Path))}: {Train.Length + Validation.Length:N0} chars, vocabulary {VocabularySize}, train {Train.Length:N0}, validation {Validation.Length:N0}";
}
