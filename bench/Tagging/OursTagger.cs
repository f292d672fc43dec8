using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Recurrent;
using Accuracy;
using Microsoft.ML.Transforms.Text;
using Microsoft.ML.Recurrent.Model;

namespace Tagging;

/// <summary>
/// Model (d): our recurrent tagger through the public ML.NET API — the pipeline a user writes — on the same
/// <see cref="TaggerRecipe"/> as model (c), without and with the CRF (<c>UseCrf</c>) and the character features
/// (<c>CharacterColumnName</c> = the words in their original case). The dev sentences are the trainer's validation data,
/// so the epoch with the best dev token accuracy is kept, as in (c).
/// </summary>
internal sealed class OursTagger(TaggerRecipe recipe, bool useCrf, bool useChars) : ITagger
{
    private readonly MLContext _ml = new(seed: recipe.Seed);
    private ITransformer? _model;
    private ITransformer? _featurizer;
    private RecurrentTaggerTransformer? _tagger;

    public string Settings => $"ours (RecurrentTagger, Microsoft.ML.Recurrent){(useCrf ? " + CRF" : "")}" +
        $"{(useChars ? $" + character BiLSTM ({recipe.CharacterSize}+{recipe.CharacterSize} per word)" : "")}; {recipe}";

    /// <summary>One sentence as a row: the words and their tags (empty when predicting).</summary>
    private sealed class SentenceRow
    {
        public string[] Words { get; set; } = [];
        public string[] Tags { get; set; } = [];
    }

    private sealed class TaggedRow
    {
        public string[] PredictedTags { get; set; } = [];
    }

    private IDataView Rows(IEnumerable<TaggedSentence> sentences, bool withTags) =>
        _ml.Data.LoadFromEnumerable(sentences.Select(s => new SentenceRow { Words = s.Words, Tags = withTags ? s.Tags : [] }));

