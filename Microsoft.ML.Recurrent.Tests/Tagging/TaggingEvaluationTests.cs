using Microsoft.ML;

namespace Microsoft.ML.Recurrent.Tests.Tagging;

[TestClass]
public sealed class TaggingEvaluationTests
{
    public TestContext TestContext { get; set; } = null!;

    private static readonly string[] Tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "E-PER", "S-LOC"];

    private static (long Correct, long Predicted, long Gold) Score(string gold, string predicted)
    {
        var scorer = ChunkScorer.ForTags(Tags)!;
        int[] Indices(string s) => s.Split(' ').Select(t => Array.IndexOf(Tags, t)).ToArray();
        scorer.Add(Indices(gold), Indices(predicted));
        return scorer.Counts().Total;
    }

    [TestMethod]
    [DataRow("B-PER I-PER O B-LOC", "B-PER I-PER O B-LOC", 2, 2, 2)]
    [DataRow("B-PER I-PER O B-LOC", "B-PER O O B-LOC", 1, 2, 2)]         // a chunk cut short is wrong
    [DataRow("B-PER I-PER O B-LOC", "O O O O", 0, 0, 2)]
    [DataRow("I-PER I-PER O", "B-PER I-PER O", 1, 1, 1)]                 // IOB1: I after O starts a chunk
    [DataRow("B-PER I-LOC", "B-PER B-LOC", 2, 2, 2)]                     // a type change ends a chunk and starts one
    [DataRow("B-PER E-PER S-LOC", "B-PER E-PER S-LOC", 2, 2, 2)]         // IOBES
    [DataRow("B-PER I-PER E-PER O", "B-PER E-PER O O", 0, 1, 1)]
    [DataRow("S-LOC S-LOC", "B-LOC I-LOC", 0, 1, 2)]
    public void ChunksAreScoredAsConllevalDoes(string gold, string predicted, int correct, int predictedChunks, int goldChunks)
    {
        var (c, p, g) = Score(gold, predicted);
        Assert.AreEqual((correct, predictedChunks, goldChunks), ((int)c, (int)p, (int)g));
    }

    [TestMethod]
    public void PartOfSpeechTagsAreNotAChunkScheme()
    {
        Assert.IsNull(ChunkScorer.ForTags(["NOUN", "VERB", "DET"]));
        Assert.IsNull(ChunkScorer.ForTags(["O", "B-PER", "VERB"]));
        Assert.IsNull(ChunkScorer.ForTags(["O"]));
    }

    [TestMethod]
    public void EvaluateTaggingReportsTokenUnseenAndEntityScores()
    {
        var ml = new MLContext(seed: 1);
        // Entity tags only: the part-of-speech tags of the synthetic set become O.
        List<TaggedSentence> Entities(List<TaggedSentence> rows) => rows.Select(r => new TaggedSentence
        {
            Tokens = r.Tokens,
            Tags = r.Tags.Select(t => t.Contains('-') ? t : "O").ToArray(),
        }).ToList();
        var train = Entities(TaggingData.Sentences(300, 1));
        var test = Entities(TaggingData.Sentences(100, 2));
        test[0].Tokens[0] = "zanzibar"; // a word never seen in training
        var model = TaggingData.Featurizer(ml)
            .Append(ml.MulticlassClassification.Trainers.RecurrentTagger(new RecurrentTaggerTrainer.Options
            {
                EmbeddingSize = 16, HiddenSize = 16, NumberOfEpochs = 8, BatchSize = 16, LearningRate = 1e-2f, EmbeddingDropout = 0.1f, HeadDropout = 0.1f,
            }))
            .Fit(ml.Data.LoadFromEnumerable(train));
        var metrics = ml.MulticlassClassification.EvaluateTagging(model.Transform(ml.Data.LoadFromEnumerable(test)));
        TestContext.WriteLine($"tokens {metrics.Tokens}, accuracy {metrics.TokenAccuracy:P2}, unseen {metrics.UnseenTokens} ({metrics.UnseenTokenAccuracy:P0}), " +
            $"entities P {metrics.Entities!.Precision:P1} R {metrics.Entities.Recall:P1} F1 {metrics.Entities.F1:P1}; " +
            string.Join(", ", metrics.EntitiesByType.Select(kv => $"{kv.Key}: F1 {kv.Value.F1:P1} of {kv.Value.Gold}")));
        Assert.AreEqual(test.Sum(s => s.Tokens.Length), metrics.Tokens);
        Assert.AreEqual(1, metrics.UnseenTokens);
        Assert.IsTrue(metrics.TokenAccuracy > 0.95);
        Assert.IsNotNull(metrics.Entities);
        Assert.IsTrue(metrics.Entities.F1 > 0.9, $"F1 {metrics.Entities.F1}");
        CollectionAssert.AreEquivalent(new[] { "PER", "LOC" }, metrics.EntitiesByType.Keys.ToArray());
    }
}
