using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Recurrent;
using Microsoft.ML.Recurrent.Layers;
using Microsoft.ML.Recurrent.Training;
using TextClassificationDemo;

namespace Accuracy;

/// <summary>A row of token keys for the reference recipe (types set at run time through a SchemaDefinition).</summary>
internal sealed class IdRow
{
    public uint Label { get; set; }
    public uint[] Features { get; set; } = [];
}

internal static class OursRunner
{
    /// <summary>Reference recipe through the ML.NET API, on the token ids built by <see cref="Corpus"/>.</summary>
    public static RunResult RunReference(Corpus corpus, int epochs, RunResult result)
    {
        var ml = new MLContext(seed: 1);
        var (train, test) = IdViews(ml, corpus);

        var options = new RecurrentMulticlassTrainer.Options
        {
            EmbeddingSize = 128, HiddenSize = 128, NumberOfLayers = 2, Bidirectional = true, Dropout = 0.3f,
            Pooling = PoolingKind.FinalState, LearningRate = 2e-3f, BatchSize = 32, GradientClipNorm = 5,
            NumberOfEpochs = epochs, MaximumSequenceLength = 256, Seed = 1, NumberOfThreads = 2,
            EpochCallback = e => Record(result, e, "ours"),
        };
        result.Settings = $"ours: Embedding({corpus.VocabularySize + 1},128) (UNK = key 0) → LSTM 2 layers bidirectional hidden 128 dropout 0.3 → FinalState → Linear; " +
                          $"Adam lr 2e-3, clip 5, batch 32, {epochs} epochs, max 256 tokens, seed 1, threads 2; Fit(train, test) for per-epoch test accuracy";
        Console.WriteLine(result.Settings);
        var clock = Stopwatch.StartNew();
        var model = ml.MulticlassClassification.Trainers.Recurrent(options).Fit(train, test);
        result.TrainSeconds = clock.Elapsed.TotalSeconds;
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
        Console.WriteLine($"  ML.NET evaluator on the returned (best-epoch) model: {100 * metrics.MicroAccuracy:F2}%");
        result.FinalAccuracy = result.Epochs[^1].TestAccuracy;
        return result;
    }

    /// <summary>The reference token ids as ML.NET data views (Label key, Features vector of keys).</summary>
    public static (IDataView Train, IDataView Test) IdViews(MLContext ml, Corpus corpus)
    {
        var schema = SchemaDefinition.Create(typeof(IdRow));
        // Caution (ML.NET 5.0.1, measured): LoadFromEnumerable stores a SCALAR key field's C# value v as key v + 1
        // (v >= the key count becomes key 0, "missing"), but a VECTOR key field's values unchanged. So the label is
        // given 0-based (index 0..C-1 → keys 1..C) and the token ids as they are: 0 = UNK → key 0, which our library
        // treats as a learned embedding row; words 1..V → keys 1..V. The read-back check below guards both.
        schema["Label"].ColumnType = new KeyDataViewType(typeof(uint), corpus.Classes.Length);
        schema["Features"].ColumnType = new VectorDataViewType(new KeyDataViewType(typeof(uint), corpus.VocabularySize));
        IDataView View(int[][] ids, int[] labels) => ml.Data.LoadFromEnumerable(
            ids.Select((row, i) => new IdRow { Label = (uint)labels[i], Features = row.Select(id => (uint)id).ToArray() }).ToList(), schema);
        var train = View(corpus.TrainIds, corpus.TrainLabels);
        var test = View(corpus.TestIds, corpus.TestLabels);
        // Guard against the off-by-one above: every label key must be 1..C and the token keys must equal the ids.
        var labelKeys = train.GetColumn<uint>("Label").GroupBy(k => k).OrderBy(g => g.Key).Select(g => $"{g.Key}:{g.Count()}").ToList();
        Console.WriteLine("  label keys read back from the train view: " + string.Join(", ", labelKeys));
        var firstRow = train.GetColumn<VBuffer<uint>>("Features").First().DenseValues().ToArray();
        Console.WriteLine($"  first row ids {string.Join(" ", corpus.TrainIds[0].Take(12))} → keys {string.Join(" ", firstRow.Take(12))}");
        if (train.GetColumn<uint>("Label").Any(k => k == 0) || !firstRow.SequenceEqual(corpus.TrainIds[0].Select(i => (uint)i)))
            throw new InvalidOperationException("label key 0 (missing) or token keys differ from the ids in the reference data view");

        return (train, test);
    }

