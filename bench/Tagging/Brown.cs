using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Tagging;

/// <summary>One sentence of the corpus: its words exactly as written and their normalized tags (same length).</summary>
internal sealed record TaggedSentence(string File, string[] Words, string[] Tags);

internal enum Part { Train, Dev, Test }

/// <summary>
/// The Brown corpus (form C, ../shared/datasets/brown) on the fixed split of issue 10: the 500 corpus files sorted by
/// name, file i (0-based) is test if i % 10 == 0, dev if i % 10 == 1, train otherwise. Every non-empty line is one
/// sentence of whitespace-separated <c>word/tag</c> tokens; a token is split at its LAST '/' (words such as
/// <c>1/2</c>, <c>and/or</c> contain slashes, tags never do). Tags are normalized by <see cref="NormalizeTag"/>.
/// </summary>
internal sealed partial class BrownCorpus
{
    public required string Directory { get; init; }
    /// <summary>The corpus files (sorted by name) and the part each one belongs to.</summary>
    public required IReadOnlyList<(string File, Part Part)> Files { get; init; }
    public required IReadOnlyList<TaggedSentence> Train { get; init; }
    public required IReadOnlyList<TaggedSentence> Dev { get; init; }
    public required IReadOnlyList<TaggedSentence> Test { get; init; }
    /// <summary>Whether this is the <c>--quick</c> subset (files with i % 40 &lt; 5: 37 train, 13 dev, 13 test files).</summary>
    public bool Quick { get; init; }
    /// <summary>Whether the tags are the 12 coarse ones of <see cref="UniversalTags"/> (<c>--tagset universal</c>).</summary>
    public bool Universal { get; init; }

    /// <summary>Corpus file names: "c", a genre letter a–r, two digits (CONTENTS, README, cats.txt… are not data).</summary>
    [GeneratedRegex("^c[a-r][0-9][0-9]$")]
    private static partial Regex CorpusFileName();

    public static Part PartOf(int sortedIndex) => (sortedIndex % 10) switch { 0 => Part.Test, 1 => Part.Dev, _ => Part.Train };

    public static BrownCorpus Load(string directory, bool quick, bool universal = false)
    {
        var names = System.IO.Directory.EnumerateFiles(directory).Select(Path.GetFileName).OfType<string>()
            .Where(n => CorpusFileName().IsMatch(n)).OrderBy(n => n, StringComparer.Ordinal).ToArray();
        if (names.Length != 500) throw new InvalidDataException($"{directory}: expected the 500 Brown corpus files ca01 … cr09, found {names.Length}");
        var files = names.Select((n, i) => (n, PartOf(i))).ToArray();
        var parts = new Dictionary<Part, List<TaggedSentence>> { [Part.Train] = [], [Part.Dev] = [], [Part.Test] = [] };
        for (int i = 0; i < names.Length; i++)
        {
            // --quick: blocks of the split pattern, one in four (i % 40 < 5 keeps test 0, dev 1, train 2–4 of every 40).
            if (quick && i % 40 >= 5) continue;
            var sentences = ReadFile(Path.Combine(directory, names[i]));
            if (universal) sentences = sentences.Select(s => s with { Tags = s.Tags.Select(UniversalTags.Of).ToArray() });
            parts[files[i].Item2].AddRange(sentences);
        }
        return new BrownCorpus
        {
            Directory = directory, Files = files, Quick = quick, Universal = universal,
            Train = parts[Part.Train], Dev = parts[Part.Dev], Test = parts[Part.Test],
        };
    }

    public static IEnumerable<TaggedSentence> ReadFile(string path)
    {
        string file = Path.GetFileName(path);
        int lineNumber = 0;
        foreach (string line in File.ReadLines(path, Encoding.UTF8))
        {
            lineNumber++;
            var tokens = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (tokens.Length == 0) continue;     // blank and whitespace-only lines separate sentences
            var words = new string[tokens.Length];
            var tags = new string[tokens.Length];
            for (int t = 0; t < tokens.Length; t++)
            {
                int slash = tokens[t].LastIndexOf('/');
                if (slash <= 0 || slash == tokens[t].Length - 1)
                    throw new InvalidDataException($"{file}:{lineNumber}: token '{tokens[t]}' is not word/tag");
                words[t] = tokens[t][..slash];
                tags[t] = NormalizeTag(tokens[t][(slash + 1)..]);
            }
            yield return new TaggedSentence(file, words, tags);
        }
    }

    /// <summary>
    /// Lower-cases a Brown tag and removes the prefix <c>fw-</c> (foreign word) and the suffixes <c>-tl</c> (title),
    /// <c>-hl</c> (headline) and <c>-nc</c> (cited word), repeatedly, in any order: <c>FW-NN-TL-NC</c> → <c>nn</c>,
    /// <c>---HL</c> → <c>--</c>. Everything else is kept: compound tags (<c>ppss+md</c>, <c>in+at</c>), the negation mark
    /// <c>*</c> (<c>bez*</c>, and <c>*</c> itself for <i>not</i>/<i>n't</i>), possessive <c>$</c>.
    /// </summary>
    public static string NormalizeTag(string raw)
    {
        string tag = raw.ToLowerInvariant();
        if (tag.StartsWith("fw-", StringComparison.Ordinal) && tag.Length > 3) tag = tag[3..];
        for (bool changed = true; changed;)
        {
            changed = false;
            foreach (string suffix in (ReadOnlySpan<string>)["-tl", "-hl", "-nc"])
                if (tag.Length > suffix.Length && tag.EndsWith(suffix, StringComparison.Ordinal))
                {
                    tag = tag[..^suffix.Length];
                    changed = true;
                }
        }
        return tag;
    }

    public IReadOnlyList<TaggedSentence> Sentences(Part part) => part switch { Part.Train => Train, Part.Dev => Dev, _ => Test };

    /// <summary>The word forms (exactly as written) that occur in the training part: a test token is "unseen" when its form is not here.</summary>
    public HashSet<string> TrainWords() => Train.SelectMany(s => s.Words).ToHashSet(StringComparer.Ordinal);

    public string Describe()
    {
        static string Count(IReadOnlyList<TaggedSentence> s) => string.Create(CultureInfo.InvariantCulture, $"{s.Count:N0} sentences / {s.Sum(x => (long)x.Words.Length):N0} tokens");
        return $"Brown{(Quick ? " (--quick subset)" : "")}{(Universal ? " (12 universal tags)" : "")}: train {Count(Train)}, dev {Count(Dev)}, test {Count(Test)}; " +
               $"{Train.SelectMany(s => s.Tags).Distinct().Count()} tags in train";
    }
}
