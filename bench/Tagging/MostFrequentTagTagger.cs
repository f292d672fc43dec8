namespace Tagging;

/// <summary>
/// Model (a): every training word gets the tag it carries most often in training (ties: the tag more frequent
/// overall); a word form never seen in training gets the most frequent tag overall (<c>nn</c>).
/// The variant <c>mft-rules</c> replaces that last step by a few hand-written rules (<see cref="GuessUnseen"/>).
/// </summary>
internal sealed class MostFrequentTagTagger(bool useRules) : ITagger
{
    private Dictionary<string, string> _byWord = new(StringComparer.Ordinal);
    private Dictionary<string, string> _byLowerWord = new(StringComparer.Ordinal);
    private string _mostFrequent = "";

    public string Settings => useRules
        ? "most frequent tag per word form; unseen: the lower-cased form's tag, else hand-written rules (digit → cd, hyphen → jj, capital → np, suffixes -ing/-ed/-ly/-s/…, else nn)"
        : "most frequent tag per word form; unseen → the most frequent tag overall";

    public void Train(BrownCorpus corpus, TaggingResult result)
    {
        var tagCounts = new Dictionary<string, long>(StringComparer.Ordinal);
        var byWord = new Dictionary<string, Dictionary<string, int>>(StringComparer.Ordinal);
        var byLower = new Dictionary<string, Dictionary<string, int>>(StringComparer.Ordinal);
        foreach (var s in corpus.Train)
            for (int t = 0; t < s.Words.Length; t++)
            {
                tagCounts[s.Tags[t]] = tagCounts.GetValueOrDefault(s.Tags[t]) + 1;
                Add(byWord, s.Words[t], s.Tags[t]);
                Add(byLower, s.Words[t].ToLowerInvariant(), s.Tags[t]);
            }
        // Most frequent; ties go to the tag more frequent overall, then to the ordinal order (deterministic).
        string Best(Dictionary<string, int> counts) => counts
            .OrderByDescending(p => p.Value).ThenByDescending(p => tagCounts[p.Key]).ThenBy(p => p.Key, StringComparer.Ordinal).First().Key;
        _byWord = byWord.ToDictionary(p => p.Key, p => Best(p.Value), StringComparer.Ordinal);
        _byLowerWord = byLower.ToDictionary(p => p.Key, p => Best(p.Value), StringComparer.Ordinal);
        _mostFrequent = tagCounts.OrderByDescending(p => p.Value).ThenBy(p => p.Key, StringComparer.Ordinal).First().Key;
        Console.WriteLine($"  {_byWord.Count:N0} word forms, most frequent tag '{_mostFrequent}'");

        static void Add(Dictionary<string, Dictionary<string, int>> map, string word, string tag)
        {
            if (!map.TryGetValue(word, out var counts)) map[word] = counts = new(StringComparer.Ordinal);
            counts[tag] = counts.GetValueOrDefault(tag) + 1;
        }
    }

    public string[][] Predict(IReadOnlyList<TaggedSentence> sentences) =>
        sentences.Select(s => s.Words.Select(w => _byWord.TryGetValue(w, out var tag) ? tag : useRules ? GuessUnseen(w) : _mostFrequent).ToArray()).ToArray();

    /// <summary>Hand-written guesses for a word form never seen in training (not learned, not tuned on dev or test).</summary>
    private string GuessUnseen(string word)
    {
        if (_byLowerWord.TryGetValue(word.ToLowerInvariant(), out var tag)) return tag;   // "The" at a sentence start, "BOSTON" in a headline
        if (word.Any(char.IsDigit)) return word.Any(char.IsLetter) ? "nn" : "cd";
        if (word.Length > 1 && word.IndexOf('-', 1) > 0) return "jj";                     // over-all, hard-fought
        if (char.IsUpper(word[0])) return word.EndsWith("s", StringComparison.Ordinal) && word.Length > 3 ? "nps" : "np";
        string w = word.ToLowerInvariant();
        if (w.EndsWith("ing", StringComparison.Ordinal)) return "vbg";
        if (w.EndsWith("ed", StringComparison.Ordinal)) return "vbn";
        if (w.EndsWith("ly", StringComparison.Ordinal)) return "rb";
        foreach (string adjective in (ReadOnlySpan<string>)["able", "ible", "ous", "ful", "ive", "less", "ic", "al", "ish"])
            if (w.EndsWith(adjective, StringComparison.Ordinal)) return "jj";
        if (w.EndsWith("s", StringComparison.Ordinal) && !w.EndsWith("ss", StringComparison.Ordinal)) return "nns";
        return "nn";
    }
}
