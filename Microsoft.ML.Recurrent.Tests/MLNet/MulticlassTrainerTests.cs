using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.Recurrent.Tests.MLNet;

[TestClass]
public sealed class MulticlassTrainerTests
{
    public TestContext TestContext { get; set; } = null!;

    public sealed class Prediction
    {
        public string PredictedLabel { get; set; } = "";
        public float[] Score { get; set; } = [];
    }

    private static IEstimator<ITransformer> Pipeline(MLContext ml, int epochs = 6, PoolingKind pooling = PoolingKind.Mean | PoolingKind.Max) =>
        ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(TestData.TokenKeys(ml))
            .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
            {
                EmbeddingSize = 16, HiddenSize = 16, NumberOfEpochs = epochs, BatchSize = 16, LearningRate = 1e-2f, Pooling = pooling,
            }))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));

    [TestMethod]
    [DataRow(PoolingKind.Mean | PoolingKind.Max)]
    [DataRow(PoolingKind.Attention)]
    [DataRow(PoolingKind.FinalState | PoolingKind.InputMean | PoolingKind.Attention)]
    public void LearnsTopicsEvaluatesSavesAndLoads(PoolingKind pooling)
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TestData.Topic(600, 1));
        var test = ml.Data.LoadFromEnumerable(TestData.Topic(200, 2));
        var model = Pipeline(ml, pooling: pooling).Fit(train);
        var scored = model.Transform(test);
        var metrics = ml.MulticlassClassification.Evaluate(scored);
        Assert.IsTrue(metrics.MicroAccuracy > 0.9, $"accuracy {metrics.MicroAccuracy}");

        string path = Path.Combine(Path.GetTempPath(), $"rnn-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(model, train.Schema, path);
            var loaded = new MLContext(seed: 5).Model.Load(path, out var schema);
            var before = ml.Data.CreateEnumerable<Prediction>(scored, reuseRowObject: false).ToList();
            var after = ml.Data.CreateEnumerable<Prediction>(loaded.Transform(test), reuseRowObject: false).ToList();
            Assert.AreEqual(before.Count, after.Count);
            for (int i = 0; i < before.Count; i++)
            {
                Assert.AreEqual(before[i].PredictedLabel, after[i].PredictedLabel);
                CollectionAssert.AreEqual(before[i].Score, after[i].Score, $"row {i}");
            }
            var engine = ml.Model.CreatePredictionEngine<TextRow, Prediction>(loaded);
            var one = engine.Predict(new TextRow { Text = "the coach said the team will win the league match" });
            Assert.AreEqual("Sports", one.PredictedLabel);
            Assert.AreEqual(3, one.Score.Length);
            Assert.AreEqual(1.0, one.Score.Sum(), 1e-5);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void OutputSchemaBeforeFitMatchesSchemaAfter()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TestData.Topic(64, 3));
        var pipeline = Pipeline(ml, epochs: 1);
        var shape = pipeline.GetOutputSchema(SchemaShapes.Create(data.Schema));
        var schema = pipeline.Fit(data).GetOutputSchema(data.Schema);
        SchemaShapes.AssertMatches(shape, schema);
    }

    [TestMethod]
    public void ProgressReachesMLContextLog()
    {
        var ml = new MLContext(seed: 1);
        var messages = new List<string>();
        ml.Log += (_, e) => { if (e.Message.Contains("Epoch")) lock (messages) messages.Add(e.Message); };
        Pipeline(ml, epochs: 2).Fit(ml.Data.LoadFromEnumerable(TestData.Topic(64, 3)));
        Assert.IsTrue(messages.Any(m => m.Contains("Epoch 1/2") && m.Contains("loss")), string.Join("\n", messages));
        Assert.IsTrue(messages.Any(m => m.Contains("Epoch 2/2")), string.Join("\n", messages));
    }

    [TestMethod]
    public void SameMLContextSeedGivesIdenticalModels()
    {
        string Scores(int seed)
        {
            var ml = new MLContext(seed);
            var data = ml.Data.LoadFromEnumerable(TestData.Topic(100, 3));
            return Scorer.ScoreDump.Dump(Pipeline(ml, epochs: 2).Fit(data).Transform(data));
        }
        Assert.AreEqual(Scores(7), Scores(7));
        Assert.AreNotEqual(Scores(7), Scores(8));
    }

    [TestMethod]
    public void TransformIsLazyStreamsInBatchesAndMatchesPredictionEngine()
    {
        var ml = new MLContext(seed: 1);
        var trainRows = TestData.Topic(200, 3);
        var model = Pipeline(ml, epochs: 1).Fit(ml.Data.LoadFromEnumerable(trainRows));
        var testRows = TestData.Topic(20000, 4);
        int enumerated = 0;
        IEnumerable<TextRow> Counted() { foreach (var row in testRows) { Interlocked.Increment(ref enumerated); yield return row; } }
        var scored = model.Transform(ml.Data.LoadFromEnumerable(Counted()));
        Assert.AreEqual(0, enumerated, "Transform must not read rows");
        using (var cursor = scored.GetRowCursor(scored.Schema.Where(c => c.Name == "Score")))
        {
            var score = cursor.GetGetter<VBuffer<float>>(scored.Schema["Score"]);
            VBuffer<float> value = default;
            Assert.IsTrue(cursor.MoveNext());
            score(ref value);
            Thread.Sleep(200);
            // ML.NET's own cursors read ahead on a background thread into bounded queues; the point is that scoring one
            // row reads a bounded prefix of the source, not all of it.
            TestContext.WriteLine($"reading one scored row enumerated {enumerated} of {testRows.Count} source rows");
            Assert.IsTrue(enumerated < testRows.Count / 2, $"reading one scored row enumerated {enumerated} source rows");
        }
        long batchedBefore = RecurrentTransformerBase.DiagnosticBatchedRows, singleBefore = RecurrentTransformerBase.DiagnosticSingleRows;
        var batched = ml.Data.CreateEnumerable<Prediction>(scored, reuseRowObject: false).Take(300).ToList();
        long servedFromBatches = RecurrentTransformerBase.DiagnosticBatchedRows - batchedBefore;
        TestContext.WriteLine($"{servedFromBatches} rows served from read-ahead batches, {RecurrentTransformerBase.DiagnosticSingleRows - singleBefore} scored alone");
        Assert.IsTrue(servedFromBatches >= 250, "Transform should score in batches");
        var engine = ml.Model.CreatePredictionEngine<TextRow, Prediction>(model);
        for (int i = 0; i < batched.Count; i++)
            CollectionAssert.AreEqual(engine.Predict(testRows[i]).Score, batched[i].Score, $"row {i}: batched and single-row scores differ");
    }
}
