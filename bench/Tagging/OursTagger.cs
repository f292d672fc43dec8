namespace Tagging;

// =====================================================================================================================
// MODEL (d), OUR TAGGER — NOT YET RUNNABLE. This is the one place to fill in once
// mlContext.MulticlassClassification.Trainers.RecurrentTagger(...) exists (issue 10); then add "ours" (and the
// variants) to Taggers.All and rerun:  Tagging.dll --model ours,ours-crf,ours-char,ours-crf-char
// =====================================================================================================================

/// <summary>
/// Model (d): our recurrent tagger through the public ML.NET API, on the same <see cref="TaggerRecipe"/> as model (c),
/// without and with the CRF (<c>UseCrf</c>) and the character features. Placeholder: throws until the trainer exists.
/// </summary>
internal sealed class OursTagger(TaggerRecipe recipe, bool useCrf, bool useChars) : ITagger
{
    public string Settings => $"ours (RecurrentTagger){(useCrf ? " + CRF" : "")}{(useChars ? " + char features" : "")}; {recipe}";

    // The intended implementation (a sketch: option names as in RecurrentTrainerOptions; the tagger's own may differ):
    //
    //   sealed class SentenceRow { public string[] Words { get; set; } = []; public string[] Tags { get; set; } = []; }
    //   var ml = new MLContext(seed: recipe.Seed);
    //   var train = ml.Data.LoadFromEnumerable(corpus.Train.Select(s => new SentenceRow { Words = s.Words, Tags = s.Tags }));
    //   var dev   = ml.Data.LoadFromEnumerable(corpus.Dev.Select(...));          // validation data: best epoch on dev accuracy
    //   var pipeline = ml.Transforms.Conversion.MapValueToKey("Label", "Tags")
    //       .Append(recipe.LowerCaseWords ? ml.Transforms.Text.NormalizeText("Lower", "Words", keepDiacritics: true,
    //               keepPunctuations: true, keepNumbers: true) : ml.Transforms.CopyColumns("Lower", "Words"))
    //       .Append(ml.Transforms.Conversion.MapValueToKey("Features", "Lower"))
    //       (+ with useChars: the character column the tagger documents, built from "Words" — original case)
    //       .Append(ml.MulticlassClassification.Trainers.RecurrentTagger(new RecurrentTaggerTrainer.Options
    //       {
    //           LabelColumnName = "Label", FeatureColumnName = "Features",
    //           MinimumTokenFrequency = recipe.MinimumTokenFrequency, EmbeddingSize = recipe.EmbeddingSize,
    //           HiddenSize = recipe.HiddenSize, NumberOfLayers = recipe.NumberOfLayers, Bidirectional = recipe.Bidirectional,
    //           EmbeddingDropout = recipe.EmbeddingDropout, HeadDropout = recipe.HeadDropout,
    //           Optimizer = OptimizerKind.Adam, LearningRate = recipe.LearningRate,
    //           LearningRateSchedule = LearningRateSchedule.Constant, WarmupFraction = 0, WeightDecay = 0,
    //           BatchSize = recipe.BatchSize, GradientClipNorm = recipe.GradientClipNorm,
    //           NumberOfEpochs = recipe.NumberOfEpochs, Seed = recipe.Seed, NumberOfThreads = recipe.NumberOfThreads,
    //           UseCrf = useCrf, (char options when useChars),
    //           EpochCallback = e => result.Epochs.Add(new EpochResult { Epoch = e.Epoch, Loss = e.Loss,
    //               DevAccuracy = 100 * e.ValidationAccuracy, Seconds = e.Elapsed.TotalSeconds, TrainTokensPerSecond = e.TokensPerSecond }),
    //       }))
    //       .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedTags", "PredictedLabel"));   // output column name: the tagger's
    //   _model = pipeline.Fit(train, dev)  (or Fit on the estimator chain with validation data, whatever the tagger offers);
    //   result.BestEpoch = the epoch Fit kept; result.TrainTokensPerSecond = mean of the epochs' training tokens/s.
    // Predict: Transform the sentences (Tags empty), read "PredictedTags" (string[] per row), in row order.
    // Also record how much of the inference time the CRF's Viterbi decode takes (issue 10 target: ≤ 10 %) if the tagger
    // reports it.

    public void Train(BrownCorpus corpus, TaggingResult result) =>
        throw new NotSupportedException("model (d) waits for RecurrentTagger (issue 10); see the comment block in bench/Tagging/OursTagger.cs");

    public string[][] Predict(IReadOnlyList<TaggedSentence> sentences) =>
        throw new NotSupportedException("model (d) waits for RecurrentTagger");
}
