using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Recurrent.Model;
using Microsoft.ML.Recurrent.Training;

namespace Microsoft.ML.Recurrent.Tests.MLNet;

[TestClass]
public sealed class TrainingLoopTests
{
    public TestContext TestContext { get; set; } = null!;

    private static IEstimator<ITransformer> Featurizer(MLContext ml) =>
        ml.Transforms.Conversion.MapValueToKey("Label").Append(TestData.TokenKeys(ml));

    [TestMethod]
    [DataRow(EarlyStoppingMetric.Loss)]
    [DataRow(EarlyStoppingMetric.Accuracy)]
    public void ValidationDataKeepsTheBestEpochsWeights(EarlyStoppingMetric metric)
    {
        var ml = new MLContext(seed: 1);
        var featurizer = Featurizer(ml).Fit(ml.Data.LoadFromEnumerable(TestData.Topic(300, 1)));
        var train = featurizer.Transform(ml.Data.LoadFromEnumerable(TestData.Topic(300, 1)));
        var valid = featurizer.Transform(ml.Data.LoadFromEnumerable(TestData.Topic(150, 2)));
        var reports = new List<RecurrentEpochInfo>();
        var trainer = ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
        {
            EmbeddingSize = 8, HiddenSize = 8, NumberOfEpochs = 6, BatchSize = 16, LearningRate = 2e-2f,
            EpochCallback = reports.Add, EarlyStoppingMetric = metric,
        });
        var model = trainer.Fit(train, valid);
        Assert.AreEqual(6, reports.Count);
        Assert.IsTrue(reports.All(r => !double.IsNaN(r.ValidationLoss) && !double.IsNaN(r.ValidationAccuracy)));
        // The first epoch with the best metric (ties do not count as improvements).
        var best = metric == EarlyStoppingMetric.Loss ? reports.MinBy(r => r.ValidationLoss)! : reports.MaxBy(r => r.ValidationAccuracy)!;
        Assert.AreEqual(best, reports.Last(r => r.IsBest));
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(valid));
        TestContext.WriteLine(string.Join("\n", reports.Select(r => $"{r.Epoch}: val loss {r.ValidationLoss:F5} acc {r.ValidationAccuracy:F4}")) + $"\nkept: log-loss {metrics.LogLoss:F5}");
        Assert.AreEqual(best.ValidationAccuracy, metrics.MicroAccuracy, 1e-9, "the kept weights are the best epoch's");
        Assert.AreEqual(best.ValidationLoss, metrics.LogLoss, 1e-4, "the kept weights are the best epoch's");
    }

    [TestMethod]
    public void EarlyStoppingOnAHeldOutFractionStopsAfterPatience()
    {
        var ml = new MLContext(seed: 1);
        var data = Featurizer(ml).Fit(ml.Data.LoadFromEnumerable(TestData.Topic(300, 1))).Transform(ml.Data.LoadFromEnumerable(TestData.Topic(300, 1)));
        var reports = new List<RecurrentEpochInfo>();
        ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
        {
            EmbeddingSize = 8, HiddenSize = 8, NumberOfEpochs = 40, BatchSize = 16, LearningRate = 3e-2f,
            ValidationFraction = 0.2f, EarlyStoppingPatience = 2, EpochCallback = reports.Add,
        }).Fit(data);
        TestContext.WriteLine(string.Join("\n", reports.Select(r => $"{r.Epoch}: val acc {r.ValidationAccuracy:F4} best {r.IsBest}")));
        Assert.IsTrue(reports.Count < 40, "validation accuracy saturates, so training must stop early");
        int bestEpoch = reports.Last(r => r.IsBest).Epoch;
        Assert.AreEqual(bestEpoch + 2, reports.Count, "stops exactly `patience` epochs after the best one");
        Assert.AreEqual(240, reports[0].Examples, "20 % of 300 rows held out");
    }

    [TestMethod]
    [DataRow(true)]
    [DataRow(false)]
    public void CancellationStopsTrainingWithinOneBatch(bool viaMLContext)
    {
        var ml = new MLContext(seed: 1);
        var data = Featurizer(ml).Fit(ml.Data.LoadFromEnumerable(TestData.Topic(200, 1))).Transform(ml.Data.LoadFromEnumerable(TestData.Topic(200, 1)));
        int epochs = 0;
        using var source = new CancellationTokenSource();
        // MLContext.CancelExecution() is internal in ML.NET 5.0.1; reach it as ML.NET's own tooling does.
        var cancelExecution = typeof(MLContext).GetMethod("CancelExecution", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Public)!;
        var trainer = ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
        {
            EmbeddingSize = 8, HiddenSize = 8, NumberOfEpochs = 50, BatchSize = 16, CancellationToken = source.Token,
            EpochCallback = _ =>
            {
                epochs++;
                if (viaMLContext) cancelExecution.Invoke(ml, null);
                else source.Cancel();
            },
        });
        Assert.Throws<OperationCanceledException>(() => trainer.Fit(data));
        Assert.AreEqual(1, epochs, "no second epoch may complete after cancellation");
    }

    [TestMethod]
    public void DivergenceIsReportedWithEpochAndBatch()
    {
        var ml = new MLContext(seed: 1);
        var series = TestData.Series(40, 1);
        series[5].Label = 3e38f; // its squared error overflows float
        var trainer = ml.Regression.Trainers.Recurrent(new RecurrentRegressionTrainer.Options { FeaturesPerStep = 2, HiddenSize = 4, NumberOfEpochs = 2 });
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => trainer.Fit(ml.Data.LoadFromEnumerable(series)));
        TestContext.WriteLine(e.Message);
        StringAssert.Contains(e.Message, "diverged");
        StringAssert.Contains(e.Message, "epoch 1, batch");
    }

    [TestMethod]
    public void LearningRateScheduleWarmsUpAndDecays()
    {
        var network = new RecurrentNetwork(new NetworkConfig { InputSize = 2, HiddenSize = 2, OutputSize = 1 });
        SequenceTrainer Make(LearningRateSchedule schedule) => new(network, Objective.Regression,
            new TrainingSettings { LearningRate = 1f, Schedule = schedule, WarmupFraction = 0.1f });
        var cosine = Make(LearningRateSchedule.Cosine);
        Assert.AreEqual(0.1f, cosine.ScheduledRate(0, 100), 1e-6f);     // warm-up: (step + 1) / 10
        Assert.AreEqual(1f, cosine.ScheduledRate(9, 100), 1e-6f);
        Assert.AreEqual(1f, cosine.ScheduledRate(10, 100), 1e-6f);      // decay starts at the peak
        Assert.AreEqual(0.5f, cosine.ScheduledRate(55, 100), 1e-6f);    // half-way through the decay
        var linear = Make(LearningRateSchedule.Linear);
        Assert.AreEqual(0.5f, linear.ScheduledRate(55, 100), 1e-6f);
        Assert.AreEqual(1f, Make(LearningRateSchedule.Constant).ScheduledRate(99, 100));
    }

    public sealed class KeyRow
    {
        public bool Label { get; set; }
        [KeyType(9)] [VectorType] public uint[] Features { get; set; } = [];
    }

    [TestMethod]
    public void RareTokensAreReadAsTheUnknownToken()
    {
        var ml = new MLContext(seed: 1);
        // Keys 1–4 occur often, 5 occurs once, 6–9 never.
        var rows = Enumerable.Range(0, 40).Select(i => new KeyRow { Label = i % 2 == 0, Features = [(uint)(1 + i % 4), (uint)(1 + (i + 1) % 4)] }).ToList();
        rows[7].Features = [5, 1];
        var model = ml.BinaryClassification.Trainers.Recurrent(new RecurrentBinaryTrainer.Options
        {
            HiddenSize = 4, EmbeddingSize = 3, NumberOfEpochs = 1, MinimumTokenFrequency = 2,
        }).Fit(ml.Data.LoadFromEnumerable(rows));
        Assert.AreEqual(5, model.Model.Network.Config.VocabularySize, "4 frequent keys + the unknown row");
        var probe = ml.Data.LoadFromEnumerable(new[]
        {
            new KeyRow { Features = [5, 2] }, new KeyRow { Features = [0, 2] }, new KeyRow { Features = [8, 2] }, new KeyRow { Features = [3, 2] },
        });
        var scores = ml.Data.CreateEnumerable<Score>(model.Transform(probe), reuseRowObject: false).Select(s => s.Value).ToArray();
        Assert.AreEqual(scores[1], scores[0], "a rare key scores as the unknown key");
        Assert.AreEqual(scores[1], scores[2], "an unseen key scores as the unknown key");
        Assert.AreNotEqual(scores[1], scores[3], "a frequent key has its own embedding");
    }

    public sealed class Score
    {
        [ColumnName("Score")] public float Value { get; set; }
    }
}