    private static void Record(RunResult result, RecurrentEpochInfo e, string who)
    {
        var r = new EpochResult
        {
            Epoch = e.Epoch, Seconds = e.Elapsed.TotalSeconds, TokensPerSecond = e.TokensPerSecond, Loss = e.Loss,
            TrainAccuracy = 100 * e.Accuracy,
        };
        if (result.Config == "reference") r.TestAccuracy = 100 * e.ValidationAccuracy;
        else r.ValidationAccuracy = 100 * e.ValidationAccuracy;
        result.Epochs.Add(r);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {who} epoch {e.Epoch}/{e.Epochs}: loss {e.Loss:F4}, train acc {100 * e.Accuracy:F2}%, validation acc {100 * e.ValidationAccuracy:F2}%{(e.IsBest ? " (best)" : "")}, lr {e.LearningRate:G3}, {e.Elapsed.TotalSeconds:F1} s, {e.TokensPerSecond:F0} tokens/s, load {Machine.LoadAverage()}"));
    }

    /// <summary>
    /// The pipeline a user would write — NormalizeText → TokenizeIntoWords → MapValueToKey → Recurrent — with the
    /// trainer's default options changed only as <paramref name="config"/> says (empty = defaults).
    /// Nothing here sees the test set before the final evaluation.
    /// </summary>
    public static RunResult RunPipeline(Corpus corpus, string config, int? epochs, RunResult result)
    {
        var ml = new MLContext(seed: 1);
        // Language-model pretraining reports through MLContext.Log: show it with the run.
        ml.Log += (_, e) => { if (e.Message.Contains("anguage")) Console.WriteLine($"  {DateTime.UtcNow:HH:mm:ss} {e.Message}"); };
        var options = new RecurrentMulticlassTrainer.Options { LabelColumnName = "Label", FeatureColumnName = "Features" };
        bool ids = config.Split(',').Any(p => p.Trim() == "input=ids");
        // Diagnostic: NormalizeText(keepPunctuations: false) instead of the default NormalizeText.
        bool noPunctuation = config.Split(',').Any(p => p.Trim() == "nopunct");
        // Wide & deep: FeaturizeText (default options, as the baselines use it) beside the tokens.
        bool wide = config.Split(',').Any(p => p.Trim() == "wide");
        Apply(options, string.Join(',', config.Split(',').Where(p => p.Trim() is not ("input=ids" or "nopunct" or "wide"))));
        if (wide) options.WideFeatureColumnName = "Wide";
        if (ids)
        {
            // Diagnostic: the same trainer options on the reference token ids (alphanumeric tokens, vocabulary of tokens
            // seen >= 2 times, rare tokens → a trained UNK), instead of the NormalizeText/TokenizeIntoWords pipeline.
            var (idTrain, idTest) = IdViews(ml, corpus);
            if (epochs is int m) options.NumberOfEpochs = m;
            options.EpochCallback = e => Record(result, e, "ours-ids");
            result.Settings = "reference token ids; " + Describe(options);
            Console.WriteLine(result.Settings);
            var c = Stopwatch.StartNew();
            var idModel = ml.MulticlassClassification.Trainers.Recurrent(options).Fit(idTrain);
            result.TrainSeconds = c.Elapsed.TotalSeconds;
            result.FinalAccuracy = 100 * ml.MulticlassClassification.Evaluate(idModel.Transform(idTest)).MicroAccuracy;
            Console.WriteLine($"  test accuracy {result.FinalAccuracy:F2}% (train {result.TrainSeconds:F0} s)");
            return result;
        }
        var train = ml.Data.LoadFromEnumerable(corpus.TrainRows);
        var test = ml.Data.LoadFromEnumerable(corpus.TestRows);
        if (epochs is int n) options.NumberOfEpochs = n;
        options.EpochCallback = e => Record(result, e, "ours-pipeline");
        result.Settings = Describe(options);
        Console.WriteLine($"pipeline NormalizeText{(noPunctuation ? "(keepPunctuations: false)" : "")} → TokenizeIntoWords → MapValueToKey → Recurrent; options: {result.Settings}");
        IEstimator<ITransformer> labels = ml.Transforms.Conversion.MapValueToKey("Label");
        if (wide) labels = labels.Append(ml.Transforms.Text.FeaturizeText("Wide", "Text"));
        var pipeline = labels
            .Append(noPunctuation ? ml.Transforms.Text.NormalizeText("Normalized", "Text", keepPunctuations: false) : ml.Transforms.Text.NormalizeText("Normalized", "Text"))
            .Append(ml.Transforms.Text.TokenizeIntoWords("Tokens", "Normalized"))
            .Append(ml.Transforms.Conversion.MapValueToKey("Features", "Tokens"))
            .Append(ml.MulticlassClassification.Trainers.Recurrent(options));
        var clock = Stopwatch.StartNew();
        var model = pipeline.Fit(train);
        result.TrainSeconds = clock.Elapsed.TotalSeconds;
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
        result.FinalAccuracy = 100 * metrics.MicroAccuracy;
        Console.WriteLine($"  test accuracy {result.FinalAccuracy:F2}% (train {result.TrainSeconds:F0} s)");
        return result;
    }

