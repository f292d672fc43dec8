using System.Globalization;

namespace Tagging;

/// <summary>The Markdown of docs/tagging.md: the data section (<c>--stats</c>) and the results table (<c>--report</c>).</summary>
internal static class Report
{
    public static void Runs(List<TaggingResult> runs)
    {
        Console.WriteLine("| model | config | data | dev % | test % | test unseen % | epochs (best) | train s | train tokens/s | inference tokens/s | threads | peak MiB | other processes (cores) | load start → end | started (UTC) | commit |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in runs)
        {
            string epochs = r.Epochs.Count == 0 ? "" : $"{r.Epochs.Count} ({r.BestEpoch})";
            string unseen = r.Tune ? $"dev: {F(r.DevUnseenAccuracy)}" : F(r.TestUnseenAccuracy);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Model} | {(r.Config.Length == 0 ? "" : $"`{r.Config}`")} | {(r.Quick ? "quick" : "full")}{(r.Tagset == "universal" ? ", universal tags" : "")}{(r.Tune ? ", tune" : "")} | {F(r.DevAccuracy)} | {F(r.TestAccuracy)} | {unseen} | {epochs} | " +
                $"{r.TrainSeconds:F0} | {N(r.TrainTokensPerSecond)} | {N(r.InferenceTokensPerSecond)} | {(r.Threads == 0 ? "default" : r.Threads)} | {r.PeakMemoryMiB:F0} | {F(r.ForeignCores)} | {r.LoadStart} → {r.LoadEnd} | {r.Started} | {r.Commit} |"));
        }
        var withEpochs = runs.Where(r => r.Epochs.Count > 0).ToList();
        if (withEpochs.Count == 0) return;
        Console.WriteLine();
        Console.WriteLine("| model | config | data | per-epoch dev % | per-epoch train s | per-epoch train tokens/s | per-epoch loss |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (var r in withEpochs)
            Console.WriteLine($"| {r.Model} | {(r.Config.Length == 0 ? "" : $"`{r.Config}`")} | {(r.Quick ? "quick" : "full")} | " +
                $"{string.Join(", ", r.Epochs.Select(e => F(e.DevAccuracy)))} | {string.Join(", ", r.Epochs.Select(e => e.TrainSeconds.ToString("F0", CultureInfo.InvariantCulture)))} | " +
                $"{string.Join(", ", r.Epochs.Select(e => N(e.TrainTokensPerSecond)))} | {string.Join(", ", r.Epochs.Select(e => e.Loss.ToString("F3", CultureInfo.InvariantCulture)))} |");
    }

    public static void Data(BrownCorpus corpus)
    {
        var train = corpus.Train;
        var trainWords = corpus.TrainWords();
        var trainLower = train.SelectMany(s => s.Words).Select(w => w.ToLowerInvariant()).ToHashSet(StringComparer.Ordinal);
        var trainTags = train.SelectMany(s => s.Tags).ToHashSet(StringComparer.Ordinal);
        Console.WriteLine($"| part | files | sentences | tokens | word forms | tags | tokens unseen in train (exact form) | … lower-cased | tokens whose tag never occurs in train |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var part in new[] { Part.Train, Part.Dev, Part.Test })
        {
            var s = corpus.Sentences(part);
            var words = s.SelectMany(x => x.Words).ToList();
            var tags = s.SelectMany(x => x.Tags).ToList();
            string files = string.Join(' ', s.Select(x => x.File).Distinct()).Length > 0 ? s.Select(x => x.File).Distinct().Count().ToString(CultureInfo.InvariantCulture) : "0";
            string Unseen(Func<string, bool> seen) => part == Part.Train ? "–" : Pct(words.Count(w => !seen(w)), words.Count);
            Console.WriteLine($"| {part.ToString().ToLowerInvariant()} | {files} | {s.Count:N0} | {words.Count:N0} | {words.Distinct().Count():N0} | {tags.Distinct().Count()} | " +
                $"{Unseen(trainWords.Contains)} | {Unseen(w => trainLower.Contains(w.ToLowerInvariant()))} | {(part == Part.Train ? "–" : tags.Count(t => !trainTags.Contains(t)).ToString(CultureInfo.InvariantCulture))} |");
        }
        var all = corpus.Train.Concat(corpus.Dev).Concat(corpus.Test).ToList();
        var tagCounts = all.SelectMany(s => s.Tags).GroupBy(t => t).Select(g => (Tag: g.Key, Count: g.LongCount()))
            .OrderByDescending(p => p.Count).ThenBy(p => p.Tag, StringComparer.Ordinal).ToList();
        long tokens = tagCounts.Sum(p => p.Count);
        Console.WriteLine();
        Console.WriteLine($"{tagCounts.Count} distinct tags after normalization in all parts ({trainTags.Count} in train); {tokens:N0} tokens, {all.Count:N0} sentences, longest sentence {all.Max(s => s.Words.Length)} tokens, mean {all.Average(s => s.Words.Length):F1}.");
        var unseenTags = corpus.Dev.Concat(corpus.Test).SelectMany(s => s.Tags).Where(t => !trainTags.Contains(t)).GroupBy(t => t).Select(g => $"`{g.Key}` ×{g.Count()}");
        Console.WriteLine($"Tags of dev/test that never occur in train: {string.Join(", ", unseenTags)}.");
        var compound = tagCounts.Where(p => p.Tag.Contains('+')).ToList();
        var negated = tagCounts.Where(p => p.Tag.EndsWith('*')).ToList();
        Console.WriteLine($"Compound tags (contracted forms, `+`): {compound.Count} tags, {compound.Sum(p => p.Count):N0} tokens ({Pct(compound.Sum(p => p.Count), tokens)}); most frequent: {string.Join(", ", compound.Take(8).Select(p => $"`{p.Tag}` {p.Count:N0}"))}.");
        Console.WriteLine($"Negated tags (`*`): {negated.Count} tags, {negated.Sum(p => p.Count):N0} tokens: {string.Join(", ", negated.Select(p => $"`{p.Tag}` {p.Count:N0}"))}.");
        Console.WriteLine($"Tags still containing '-' after normalization: {string.Join(", ", tagCounts.Where(p => p.Tag.Contains('-')).Select(p => $"`{p.Tag}` {p.Count:N0}"))}.");
        var slashWords = all.SelectMany(s => s.Words).Where(w => w.Contains('/')).ToList();
        Console.WriteLine($"Words containing '/' (split at the last '/'): {slashWords.Count:N0} tokens, e.g. {string.Join(", ", slashWords.Distinct().Take(8).Select(w => $"`{w}`"))}.");
        Console.WriteLine($"Tags occurring fewer than 10 times: {tagCounts.Count(p => p.Count < 10)}.");
        Console.WriteLine();
        Console.WriteLine("| rank | tag | tokens | share % | cumulative % |");
        Console.WriteLine("|---|---|---|---|---|");
        long cumulative = 0;
        foreach (var (p, i) in tagCounts.Take(25).Select((p, i) => (p, i)))
        {
            cumulative += p.Count;
            Console.WriteLine($"| {i + 1} | `{p.Tag}` | {p.Count:N0} | {100.0 * p.Count / tokens:F2} | {100.0 * cumulative / tokens:F2} |");
        }
    }

    private static string Pct(long part, long whole) => (100.0 * part / whole).ToString("F2", CultureInfo.InvariantCulture) + " %";
    private static string F(double v) => double.IsNaN(v) ? "–" : v.ToString("F2", CultureInfo.InvariantCulture);
    private static string N(double v) => double.IsNaN(v) || v == 0 ? "" : v.ToString("N0", CultureInfo.InvariantCulture);
}
