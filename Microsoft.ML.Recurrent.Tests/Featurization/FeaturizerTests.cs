using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Recurrent.Tests.MLNet;
using Microsoft.ML.Recurrent.Tests.Tagging;

namespace Microsoft.ML.Recurrent.Tests.Featurization;

[TestClass]
public sealed class FeaturizerTests
{
    public TestContext TestContext { get; set; } = null!;

    public sealed class AgNewsRow
    {
        [LoadColumn(0)] public string Label { get; set; } = "";
        [LoadColumn(1)] public string Title { get; set; } = "";
        [LoadColumn(2)] public string Text { get; set; } = "";
    }

    /// <summary>SDCA on a trained classifier's pooled features does about as well as the classifier itself.</summary>
    [TestMethod]
    public void SdcaOnTheClassifiersPooledFeaturesMatchesTheClassifier()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.TakeRows(ml.Data.LoadFromTextFile<AgNewsRow>(Datasets.Require("ag_news/train_subset_10k.csv"), separatorChar: ',', allowQuoting: true), 10000);
        var test = ml.Data.TakeRows(ml.Data.LoadFromTextFile<AgNewsRow>(Datasets.Require("ag_news/test.csv"), separatorChar: ',', allowQuoting: true), 1000);
        var featurizer = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.Text.NormalizeText("Normalized", "Text"))
            .Append(TestData.TokenKeys(ml, "Normalized"))
            .Fit(train);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var trainKeys = ml.Data.Cache(featurizer.Transform(train));
        var testKeys = featurizer.Transform(test);
        var classifier = ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
        {
            EmbeddingSize = 32, HiddenSize = 32, NumberOfEpochs = 4, LearningRate = 5e-3f,
        }).Fit(trainKeys);
        TestContext.WriteLine($"classifier trained: {clock.Elapsed.TotalSeconds:F1} s");
        var own = ml.MulticlassClassification.Evaluate(classifier.Transform(testKeys));
        TestContext.WriteLine($"classifier evaluated: {clock.Elapsed.TotalSeconds:F1} s");

        var features = ml.Transforms.RecurrentFeatures(classifier, pooledColumnName: "Pooled").Fit(trainKeys);
        var sdca = ml.Transforms.NormalizeMinMax("Pooled")
            .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy(featureColumnName: "Pooled"))
            .Fit(ml.Data.Cache(features.Transform(trainKeys)));
        TestContext.WriteLine($"SDCA trained: {clock.Elapsed.TotalSeconds:F1} s");
        var onFeatures = ml.MulticlassClassification.Evaluate(sdca.Transform(features.Transform(testKeys)));
        TestContext.WriteLine($"AG News subset, 10,000 training rows, 1,000 test rows: the classifier {own.MicroAccuracy:P2}, " +
            $"SDCA on its {features.PooledSize} pooled features {onFeatures.MicroAccuracy:P2}");
        Assert.IsTrue(Math.Abs(onFeatures.MicroAccuracy - own.MicroAccuracy) <= 0.01,
            $"SDCA {onFeatures.MicroAccuracy:P2} vs classifier {own.MicroAccuracy:P2}");
    }

    public sealed class StateRow
    {
        [VectorType] public float[] States { get; set; } = [];
        [VectorType] public string[] Tokens { get; set; } = [];
    }

    [TestMethod]
    public void ATaggerGivesEveryTokensStateAndTheFeaturizerSavesAndLoads()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TaggingData.Sentences(120, 1));
        var fitted = TaggingData.Featurizer(ml).Fit(data);
        var keys = fitted.Transform(data);
        var tagger = ml.MulticlassClassification.Trainers.RecurrentTagger(new RecurrentTaggerTrainer.Options { EmbeddingSize = 8, HiddenSize = 6, NumberOfEpochs = 1 }).Fit(keys);
        var estimator = ml.Transforms.RecurrentFeatures(tagger, pooledColumnName: "Pooled", statesColumnName: "States");
        var featurizer = estimator.Fit(keys);
        Assert.AreEqual(4 * 6, featurizer.PooledSize, "mean and max of a bidirectional top layer");
        var rows = ml.Data.CreateEnumerable<StateRow>(featurizer.Transform(keys), reuseRowObject: false).ToList();
        foreach (var row in rows)
            Assert.AreEqual(row.Tokens.Length * 12, row.States.Length, "T × D·H values");

        var pipeline = fitted.Append(featurizer);
        using var stream = new MemoryStream();
        ml.Model.Save(pipeline, data.Schema, stream);
        stream.Position = 0;
        var loaded = ml.Model.Load(stream, out _);
        Assert.AreEqual(Dump(pipeline.Transform(data)), Dump(loaded.Transform(data)));

        // An empty sentence: zeros for the pooled vector, no states.
        var empty = ml.Data.LoadFromEnumerable(new[] { new TaggedSentence { Tokens = [], Tags = [] } });
        using var cursor = loaded.Transform(empty).GetRowCursor(loaded.Transform(empty).Schema);
        var pooled = cursor.GetGetter<VBuffer<float>>(cursor.Schema["Pooled"]);
        var states = cursor.GetGetter<VBuffer<float>>(cursor.Schema["States"]);
        Assert.IsTrue(cursor.MoveNext());
        VBuffer<float> p = default, s = default;
        pooled(ref p);
        states(ref s);
        Assert.IsTrue(p.DenseValues().All(v => v == 0) && p.Length == 24);
        Assert.AreEqual(0, s.Length);
    }

    private static string Dump(IDataView view)
    {
        var text = new System.Text.StringBuilder();
        using var cursor = view.GetRowCursor([view.Schema["Pooled"], view.Schema["States"]]);
        var pooled = cursor.GetGetter<VBuffer<float>>(view.Schema["Pooled"]);
        var states = cursor.GetGetter<VBuffer<float>>(view.Schema["States"]);
        VBuffer<float> p = default, s = default;
        while (cursor.MoveNext())
        {
            pooled(ref p);
            states(ref s);
            text.AppendJoin(',', p.DenseValues().Select(BitConverter.SingleToInt32Bits)).Append('|')
                .AppendJoin(',', s.DenseValues().Select(BitConverter.SingleToInt32Bits)).Append('\n');
        }
        return text.ToString();
    }
}