    /// <summary>Applies "key=value,key=value" changes to the defaults (keys below).</summary>
    public static void Apply(RecurrentTrainerOptions o, string config)
    {
        foreach (var part in config.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (part is "defaults" or "main-defaults-e4d860c") continue;   // the library defaults of the build that runs
            var kv = part.Split('=', 2);
            string key = kv[0].ToLowerInvariant(), value = kv.Length > 1 ? kv[1] : "";
            float F() => float.Parse(value, CultureInfo.InvariantCulture);
            int I() => int.Parse(value, CultureInfo.InvariantCulture);
            switch (key)
            {
                case "pool":
                    o.Pooling = 0;
                    foreach (var p in value.Split('+'))
                        o.Pooling |= p.ToLowerInvariant() switch
                        {
                            "final" => PoolingKind.FinalState, "mean" => PoolingKind.Mean, "max" => PoolingKind.Max, "inputmean" => PoolingKind.InputMean,
                            "attn" or "attention" => PoolingKind.Attention,
                            _ => throw new ArgumentException($"pooling '{p}'"),
                        };
                    break;
                case "edrop": o.EmbeddingDropout = F(); break;
                case "hdrop": o.HeadDropout = F(); break;
                case "drop": o.Dropout = F(); break;
                case "layers": o.NumberOfLayers = I(); break;
                case "hidden": o.HiddenSize = I(); break;
                case "emb": o.EmbeddingSize = I(); break;
                case "epochs": o.NumberOfEpochs = I(); break;
                case "lr": o.LearningRate = F(); break;
                case "batch": o.BatchSize = I(); break;
                case "val": o.ValidationFraction = F(); break;
                case "patience": o.EarlyStoppingPatience = I(); break;
                case "cosine": o.LearningRateSchedule = LearningRateSchedule.Cosine; break;
                case "linear": o.LearningRateSchedule = LearningRateSchedule.Linear; break;
                case "warmup": o.WarmupFraction = F(); break;
                case "wd": o.WeightDecay = F(); break;
                case "adamw": o.Optimizer = OptimizerKind.AdamW; break;
                case "maxlen": o.MaximumSequenceLength = I(); break;
                case "gru": o.Cell = RecurrentCellKind.Gru; break;
                case "lm": o.LanguageModelEpochs = I(); break;            // language-model pretraining inside Fit (ULMFiT)
                case "lmvocab": o.LanguageModelVocabularySize = I(); break;
                case "uni": o.Bidirectional = false; break;
                case "dlr": o.DiscriminativeLearningRateFactor = F(); break;   // discriminative fine-tuning (ULMFiT 1/2.6)
                case "gu": o.GradualUnfreezing = true; break;                  // gradual unfreezing
                case "widelr": o.WideLearningRateFactor = F(); break;          // the wide part's learning-rate factor
                case "widedrop": o.WideDropout = F(); break;                   // dropout on the wide entries
                case "widemode": o.WideTraining = Enum.Parse<WideTrainingMode>(value, true); break; // joint, ensemble, boosted
                case "freeze": o.FreezeEmbeddings = true; break;
                case "threads": o.NumberOfThreads = I(); break;
                case "seed": o.Seed = I(); break;                              // the trainer's seed (the MLContext's stays 1)
                default: throw new ArgumentException($"unknown config key '{key}'");
            }
        }
    }

