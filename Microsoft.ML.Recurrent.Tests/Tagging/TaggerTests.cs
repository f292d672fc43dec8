using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Recurrent.Tests.MLNet;

namespace Microsoft.ML.Recurrent.Tests.Tagging;

[TestClass]
public sealed class TaggerTests
{
    public TestContext TestContext { get; set; } = null!;

    private static RecurrentTaggerTrainer.Options Small => new()
    {
        EmbeddingSize = 16, HiddenSize = 16, NumberOfEpochs = 8, BatchSize = 16, LearningRate = 1e-2f,
        EmbeddingDropout = 0.1f, HeadDropout = 0.1f,
    };

    private static IEstimator<ITransformer> Pipeline(MLContext ml, RecurrentTaggerTrainer.Options options) =>
        TaggingData.Featurizer(ml)
            .Append(ml.MulticlassClassification.Trainers.RecurrentTagger(options))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedTags", "PredictedLabel"));

    /// <summary>Token accuracy of predicted tag strings against the rows' tags.</summary>
    internal static double Accuracy(IEnumerable<TaggedSentence> rows, IEnumerable<string[]> predicted)
    {
        long correct = 0, total = 0;
        foreach (var (row, tags) in rows.Zip(predicted))
        {
            Assert.AreEqual(row.Tokens.Length, tags.Length, "one tag per token");
            for (int t = 0; t < tags.Length; t++, total++)
                if (tags[t] == row.Tags[t]) correct++;
        }
        return (double)correct / total;
    }

    public sealed class Predicted
    {
        [VectorType] public string[] PredictedTags { get; set; } = [];
    }

    [TestMethod]
    public void LearnsTagsThatDependOnContext()
    {
        var ml = new MLContext(seed: 1);
        var train = TaggingData.Sentences(400, 1);
        var test = TaggingData.Sentences(100, 2);
        var model = Pipeline(ml, Small).Fit(ml.Data.LoadFromEnumerable(train));
        var predicted = ml.Data.CreateEnumerable<Predicted>(model.Transform(ml.Data.LoadFromEnumerable(test)), reuseRowObject: false)
            .Select(p => p.PredictedTags).ToList();
        double accuracy = Accuracy(test, predicted);
        TestContext.WriteLine($"token accuracy {accuracy:P2} on 100 sentences ({test.Sum(s => s.Tokens.Length)} tokens)");
        Assert.IsTrue(accuracy > 0.97, $"accuracy {accuracy}");
    }

    [TestMethod]
    public void SavesLoadsAndTagsIdentically()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TaggingData.Sentences(200, 3));
        var options = Small;
        options.OutputProbabilities = true;
        options.NumberOfEpochs = 2;
        var model = Pipeline(ml, options).Fit(data);
        using var stream = new MemoryStream();
        ml.Model.Save(model, data.Schema, stream);
        stream.Position = 0;
        var loaded = new MLContext(seed: 5).Model.Load(stream, out _);
        var test = ml.Data.LoadFromEnumerable(TaggingData.Sentences(50, 4));
        Assert.AreEqual(Scorer.ScoreDump.Dump(model.Transform(test)), Scorer.ScoreDump.Dump(loaded.Transform(test)));
        var before = ml.Data.CreateEnumerable<Predicted>(model.Transform(test), reuseRowObject: false).Select(p => string.Join(' ', p.PredictedTags)).ToList();
        var after = ml.Data.CreateEnumerable<Predicted>(loaded.Transform(test), reuseRowObject: false).Select(p => string.Join(' ', p.PredictedTags)).ToList();
        CollectionAssert.AreEqual(before, after);
    }

    [TestMethod]
    public void AnEmptySentenceGetsNoTagsAndMisalignedLabelsAreAnError()
    {
        var ml = new MLContext(seed: 1);
        var model = Pipeline(ml, Small).Fit(ml.Data.LoadFromEnumerable(TaggingData.Sentences(100, 5)));
        using var engine = ml.Model.CreatePredictionEngine<TaggedSentence, Predicted>(model);
        Assert.AreEqual(0, engine.Predict(new TaggedSentence { Tokens = [], Tags = [] }).PredictedTags.Length);
        Assert.AreEqual(3, engine.Predict(new TaggedSentence { Tokens = ["never", "seen", "words"], Tags = [] }).PredictedTags.Length);

        var rows = TaggingData.Sentences(20, 6);
        rows[5].Tags = rows[5].Tags[..^1];
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => Pipeline(ml, Small).Fit(ml.Data.LoadFromEnumerable(rows)));
        TestContext.WriteLine(e.Message);
        StringAssert.Contains(e.Message, "Row 5");
        StringAssert.Contains(e.Message, $"{rows[5].Tags.Length} tags");
        StringAssert.Contains(e.Message, $"{rows[5].Tokens.Length} tokens");
    }
}

