using System.Text;
using TextClassificationDemo;

namespace TextClassificationDemo
{
    /// <summary>One labelled text (the shape DemoData.cs produces).</summary>
    public sealed class TextRow
    {
        public string Label { get; set; } = "";
        public string Text { get; set; } = "";
    }
}

namespace Accuracy
{
    /// <summary>A data set as texts and as the token ids of the reference recipe.</summary>
    internal sealed class Corpus
    {
        public required string Name { get; init; }
        public required List<TextRow> TrainRows { get; init; }
        public required List<TextRow> TestRows { get; init; }
        public required string[] Classes { get; init; }
        /// <summary>Label index (0-based) of each training / test row.</summary>
        public required int[] TrainLabels { get; init; }
        public required int[] TestLabels { get; init; }
        /// <summary>Token ids (0 = UNK, 1..V = vocabulary), at most MaxTokens each, never empty.</summary>
        public required int[][] TrainIds { get; init; }
        public required int[][] TestIds { get; init; }
        /// <summary>Vocabulary size V (ids 1..V); the embedding has V + 1 rows.</summary>
        public required int VocabularySize { get; init; }

        public const int MaxTokens = 256, MinCount = 2, MaxVocabulary = 30_000;

        public static Corpus Load(string dataset, string datasetsDirectory, int? limit)
        {
            var (train, test, _) = DemoData.Load(new Arguments(dataset, 1, datasetsDirectory, Path.GetTempPath(), null));
            if (limit is int n && n < train.Count)
            {
                // A fixed, class-mixed subset: shuffle with a fixed seed, keep the first n.
                var rng = new Random(12345);
                train = train.OrderBy(_ => rng.Next()).Take(n).ToList();
            }
            var classes = train.Select(r => r.Label).Distinct().OrderBy(c => c, StringComparer.Ordinal).ToArray();
            var classIndex = classes.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i);

            var trainTokens = train.Select(r => Tokenize(r.Text)).ToList();
            var counts = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var tokens in trainTokens)
                foreach (var t in tokens)
                    counts[t] = counts.GetValueOrDefault(t) + 1;
            var vocabulary = counts.Where(p => p.Value >= MinCount)
                .OrderByDescending(p => p.Value).ThenBy(p => p.Key, StringComparer.Ordinal)
                .Take(MaxVocabulary).Select((p, i) => (p.Key, Id: i + 1))
                .ToDictionary(p => p.Key, p => p.Id, StringComparer.Ordinal);

            int[] Ids(List<string> tokens)
            {
                if (tokens.Count == 0) return [0];
                int len = Math.Min(tokens.Count, MaxTokens);
                var ids = new int[len];
                for (int i = 0; i < len; i++) ids[i] = vocabulary.GetValueOrDefault(tokens[i]);
                return ids;
            }
            return new Corpus
            {
                Name = dataset,
                TrainRows = train,
                TestRows = test,
                Classes = classes,
                TrainLabels = train.Select(r => classIndex[r.Label]).ToArray(),
                TestLabels = test.Select(r => classIndex[r.Label]).ToArray(),
                TrainIds = trainTokens.Select(Ids).ToArray(),
                TestIds = test.Select(r => Ids(Tokenize(r.Text))).ToArray(),
                VocabularySize = vocabulary.Count,
            };
        }

        /// <summary>Lower-cased runs of letters and digits; everything else (apostrophes included) separates tokens.</summary>
        public static List<string> Tokenize(string text)
        {
            var tokens = new List<string>();
            var current = new StringBuilder();
            foreach (char ch in text)
            {
                if (char.IsLetterOrDigit(ch)) current.Append(char.ToLowerInvariant(ch));
                else if (current.Length > 0) { tokens.Add(current.ToString()); current.Clear(); }
            }
            if (current.Length > 0) tokens.Add(current.ToString());
            return tokens;
        }

        public string Describe() =>
            $"{Name}: {TrainIds.Length} train / {TestIds.Length} test rows, {Classes.Length} classes, vocabulary {VocabularySize} (+UNK), " +
            $"mean tokens {TrainIds.Average(a => a.Length):F1} (capped at {MaxTokens}), train tokens {TrainIds.Sum(a => (long)a.Length)}, " +
            $"train labels {string.Join("/", Classes.Select((c, i) => $"{c}:{TrainLabels.Count(l => l == i)}"))}, test labels {string.Join("/", Classes.Select((c, i) => $"{c}:{TestLabels.Count(l => l == i)}"))}";
    }
}
