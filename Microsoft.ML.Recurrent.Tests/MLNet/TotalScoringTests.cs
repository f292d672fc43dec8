using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.Recurrent.Tests.MLNet;

/// <summary>
/// Scoring never throws on a row's content: an empty sequence is scored as "no evidence" (the head's bias), an
/// unreadable row gets NaN scores and a missing predicted label, and both are counted and logged.
/// </summary>
[TestClass]
public sealed class TotalScoringTests
{
    public TestContext TestContext { get; set; } = null!;

    public sealed class Prediction
    {
        public string PredictedLabel { get; set; } = "";
        public float[] Score { get; set; } = [];
    }

    private static float[] SoftmaxOfHeadBias(ITransformer model)
    {
        var recurrent = ((IEnumerable<ITransformer>)model).OfType<RecurrentTransformerBase>().Single();
        var network = recurrent.Model.Network;
        var bias = network.Parameters.Value(network.Parameters["head.bias"]).ToArray();
        var expected = new float[bias.Length];
        System.Numerics.Tensors.TensorPrimitives.SoftMax(bias, expected);
        return expected;
    }

    [TestMethod]
    public void PredictionEngineScoresEmptyWhitespaceAndNonLatinText()
    {
        var ml = new MLContext(seed: 1);
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.Text.NormalizeText("Normalized", "Text", keepPunctuations: false))
            .Append(TestData.TokenKeys(ml, "Normalized"))
            .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
            {
                EmbeddingSize = 8, HiddenSize = 8, NumberOfEpochs = 2, BatchSize = 16,
            }))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
            .Fit(ml.Data.LoadFromEnumerable(TestData.Topic(200, 1)));
        var noEvidence = SoftmaxOfHeadBias(model);
        using var engine = ml.Model.CreatePredictionEngine<TextRow, Prediction>(model);
        var warnings = BadInputTests.Warnings(ml, () =>
        {
            foreach (string text in new[] { "", "   ", "?!.,;" })
            {
                var p = engine.Predict(new TextRow { Text = text });
                TestContext.WriteLine($"'{text.Replace("\n", "\\n").Replace("\t", "\\t")}' -> {p.PredictedLabel} [{string.Join(", ", p.Score)}]");
                CollectionAssert.AreEqual(noEvidence, p.Score, $"an empty sequence ('{text}') is scored from the head's bias");
                Assert.IsTrue(TestData.Classes.Contains(p.PredictedLabel));
            }
            foreach (string text in new[] { "\t\n", "😀🎉🚀", "日本語のテキスト", "مرحبا بالعالم", "Ελληνικά κείμενο", "market 😀 stock" })
            {
                var p = engine.Predict(new TextRow { Text = text });
                TestContext.WriteLine($"'{text}' -> {p.PredictedLabel} [{string.Join(", ", p.Score)}]");
                Assert.IsTrue(p.Score.All(float.IsFinite) && Math.Abs(p.Score.Sum() - 1) < 1e-5, $"'{text}' gets probabilities");
                Assert.IsTrue(TestData.Classes.Contains(p.PredictedLabel));
            }
        });
        TestContext.WriteLine(string.Join("\n", warnings));
        Assert.IsTrue(warnings.Any(w => w.Contains("empty") && w.Contains("no evidence")), "the first empty row is logged");
    }

    public sealed class AgNewsRow
    {
        [LoadColumn(0)] public string Label { get; set; } = "";
        [LoadColumn(1)] public string Title { get; set; } = "";
        [LoadColumn(2)] public string Text { get; set; } = "";
    }

    [TestMethod]
    public void TransformAndEvaluateOverAgNewsWithEmptyWhitespaceAndHugeRows()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.TakeRows(ml.Data.LoadFromTextFile<AgNewsRow>(Datasets.Require("ag_news/train_subset_10k.csv"), separatorChar: ',', allowQuoting: true), 1000);
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.Text.NormalizeText("Normalized", "Text"))
            .Append(TestData.TokenKeys(ml, "Normalized"))
            .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
            {
                EmbeddingSize = 16, HiddenSize = 16, NumberOfEpochs = 4, BatchSize = 32, LearningRate = 1e-2f,
            }))
            .Fit(train);
        var rows = ml.Data.CreateEnumerable<AgNewsRow>(
            ml.Data.TakeRows(ml.Data.LoadFromTextFile<AgNewsRow>(Datasets.Require("ag_news/test.csv"), separatorChar: ',', allowQuoting: true), 1000),
            reuseRowObject: false).ToList();
        var words = rows.SelectMany(r => r.Text.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Take(5000).ToArray();
        string huge = string.Join(' ', Enumerable.Range(0, 200_000).Select(i => words[i % words.Length]));
        rows.Insert(400, new AgNewsRow { Label = "1", Text = "" });
        rows.Insert(500, new AgNewsRow { Label = "2", Text = "      " });
        rows.Insert(600, new AgNewsRow { Label = "3", Text = huge });
        var scored = model.Transform(ml.Data.LoadFromEnumerable(rows));
        var recurrent = model.OfType<RecurrentTransformerBase>().Single();
        long emptyBefore = recurrent.EmptyRowsScored;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var metrics = ml.MulticlassClassification.Evaluate(scored);
        TestContext.WriteLine($"1,003 rows (one of 200,000 tokens) scored and evaluated in {clock.Elapsed.TotalSeconds:F1} s: " +
            $"micro accuracy {metrics.MicroAccuracy:P1}, log-loss {metrics.LogLoss:F3}");
        // The empty and whitespace rows count as ordinary rows, predicted from the head's bias.
        Assert.AreEqual(1003, metrics.ConfusionMatrix.Counts.Sum(r => r.Sum()));
        Assert.IsTrue(metrics.MicroAccuracy > 0.4, $"accuracy {metrics.MicroAccuracy} is not above chance");
        Assert.IsTrue(double.IsFinite(metrics.LogLoss));
        Assert.AreEqual(2, recurrent.EmptyRowsScored - emptyBefore, "the empty and the whitespace row are scored as no evidence");
    }

    public sealed class Score
    {
        public float Label { get; set; }
        [ColumnName("Score")] public float Value { get; set; }
    }

    [TestMethod]
    public void RegressionRowWithNaNGetsANaNScoreAndTheOthersAreScored()
    {
        var ml = new MLContext(seed: 1);
        var model = ml.Regression.Trainers.Recurrent(new RecurrentRegressionTrainer.Options
        {
            FeaturesPerStep = 2, HiddenSize = 8, NumberOfEpochs = 2, Bidirectional = false,
        }).Fit(ml.Data.LoadFromEnumerable(TestData.Series(100, 1)));
        var test = TestData.Series(50, 2);
        test[10].Features[3] = float.NaN;
        test[20].Features[0] = float.PositiveInfinity;
        test[30].Features = [];
        test[40].Features = [1f, 2f, 3f]; // not a multiple of FeaturesPerStep
        var data = ml.Data.LoadFromEnumerable(test);
        List<Score> scores = [];
        var warnings = BadInputTests.Warnings(ml, () => scores = ml.Data.CreateEnumerable<Score>(model.Transform(data), reuseRowObject: false).ToList());
        TestContext.WriteLine(string.Join("\n", warnings));
        Assert.AreEqual(50, scores.Count);
        Assert.IsTrue(float.IsNaN(scores[10].Value) && float.IsNaN(scores[20].Value) && float.IsNaN(scores[40].Value));
        float bias = model.Model.Network.Parameters.Value(model.Model.Network.Parameters["head.bias"])[0];
        Assert.AreEqual(bias, scores[30].Value, "an empty window is scored from the head's bias");
        Assert.IsTrue(scores.Where((s, i) => i is not (10 or 20 or 40)).All(s => float.IsFinite(s.Value)));
        Assert.IsTrue(warnings.Any(w => w.Contains("Row 10") && w.Contains("NaN") && w.Contains("step 1")), "the first unreadable row is named");
        Assert.IsTrue(warnings.Any(w => w.Contains("1 row(s) with an empty sequence") && w.Contains("3 row(s) that could not be read")), "a summary is logged");
        using var engine = ml.Model.CreatePredictionEngine<SeriesRow, Score>(model);
        Assert.IsTrue(float.IsNaN(engine.Predict(test[10]).Value));
        Assert.AreEqual(scores[0].Value, engine.Predict(test[0]).Value);
    }

    [TestMethod]
    [DoNotParallelize]
    public void AVeryLongRowDoesNotKeepItsWorkspaceAlive()
    {
        var ml = new MLContext(seed: 1);
        var model = TestData.TokenKeys(ml)
            .Append(ml.BinaryClassification.Trainers.Recurrent(new RecurrentBinaryTrainer.Options { EmbeddingSize = 64, HiddenSize = 64, NumberOfEpochs = 1 }))
            .Fit(ml.Data.LoadFromEnumerable(TestData.Sentiment(100, 1)));
        string huge = string.Join(' ', Enumerable.Repeat("not good at all", 50_000)); // 200,000 tokens
        long baseline = GC.GetTotalMemory(forceFullCollection: true);
        var engine = ml.Model.CreatePredictionEngine<BinaryRow, BadInputTests.BinaryScore>(model);
        var small = engine.Predict(new BinaryRow { Text = "not good" });
        var large = engine.Predict(new BinaryRow { Text = huge });
        Assert.IsTrue(float.IsFinite(large.Score));
        long afterLarge = GC.GetTotalMemory(forceFullCollection: true);
        Assert.AreEqual(small.Score, engine.Predict(new BinaryRow { Text = "not good" }).Score);
        engine.Dispose();
        engine = null;
        long afterDispose = GC.GetTotalMemory(forceFullCollection: true);
        long activations = 200_000L * (64 + 2 * 64 * 6) * 4;
        TestContext.WriteLine($"live heap: {baseline / 1e6:F1} MB before, {afterLarge / 1e6:F1} MB after a 200,000-token prediction with the engine alive, " +
            $"{afterDispose / 1e6:F1} MB after disposing it (activations of that row: about {activations / 1e6:F0} MB)");
        Assert.IsTrue(afterLarge - baseline < 32 << 20, $"{(afterLarge - baseline) / 1e6:F0} MB stay reachable while the engine lives");
        Assert.IsTrue(afterDispose - baseline < 16 << 20, $"{(afterDispose - baseline) / 1e6:F0} MB stay reachable after the engine is disposed");
    }

    [TestMethod]
    public void NumberOfThreadsIsSavedAndControlsScoring()
    {
        var ml = new MLContext(seed: 1);
        var rows = ml.Data.LoadFromEnumerable(TestData.Sentiment(60, 1));
        foreach (int? threads in new int?[] { 1, 2, null })
        {
            var model = TestData.TokenKeys(ml)
                .Append(ml.BinaryClassification.Trainers.Recurrent(new RecurrentBinaryTrainer.Options { EmbeddingSize = 4, HiddenSize = 4, NumberOfEpochs = 1, NumberOfThreads = threads }))
                .Fit(rows);
            using var stream = new MemoryStream();
            ml.Model.Save(model, rows.Schema, stream);
            stream.Position = 0;
            var loaded = (TransformerChain<ITransformer>)ml.Model.Load(stream, out _);
            var recurrent = (RecurrentTransformerBase)loaded.LastTransformer;
            Assert.AreEqual(threads ?? 0, recurrent.Model.NumberOfThreads);
            Assert.AreEqual(Math.Min(2, threads ?? Environment.ProcessorCount), new SequenceScorer(recurrent.Model).Threads);
        }
    }

    public sealed class KeyRow
    {
        public uint Label { get; set; }
        [KeyType(5)] [VectorType] public uint[] Features { get; set; } = [];
    }

    public sealed class DenseBinaryRow
    {
        public bool Label { get; set; }
        [VectorType] public float[] Features { get; set; } = [];
    }

    /// <summary>
    /// How Evaluate counts such rows: an empty row is an ordinary prediction (from the head's bias); an unreadable row
    /// has NaN scores, which ML.NET's evaluators leave out — so metrics stay finite and the row is not counted.
    /// </summary>
    [TestMethod]
    public void EvaluateCountsEmptyRowsAndLeavesOutUnreadableOnes()
    {
        var ml = new MLContext(1);
        var rows = Enumerable.Range(0, 40).Select(i => new KeyRow { Label = (uint)(i % 3), Features = [(uint)(1 + i % 5), (uint)(1 + (i * 7) % 5)] }).ToList();
        var schema = SchemaDefinition.Create(typeof(KeyRow));
        schema["Label"].ColumnType = new KeyDataViewType(typeof(uint), 3);
        var model = ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options { HiddenSize = 4, EmbeddingSize = 4, NumberOfEpochs = 1 })
            .Fit(ml.Data.LoadFromEnumerable(rows, schema));
        rows[3].Features = [1, 9]; // key 9 of 5: unreadable
        rows[5].Features = [];     // empty
        var multiclass = ml.MulticlassClassification.Evaluate(model.Transform(ml.Data.LoadFromEnumerable(rows, schema)));
        Assert.AreEqual(39, multiclass.ConfusionMatrix.Counts.Sum(r => r.Sum()), "the unreadable row is left out, the empty one counted");
        Assert.IsTrue(double.IsFinite(multiclass.LogLoss));

        var series = TestData.Series(40, 1);
        var binaryRows = series.Select(s => new DenseBinaryRow { Label = s.Label > 0, Features = s.Features.ToArray() }).ToList();
        var regressor = ml.Regression.Trainers.Recurrent(new RecurrentRegressionTrainer.Options { FeaturesPerStep = 2, HiddenSize = 4, NumberOfEpochs = 1 })
            .Fit(ml.Data.LoadFromEnumerable(series));
        var binary = ml.BinaryClassification.Trainers.Recurrent(new RecurrentBinaryTrainer.Options { FeaturesPerStep = 2, HiddenSize = 4, NumberOfEpochs = 1 })
            .Fit(ml.Data.LoadFromEnumerable(binaryRows));
        series[3].Features[0] = float.NaN;
        binaryRows[3].Features[0] = float.NaN;
        var regression = ml.Regression.Evaluate(regressor.Transform(ml.Data.LoadFromEnumerable(series)));
        var binaryMetrics = ml.BinaryClassification.Evaluate(binary.Transform(ml.Data.LoadFromEnumerable(binaryRows)));
        TestContext.WriteLine($"multiclass: {multiclass.ConfusionMatrix.Counts.Sum(r => r.Sum())} of 40 rows counted; regression RMSE {regression.RootMeanSquaredError:F3}; " +
            $"binary: {binaryMetrics.ConfusionMatrix.Counts.Sum(r => r.Sum())} of 40 rows counted, AUC {binaryMetrics.AreaUnderRocCurve:F3}");
        Assert.IsTrue(double.IsFinite(regression.RootMeanSquaredError), "the NaN row is left out of the regression metrics");
        Assert.AreEqual(39, binaryMetrics.ConfusionMatrix.Counts.Sum(r => r.Sum()));
    }

    public sealed class BinaryOutput
    {
        public float Score { get; set; }
    }

    /// <summary>
    /// A PredictionEngine call allocates nothing in steady state when the caller reuses its output object
    /// (<c>Predict(input, ref output)</c>), as with ML.NET's own trainers; <c>Predict(input)</c> allocates the new output.
    /// </summary>
    [TestMethod]
    public void PredictionEngineAllocatesNothingPerCall()
    {
        var ml = new MLContext(1);
        var binary = TestData.TokenKeys(ml).Append(ml.BinaryClassification.Trainers.Recurrent(new RecurrentBinaryTrainer.Options { HiddenSize = 8, EmbeddingSize = 8, NumberOfEpochs = 1 }))
            .Fit(ml.Data.LoadFromEnumerable(TestData.Sentiment(100, 1)));
        var multiclass = ml.Transforms.Conversion.MapValueToKey("Label").Append(TestData.TokenKeys(ml))
            .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options { HiddenSize = 8, EmbeddingSize = 8, NumberOfEpochs = 1 }))
            .Fit(ml.Data.LoadFromEnumerable(TestData.Topic(100, 1)));
        var sentences = TestData.Sentiment(50, 2);
        var topics = TestData.Topic(50, 3);
        using var binaryEngine = ml.Model.CreatePredictionEngine<BinaryRow, BinaryOutput>(binary);
        using var multiclassEngine = ml.Model.CreatePredictionEngine<TextRow, MulticlassOutput>(multiclass);
        var b = new BinaryOutput();
        var m = new MulticlassOutput();
        for (int i = 0; i < 200; i++) // warm up: the longest rows set the buffers' sizes
        {
            binaryEngine.Predict(sentences[i % 50], ref b);
            multiclassEngine.Predict(topics[i % 50], ref m);
        }
        // Steady state: the fewest bytes of three rounds of 1,000 calls. A round can catch a one-off allocation of the
        // runtime's on this thread (once in a loaded CI run: 4,704 bytes in one round); a per-call allocation is in every round.
        long binaryBytes = long.MaxValue, multiclassBytes = long.MaxValue;
        for (int round = 0; round < 3; round++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 1000; i++) binaryEngine.Predict(sentences[i % 50], ref b);
            binaryBytes = Math.Min(binaryBytes, GC.GetAllocatedBytesForCurrentThread() - before);
            before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 1000; i++) multiclassEngine.Predict(topics[i % 50], ref m);
            multiclassBytes = Math.Min(multiclassBytes, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        TestContext.WriteLine($"1,000 calls (fewest of 3 rounds): binary {binaryBytes} bytes, multiclass {multiclassBytes} bytes (text → TokenizeIntoWords → MapValueToKey → ours)");
        Assert.AreEqual(0, binaryBytes);
        Assert.AreEqual(0, multiclassBytes);
    }

    public sealed class MulticlassOutput
    {
        public uint PredictedLabel { get; set; }
        public float[] Score { get; set; } = [];
    }
}
