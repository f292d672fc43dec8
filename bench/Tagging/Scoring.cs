using System.Globalization;

namespace Tagging;

/// <summary>Token accuracy, overall and on the tokens whose word form never occurs in training.</summary>
internal readonly record struct Score(long Tokens, long Correct, long UnseenTokens, long UnseenCorrect)
{
    public double Accuracy => Tokens == 0 ? double.NaN : 100.0 * Correct / Tokens;
    public double UnseenAccuracy => UnseenTokens == 0 ? double.NaN : 100.0 * UnseenCorrect / UnseenTokens;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Accuracy:F2}% of {Tokens:N0} tokens; unseen words {UnseenAccuracy:F2}% of {UnseenTokens:N0} ({100.0 * UnseenTokens / Tokens:F2}% of the tokens)");
}

internal static class Scoring
{
    /// <summary>
    /// Scores <paramref name="predicted"/> against the gold tags. "Unseen" = the word form, exactly as written (case
    /// included), does not occur in the training part — one definition for every model, whatever it does to words.
    /// </summary>
    public static Score Evaluate(IReadOnlyList<TaggedSentence> gold, string[][] predicted, HashSet<string> trainWords,
        Dictionary<(string Gold, string Predicted), int>? confusions = null)
    {
        if (predicted.Length != gold.Count) throw new InvalidOperationException($"{predicted.Length} predicted sentences for {gold.Count}");
        long tokens = 0, correct = 0, unseen = 0, unseenCorrect = 0;
        for (int s = 0; s < gold.Count; s++)
        {
            var g = gold[s];
            if (predicted[s].Length != g.Tags.Length)
                throw new InvalidOperationException($"sentence {s} ({g.File}): {predicted[s].Length} predicted tags for {g.Tags.Length} words");
            for (int t = 0; t < g.Tags.Length; t++)
            {
                bool ok = string.Equals(predicted[s][t], g.Tags[t], StringComparison.Ordinal);
                bool isUnseen = !trainWords.Contains(g.Words[t]);
                tokens++;
                if (ok) correct++;
                if (isUnseen) { unseen++; if (ok) unseenCorrect++; }
                if (!ok && confusions is not null)
                    confusions[(g.Tags[t], predicted[s][t])] = confusions.GetValueOrDefault((g.Tags[t], predicted[s][t])) + 1;
            }
        }
        return new Score(tokens, correct, unseen, unseenCorrect);
    }
}