    public void Train(BrownCorpus corpus, TaggingResult result)
    {
        result.Threads = recipe.NumberOfThreads;
        var monitor = new Recurrent.Bench.CpuMonitor();
        // Featurization (fitted on the training sentences only): tags → keys; words (optionally lower-cased) → keys.
        var featurizer = _ml.Transforms.Conversion.MapValueToKey("Label", "Tags")
            .Append(recipe.LowerCaseWords
                ? (IEstimator<ITransformer>)_ml.Transforms.Text.NormalizeText("Keys", "Words", TextNormalizingEstimator.CaseMode.Lower,
                    keepDiacritics: true, keepPunctuations: true, keepNumbers: true)
                : _ml.Transforms.CopyColumns("Keys", "Words"))
            .Append(_ml.Transforms.Conversion.MapValueToKey("Features", "Keys"));
        var train = Rows(corpus.Train, withTags: true);
        var fittedFeaturizer = featurizer.Fit(train);
        var trainer = _ml.MulticlassClassification.Trainers.RecurrentTagger(new RecurrentTaggerTrainer.Options
        {
            MinimumTokenFrequency = recipe.MinimumTokenFrequency,
            EmbeddingSize = recipe.EmbeddingSize,
            HiddenSize = recipe.HiddenSize,
            NumberOfLayers = recipe.NumberOfLayers,
            Bidirectional = recipe.Bidirectional,
            EmbeddingDropout = recipe.EmbeddingDropout,
            HeadDropout = recipe.HeadDropout,
            Optimizer = OptimizerKind.Adam,
            LearningRate = recipe.LearningRate,
            LearningRateSchedule = recipe.Schedule == "cosine" ? LearningRateSchedule.Cosine : LearningRateSchedule.Constant,
            WarmupFraction = recipe.WarmupFraction,
            WeightDecay = 0,
            BatchSize = recipe.BatchSize,
            GradientClipNorm = recipe.GradientClipNorm,
            NumberOfEpochs = recipe.NumberOfEpochs,
            Seed = recipe.Seed,
            NumberOfThreads = recipe.NumberOfThreads,
            UseCrf = useCrf,
            CharacterColumnName = useChars ? "Words" : null,
            CharacterEmbeddingSize = recipe.CharacterSize,
            CharacterHiddenSize = recipe.CharacterSize,
            EpochCallback = e =>
            {
                double trainSeconds = (e.Elapsed - e.ValidationElapsed).TotalSeconds;
                result.Epochs.Add(new EpochResult
                {
                    Epoch = e.Epoch, Loss = e.Loss, DevAccuracy = 100 * e.ValidationAccuracy, Seconds = e.Elapsed.TotalSeconds,
                    TrainSeconds = trainSeconds, TrainTokensPerSecond = e.TokensPerSecond, ForeignCores = monitor.ForeignCores(),
                });
                monitor = new Recurrent.Bench.CpuMonitor();
                if (e.IsBest) result.BestEpoch = e.Epoch;
                Console.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $"  epoch {e.Epoch}/{e.Epochs}: loss {e.Loss:F4}, dev {100 * e.ValidationAccuracy:F2}%{(e.IsBest ? " (best)" : "")}, " +
                    $"train {trainSeconds:F1} s ({e.TokensPerSecond:F0} tokens/s), with dev {e.Elapsed.TotalSeconds:F1} s, load {Machine.LoadAverage()}"));
            },
        });
        var tagger = trainer.Fit(fittedFeaturizer.Transform(train), fittedFeaturizer.Transform(Rows(corpus.Dev, withTags: true)));
        _featurizer = fittedFeaturizer;
        _tagger = tagger;
        var tagged = fittedFeaturizer.Append(tagger);
        _model = tagged.Append(_ml.Transforms.Conversion.MapKeyToValue("PredictedTags", "PredictedLabel").Fit(tagged.Transform(train)));
        result.TrainTokensPerSecond = result.Epochs.Average(e => e.TrainTokensPerSecond);   // as model (c) reports it
    }

    /// <summary>
    /// With the CRF: the share of the tagger's own inference time that the Viterbi decode takes, measured on the trained
    /// model and the given sentences — the network's forward pass (the scorer the transformer uses, in its batch size)
    /// and the decode of every sentence (the transformer's TagDecoder), timed separately; the median of 5 passes.
    /// ML.NET's cursor and key mapping are left out of both, so the share of the whole pipeline is smaller still.
    /// </summary>
    public (double ForwardSeconds, double DecodeSeconds)? MeasureDecode(IReadOnlyList<TaggedSentence> sentences)
    {
        if (!useCrf) return null;
        var model = _tagger!.Model;
        var data = _featurizer!.Transform(Rows(sentences, withTags: false));
        var keys = new List<VBuffer<uint>>();
        var words = new List<VBuffer<ReadOnlyMemory<char>>>();
        using (var cursor = data.GetRowCursor(data.Schema))
        {
            var getKeys = cursor.GetGetter<VBuffer<uint>>(data.Schema["Features"]);
            var getWords = cursor.GetGetter<VBuffer<ReadOnlyMemory<char>>>(data.Schema["Words"]);
            while (cursor.MoveNext())
            {
                VBuffer<uint> k = default;
                VBuffer<ReadOnlyMemory<char>> w = default;
                getKeys(ref k);
                getWords(ref w);
                keys.Add(k);
                words.Add(w);
            }
        }
        var scorer = new SequenceScorer(model);
        var decoder = new TagDecoder(model);
        var forward = new List<double>();
        var decode = new List<double>();
        var tags = new uint[keys.Max(k => k.Length)];
        for (int pass = 0; pass < 5; pass++)
        {
            double f = 0, d = 0;
            for (int start = 0; start < keys.Count; start += model.ScoringBatchSize)
            {
                int end = Math.Min(keys.Count, start + model.ScoringBatchSize);
                scorer.Clear();
                for (int r = start; r < end; r++) scorer.Add(keys[r], words[r], out _);
                long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                scorer.Run();
                long t1 = System.Diagnostics.Stopwatch.GetTimestamp();
                for (int r = 0; r < end - start; r++) decoder.Decode(scorer.RowOutputs(r), tags);
                long t2 = System.Diagnostics.Stopwatch.GetTimestamp();
                f += (t1 - t0) / (double)System.Diagnostics.Stopwatch.Frequency;
                d += (t2 - t1) / (double)System.Diagnostics.Stopwatch.Frequency;
            }
            forward.Add(f);
            decode.Add(d);
        }
        return (forward.Order().ElementAt(2), decode.Order().ElementAt(2));
    }

    public string[][] Predict(IReadOnlyList<TaggedSentence> sentences)
    {
        // Batched scoring: Transform + one cursor over the sentences, in order (the trainer's scoring batches rows).
        var scored = _model!.Transform(Rows(sentences, withTags: false));
        return _ml.Data.CreateEnumerable<TaggedRow>(scored, reuseRowObject: false).Select(r => r.PredictedTags).ToArray();
    }
}