[TestClass]
public sealed class UnseenTagTests
{
    public TestContext TestContext { get; set; } = null!;

    /// <summary>A tag the training data never has: in the key type (the featurizer saw all rows) it trains and is never predicted; unknown to the featurizer it is counted apart.</summary>
    [TestMethod]
    public void ATagNeverSeenInTraining()
    {
        var ml = new MLContext(seed: 1);
        var train = TaggingData.Sentences(200, 1);
        var test = TaggingData.Sentences(40, 2);
        test[0].Tags[0] = "INTJ"; // in no training sentence
        var options = new RecurrentTaggerTrainer.Options { EmbeddingSize = 16, HiddenSize = 16, NumberOfEpochs = 8, BatchSize = 16, LearningRate = 1e-2f, EmbeddingDropout = 0.1f, HeadDropout = 0.1f };
        // 1. The featurizer knows the tag (fitted on all rows): the tagger trains with a tag that has no example.
        var featurizer = TaggingData.Featurizer(ml).Fit(ml.Data.LoadFromEnumerable(train.Concat(test)));
        var tagger = ml.MulticlassClassification.Trainers.RecurrentTagger(options).Fit(featurizer.Transform(ml.Data.LoadFromEnumerable(train)));
        var metrics = ml.MulticlassClassification.EvaluateTagging(tagger.Transform(featurizer.Transform(ml.Data.LoadFromEnumerable(test))));
        TestContext.WriteLine($"tag in the key type: {metrics.Tokens} tokens, accuracy {metrics.TokenAccuracy:P2}, {metrics.TokensWithoutGoldTag} without a gold tag");
        Assert.AreEqual(test.Sum(s => s.Tokens.Length), metrics.Tokens);
        Assert.IsTrue(metrics.TokenAccuracy < 1 && metrics.TokenAccuracy > 0.9, "the unseen tag's token is wrong, the rest right");
        // 2. Fitted on the training rows only: the tag maps to key 0 and its token is left out, and counted.
        var model = TaggingData.Featurizer(ml).Append(ml.MulticlassClassification.Trainers.RecurrentTagger(options)).Fit(ml.Data.LoadFromEnumerable(train));
        metrics = ml.MulticlassClassification.EvaluateTagging(model.Transform(ml.Data.LoadFromEnumerable(test)));
        TestContext.WriteLine($"tag unknown to the featurizer: {metrics.Tokens} tokens, {metrics.TokensWithoutGoldTag} without a gold tag");
        Assert.AreEqual(1, metrics.TokensWithoutGoldTag);
        Assert.AreEqual(test.Sum(s => s.Tokens.Length) - 1, metrics.Tokens);
    }
}

[TestClass]
public sealed class CrfTaggerTests
{
    public TestContext TestContext { get; set; } = null!;

    /// <summary>The synthetic sentences with their part-of-speech tags replaced by O: BIO entity tags only.</summary>
    internal static List<TaggedSentence> Entities(int count, int seed) => TaggingData.Sentences(count, seed).Select(r => new TaggedSentence
    {
        Tokens = r.Tokens,
        Tags = r.Tags.Select(t => t.Contains('-') ? t : "O").ToArray(),
    }).ToList();

