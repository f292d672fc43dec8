using System.Globalization;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;
using Microsoft.ML.Transforms;

namespace Tagging;

/// <summary>One token as ML.NET sees it in model (b): its window features as one space-separated string, and its tag.</summary>
internal sealed class TokenRow
{
    public string Text { get; set; } = "";
    public string Tag { get; set; } = "";
}

/// <summary>
/// Model (b): a per-token multiclass maximum-entropy model over window features, built only from ML.NET's own
/// components: a feature-string column → <c>TokenizeIntoWords</c> (space) → <c>OneHotEncoding</c> (bag of feature keys)
/// → optionally <c>SelectFeaturesBasedOnCount</c> → <c>SdcaMaximumEntropy</c> or <c>LbfgsMaximumEntropy</c> →
/// <c>MapKeyToValue</c>. Each token is classified on its own (no tag history, no sequence decoding).
/// Features of word i (w = the word lower-cased; <c>&lt;s&gt;</c>, <c>&lt;/s&gt;</c> pad the sentence):
/// <c>w=</c>; <c>w-2= w-1= w+1= w+2=</c>; prefixes <c>p1=…p4=</c> and suffixes <c>s1=…s4=</c> of w (n &lt; length);
/// the word's shape (<c>Xx</c>, <c>d.d</c>, <c>x-x</c>: runs of upper / lower / digit / other collapsed); capitalized,
/// capitalized at the sentence start, all capitals, has a digit, has a hyphen; the neighbours' shapes; with
/// <c>bigrams=1</c> also the word pairs (w-1, w) and (w, w+1).
/// </summary>
internal sealed class MaxEntTagger(MaxEntTagger.Options options) : ITagger
{
    /// <summary>The config keys of <c>--model maxent --config …</c>.</summary>
    internal sealed record Options
    {
        /// <summary><c>trainer=sdca|lbfgs</c>.</summary>
        public string Trainer { get; init; } = "sdca";
        /// <summary><c>l2=</c>; null = the trainer's default (SDCA: chosen from the data; L-BFGS: 1).</summary>
        public float? L2 { get; init; }
        /// <summary><c>l1=</c>; null = the trainer's default.</summary>
        public float? L1 { get; init; }
        /// <summary><c>iter=</c>: maximum passes (SDCA) or iterations (L-BFGS); null = the trainer's default.</summary>
        public int? Iterations { get; init; }
        /// <summary><c>check=</c>: SDCA's convergence check every this many passes (each check costs about a pass); null = ML.NET's choice.</summary>
        public int? CheckFrequency { get; init; }
        /// <summary><c>mincount=</c>: keep feature slots that occur in at least this many training tokens (1 = all).</summary>
        public int MinimumCount { get; init; } = 1;
        /// <summary><c>bigrams=0|1</c>: add the (w-1, w) and (w, w+1) pair features.</summary>
        public bool Bigrams { get; init; } = true;
        /// <summary><c>hist=</c>: L-BFGS history size (memory: 2 × hist × features × classes floats).</summary>
        public int HistorySize { get; init; } = 5;
        /// <summary><c>threads=</c>: trainer threads; null = ML.NET's default.</summary>
        public int? Threads { get; init; }

        public static Options Parse(string config)
        {
            var o = new Options();
            foreach (var part in config.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var kv = part.Split('=', 2);
                string v = kv.Length > 1 ? kv[1] : "";
                float F() => float.Parse(v, CultureInfo.InvariantCulture);
                int I() => int.Parse(v, CultureInfo.InvariantCulture);
                o = kv[0].ToLowerInvariant() switch
                {
                    "trainer" => o with { Trainer = v is "sdca" or "lbfgs" ? v : throw new ArgumentException($"trainer '{v}' (sdca or lbfgs)") },
                    "l2" => o with { L2 = F() },
                    "l1" => o with { L1 = F() },
                    "iter" => o with { Iterations = I() },
                    "check" => o with { CheckFrequency = I() },
                    "mincount" => o with { MinimumCount = I() },
                    "bigrams" => o with { Bigrams = I() != 0 },
                    "hist" => o with { HistorySize = I() },
                    "threads" => o with { Threads = I() },
                    _ => throw new ArgumentException($"unknown maxent config key '{kv[0]}'"),
                };
            }
            return o;
        }