    public static string Describe(RecurrentTrainerOptions o) => string.Create(CultureInfo.InvariantCulture,
        $"{o.Cell} emb {o.EmbeddingSize} hidden {o.HiddenSize} layers {o.NumberOfLayers} bi {o.Bidirectional} pooling {o.Pooling} " +
        $"dropout {o.Dropout} embDropout {o.EmbeddingDropout} headDropout {o.HeadDropout} epochs {o.NumberOfEpochs} lr {o.LearningRate} " +
        $"schedule {o.LearningRateSchedule} warmup {o.WarmupFraction} val {o.ValidationFraction} patience {o.EarlyStoppingPatience} " +
        $"batch {o.BatchSize} maxlen {o.MaximumSequenceLength} wd {o.WeightDecay} {o.Optimizer} threads {(o.NumberOfThreads?.ToString() ?? "default")}{(o.Seed is { } seed ? $" seed {seed}" : "")}" +
        $"{(o.LanguageModelEpochs > 0 ? $" lm-epochs {o.LanguageModelEpochs} lm-vocab {o.LanguageModelVocabularySize}" : "")}{(o.FreezeEmbeddings ? " frozen-embedding" : "")}" +
        $"{(o.DiscriminativeLearningRateFactor != 1 ? $" dlr {o.DiscriminativeLearningRateFactor}" : "")}{(o.GradualUnfreezing ? " gradual-unfreezing" : "")}{((o.Pooling & PoolingKind.Attention) != 0 ? " attention" : "")}{(o.WideFeatureColumnName is null ? "" : $" wide=FeaturizeText widelr {o.WideLearningRateFactor} widedrop {o.WideDropout} widemode {o.WideTraining}")}");
}

internal static class BaselineRunner
{
    /// <summary>FeaturizeText (default options) + SdcaMaximumEntropy or LbfgsMaximumEntropy (default options).</summary>
    public static RunResult Run(Corpus corpus, string which, RunResult result)
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(corpus.TrainRows);
        var test = ml.Data.LoadFromEnumerable(corpus.TestRows);
        var featurize = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.Text.FeaturizeText("Features", "Text"))
            .AppendCacheCheckpoint(ml);
        IEstimator<ITransformer> trainer = which switch
        {
            "sdca" => ml.MulticlassClassification.Trainers.SdcaMaximumEntropy(),
            "lbfgs" => ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy(),
            _ => ml.MulticlassClassification.Trainers.OneVersusAll(ml.BinaryClassification.Trainers.AveragedPerceptron()),
        };
        result.Settings = which switch
        {
            "sdca" => "FeaturizeText() + SdcaMaximumEntropy()",
            "lbfgs" => "FeaturizeText() + LbfgsMaximumEntropy()",
            _ => "FeaturizeText() + OneVersusAll(AveragedPerceptron())",
        };
        Console.WriteLine(result.Settings);
        var clock = Stopwatch.StartNew();
        var model = featurize.Append(trainer).Fit(train);
        result.TrainSeconds = clock.Elapsed.TotalSeconds;
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
        result.FinalAccuracy = 100 * metrics.MicroAccuracy;
        Console.WriteLine($"  test accuracy {result.FinalAccuracy:F2}% (train {result.TrainSeconds:F1} s)");
        return result;
    }
}