    private static RecurrentTaggerTrainer.Options Crf(TagScheme scheme) => new()
    {
        EmbeddingSize = 16, HiddenSize = 16, NumberOfEpochs = 8, BatchSize = 16, LearningRate = 1e-2f,
        EmbeddingDropout = 0.1f, HeadDropout = 0.1f, UseCrf = true, TagScheme = scheme, OutputProbabilities = true,
    };

    [TestMethod]
    public void ACrfTaggerLearnsDecodesValidPathsAndRoundTrips()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Entities(300, 1));
        var test = ml.Data.LoadFromEnumerable(Entities(100, 2));
        var model = TaggingData.Featurizer(ml).Append(ml.MulticlassClassification.Trainers.RecurrentTagger(Crf(TagScheme.Bio))).Fit(train);
        var scored = model.Transform(test);
        var metrics = ml.MulticlassClassification.EvaluateTagging(scored);
        TestContext.WriteLine($"CRF tagger: token accuracy {metrics.TokenAccuracy:P2}, entity F1 {metrics.Entities!.F1:P2}");
        Assert.IsTrue(metrics.TokenAccuracy > 0.97 && metrics.Entities.F1 > 0.95);

        // Every predicted sequence is valid BIO, and the marginals of each token sum to 1.
        var tagNames = new[] { "O", "B-PER", "I-PER", "B-LOC" };
        using (var cursor = scored.GetRowCursor(scored.Schema))
        {
            var predicted = cursor.GetGetter<VBuffer<uint>>(scored.Schema["PredictedLabel"]);
            var score = cursor.GetGetter<VBuffer<float>>(scored.Schema["Score"]);
            VBuffer<ReadOnlyMemory<char>> keyValues = default;
            scored.Schema["PredictedLabel"].GetKeyValues(ref keyValues);
            var names = keyValues.DenseValues().Select(v => v.ToString()).ToArray();
            VBuffer<uint> tags = default;
            VBuffer<float> probabilities = default;
            while (cursor.MoveNext())
            {
                predicted(ref tags);
                score(ref probabilities);
                string previous = "O";
                foreach (uint key in tags.DenseValues())
                {
                    string tag = names[key - 1];
                    if (tag.StartsWith("I-"))
                        Assert.IsTrue(previous == "B-" + tag[2..] || previous == tag, $"'{tag}' after '{previous}'");
                    previous = tag;
                }
                var p = probabilities.DenseValues().ToArray();
                for (int t = 0; t < tags.Length; t++)
                    Assert.AreEqual(1.0, p.Skip(t * names.Length).Take(names.Length).Sum(), 1e-4);
            }
        }
        using var stream = new MemoryStream();
        ml.Model.Save(model, train.Schema, stream);
        stream.Position = 0;
        var loaded = new MLContext(seed: 3).Model.Load(stream, out _);
        Assert.AreEqual(Scorer.ScoreDump.Dump(scored), Scorer.ScoreDump.Dump(loaded.Transform(test)));
    }

    [TestMethod]
    public void GoldTagsThatBreakTheSchemeNameTheRow()
    {
        var ml = new MLContext(seed: 1);
        var rows = Entities(30, 1);
        int row = rows.FindIndex(r => r.Tags.Contains("B-PER"));
        rows[row].Tags[Array.IndexOf(rows[row].Tags, "B-PER")] = "I-PER"; // IOB1-style: an entity begins with I-
        var e = Assert.ThrowsExactly<InvalidOperationException>(() =>
            TaggingData.Featurizer(ml).Append(ml.MulticlassClassification.Trainers.RecurrentTagger(Crf(TagScheme.Bio))).Fit(ml.Data.LoadFromEnumerable(rows)));
        TestContext.WriteLine(e.Message);
        StringAssert.Contains(e.Message, $"Row {row}");
        StringAssert.Contains(e.Message, "I-PER");
        Assert.ThrowsExactly<ArgumentException>(() => ml.MulticlassClassification.Trainers.RecurrentTagger(new RecurrentTaggerTrainer.Options { TagScheme = TagScheme.Bio }));
    }
}