        public override string ToString()
        {
            static string Or(float? v) => v?.ToString(CultureInfo.InvariantCulture) ?? "default";
            string history = Trainer == "lbfgs" ? $", hist={HistorySize}" : "";
            return $"trainer={Trainer}, l2={Or(L2)}, l1={Or(L1)}, iter={Or(Iterations)}, check={Or(CheckFrequency)}, mincount={MinimumCount}, " +
                   $"bigrams={(Bigrams ? 1 : 0)}{history}, threads={Or(Threads)}";
        }
    }

    private readonly MLContext _ml = new(seed: 1);
    private ITransformer? _model;

    public string Settings =>
        $"per-token {(options.Trainer == "sdca" ? "SdcaMaximumEntropy" : "LbfgsMaximumEntropy")} over window features " +
        $"(w, w±1, w±2, prefixes/suffixes 1–4, shapes, capitalization, digit, hyphen{(options.Bigrams ? ", word pairs" : "")}); " +
        $"TokenizeIntoWords → OneHotEncoding(Bag){(options.MinimumCount > 1 ? $" → SelectFeaturesBasedOnCount({options.MinimumCount})" : "")}; {options}";

    public void Train(BrownCorpus corpus, TaggingResult result)
    {
        result.Threads = options.Threads ?? 0;
        // The trainers' own progress (chosen L2, passes, duality gap / loss) to the console.
        _ml.Log += (_, e) =>
        {
            if (e.Kind is Microsoft.ML.Runtime.ChannelMessageKind.Info or Microsoft.ML.Runtime.ChannelMessageKind.Warning
                && (e.Source.Contains("Sdca", StringComparison.OrdinalIgnoreCase) || e.Source.Contains("LBFGS", StringComparison.OrdinalIgnoreCase)
                    || e.Source.Contains("Multinomial", StringComparison.OrdinalIgnoreCase)))
                Console.WriteLine($"    [{e.Source}] {e.Message}");
        };
        var train = _ml.Data.LoadFromEnumerable(Rows(corpus.Train, withTags: true));
        IEstimator<ITransformer> featurize = _ml.Transforms.Conversion.MapValueToKey("Label", nameof(TokenRow.Tag))
            .Append(_ml.Transforms.Text.TokenizeIntoWords("FeatureTokens", nameof(TokenRow.Text), [' ']))
            .Append(_ml.Transforms.Categorical.OneHotEncoding("Bag", "FeatureTokens", OneHotEncodingEstimator.OutputKind.Bag,
                maximumNumberOfKeys: 50_000_000));
        featurize = options.MinimumCount > 1
            ? featurize.Append(_ml.Transforms.FeatureSelection.SelectFeaturesBasedOnCount("Features", "Bag", options.MinimumCount))
            : featurize.Append(_ml.Transforms.CopyColumns("Features", "Bag"));
        IEstimator<ITransformer> trainer = options.Trainer == "sdca"
            ? _ml.MulticlassClassification.Trainers.SdcaMaximumEntropy(new SdcaMaximumEntropyMulticlassTrainer.Options
            {
                L2Regularization = options.L2, L1Regularization = options.L1, MaximumNumberOfIterations = options.Iterations,
                NumberOfThreads = options.Threads, ConvergenceCheckFrequency = options.CheckFrequency,
            })
            : _ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy(new LbfgsMaximumEntropyMulticlassTrainer.Options
            {
                L2Regularization = options.L2 ?? 1f, L1Regularization = options.L1 ?? 1f,
                MaximumNumberOfIterations = options.Iterations ?? int.MaxValue, HistorySize = options.HistorySize,
                NumberOfThreads = options.Threads,
            });
        // Fitted in three steps (the same chain as featurize.AppendCacheCheckpoint().Append(trainer)…) to time each.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var featurizer = featurize.Fit(train);
        var cached = _ml.Data.Cache(featurizer.Transform(train));
        long rows = cached.GetColumn<uint>("Label").LongCount();   // fills the cache
        Console.WriteLine($"  features of {rows:N0} training tokens: {clock.Elapsed.TotalSeconds:F1} s");
        clock.Restart();
        var trained = trainer.Fit(cached);
        Console.WriteLine($"  {options.Trainer}: {clock.Elapsed.TotalSeconds:F1} s");
        var toTag = _ml.Transforms.Conversion.MapKeyToValue("PredictedTag", "PredictedLabel").Fit(trained.Transform(cached));
        _model = new TransformerChain<ITransformer>(featurizer, trained, toTag);
        var features = featurizer.GetOutputSchema(train.Schema)["Features"].Type;
        Console.WriteLine($"  feature vector: {features}");
    }

    public string[][] Predict(IReadOnlyList<TaggedSentence> sentences)
    {
        var model = _model ?? throw new InvalidOperationException("Train first");
        var scored = model.Transform(_ml.Data.LoadFromEnumerable(Rows(sentences, withTags: false)));
        var result = sentences.Select(s => new string[s.Words.Length]).ToArray();
        int sentence = 0, token = 0;
        foreach (var tag in scored.GetColumn<ReadOnlyMemory<char>>("PredictedTag"))
        {
            while (token == result[sentence].Length) { sentence++; token = 0; }
            result[sentence][token++] = tag.ToString();
        }
        return result;
    }

    /// <summary>One row per token, made as ML.NET reads them (nothing held in memory).</summary>
    private IEnumerable<TokenRow> Rows(IReadOnlyList<TaggedSentence> sentences, bool withTags)
    {
        var text = new StringBuilder(512);
        foreach (var s in sentences)
        {
            var lower = Array.ConvertAll(s.Words, w => w.ToLowerInvariant());
            for (int t = 0; t < s.Words.Length; t++)
                yield return new TokenRow { Text = Features(s.Words, lower, t, options.Bigrams, text), Tag = withTags ? s.Tags[t] : "" };
        }
    }

    /// <summary>The feature string of word <paramref name="i"/> (templates in the class summary).</summary>
    internal static string Features(string[] words, string[] lower, int i, bool bigrams, StringBuilder text)
    {
        string Lower(int j) => j < 0 ? "<s>" : j >= words.Length ? "</s>" : lower[j];
        string Shape(int j) => j < 0 ? "<s>" : j >= words.Length ? "</s>" : WordShape(words[j]);
        string word = words[i], w = lower[i];
        text.Clear();
        text.Append("w=").Append(w);
        text.Append(" w-1=").Append(Lower(i - 1)).Append(" w+1=").Append(Lower(i + 1));
        text.Append(" w-2=").Append(Lower(i - 2)).Append(" w+2=").Append(Lower(i + 2));
        if (bigrams) text.Append(" b-=").Append(Lower(i - 1)).Append('|').Append(w).Append(" b+=").Append(w).Append('|').Append(Lower(i + 1));
        for (int n = 1; n <= 4 && n < w.Length; n++)
        {
            text.Append(" p").Append(n).Append('=').Append(w, 0, n);
            text.Append(" s").Append(n).Append('=').Append(w, w.Length - n, n);
        }
        string shape = WordShape(word);
        text.Append(" shape=").Append(shape).Append(" shape-1=").Append(Shape(i - 1)).Append(" shape+1=").Append(Shape(i + 1));
        if (char.IsUpper(word[0])) text.Append(i == 0 ? " cap@0" : " cap");
        if (word.Length > 1 && word.All(c => !char.IsLetter(c) || char.IsUpper(c)) && word.Any(char.IsLetter)) text.Append(" allcaps");
        if (word.Any(char.IsDigit)) text.Append(" digit");
        if (word.Length > 1 && word.IndexOf('-', 1) > 0) text.Append(" hyphen");
        return text.ToString();
    }

    /// <summary>Upper → X, lower → x, digit → d, other characters kept; runs of the same class collapsed ("Mayor-nominate" → "Xx-x").</summary>
    internal static string WordShape(string word)
    {
        Span<char> shape = stackalloc char[Math.Min(word.Length, 16)];
        int n = 0;
        foreach (char c in word)
        {
            char k = char.IsUpper(c) ? 'X' : char.IsLower(c) ? 'x' : char.IsDigit(c) ? 'd' : c;
            if (n > 0 && shape[n - 1] == k) continue;
            if (n == shape.Length) break;
            shape[n++] = k;
        }
        return new string(shape[..n]);
    }
}
