using Microsoft.ML.Data;

namespace Microsoft.ML.Recurrent.Tests.MLNet;

/// <summary>
/// Wide &amp; deep through ML.NET: the recurrent trainer after ML.NET's FeaturizeText, reading its sparse n-gram vector
/// beside the token keys; persistence, scoring rules and bad input.
/// </summary>
[TestClass]
public sealed class WideAndDeepTests
{
    public TestContext TestContext { get; set; } = null!;

    public sealed class Scored
    {
        public string Text { get; set; } = "";
        public float[] Score { get; set; } = [];
    }

    private sealed class WideRow
    {
        public string Label { get; set; } = "";
        public string Text { get; set; } = "";
        [VectorType(4)] public float[] Wide { get; set; } = new float[4];
    }

    private static IEstimator<ITransformer> Pipeline(MLContext ml, int epochs = 4) =>
        ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.Text.FeaturizeText("Wide", "Text"))   // large and sparse: word and character n-grams
            .Append(TestData.TokenKeys(ml))
            .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
            {
                EmbeddingSize = 12, HiddenSize = 16, NumberOfEpochs = epochs, BatchSize = 16, LearningRate = 1e-2f,
                WideFeatureColumnName = "Wide", Seed = 1, NumberOfThreads = 1,
            }));

    [TestMethod]
    public void LearnsBesideFeaturizeTextSavesLoadsAndPredicts()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TestData.Topic(400, 1));
        var test = ml.Data.LoadFromEnumerable(TestData.Topic(200, 2));
        var model = Pipeline(ml).Fit(train);
        var scored = model.Transform(test);
        var accuracy = ml.MulticlassClassification.Evaluate(scored).MicroAccuracy;
        Assert.IsTrue(accuracy > 0.9, $"accuracy {accuracy}");
        var classifier = ((IEnumerable<ITransformer>)model).OfType<RecurrentMulticlassTransformer>().Single();
        var network = classifier.Model.Network;
        int wideSize = ((VectorDataViewType)scored.Schema["Wide"].Type).Size;
        Assert.AreEqual(wideSize, network.Config.WideSize);
        var wide = network.Parameters.Value(network.Parameters["wide.weight"]).ToArray();
        Assert.AreEqual(3 * wideSize, wide.Length);
        Assert.IsTrue(wide.Count(w => w != 0) > 100, "the wide weights were trained");
        TestContext.WriteLine($"accuracy {accuracy:P1}; {wideSize:N0} wide features, {wide.Count(w => w != 0):N0} non-zero weights");

        using var stream = new MemoryStream();
        ml.Model.Save(model, train.Schema, stream);
        stream.Position = 0;
        var loaded = ml.Model.Load(stream, out _);
        CollectionAssert.AreEqual(scored.GetColumn<float[]>("Score").SelectMany(x => x).ToArray(),
            loaded.Transform(test).GetColumn<float[]>("Score").SelectMany(x => x).ToArray());
        using var engine = ml.Model.CreatePredictionEngine<TextRow, Scored>(loaded);
        var one = engine.Predict(new TextRow { Text = TestData.Topic(200, 2)[0].Text });
        CollectionAssert.AreEqual(scored.GetColumn<float[]>("Score").First(), one.Score, "PredictionEngine = batched Transform");
    }

    /// <summary>
    /// A row without tokens still has its wide features: it is scored as the head's bias plus its wide part (not the
    /// bias alone); a NaN in the wide vector makes that row's scores NaN while the rows around it score normally.
    /// </summary>
    [TestMethod]
    public void EmptyRowsKeepTheirWidePartAndNaNWideValuesScoreNaN()
    {
        var ml = new MLContext(seed: 1);
        var rows = TestData.Topic(300, 1).Select((r, i) => new WideRow { Label = r.Label, Text = r.Text, Wide = [r.Label == "Sports" ? 1 : 0, r.Label == "Business" ? 1 : 0, i % 2, 0] }).ToList();
        var train = ml.Data.LoadFromEnumerable(rows);
        var estimator = ml.Transforms.Conversion.MapValueToKey("Label").Append(TestData.TokenKeys(ml))
            .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
            {
                EmbeddingSize = 8, HiddenSize = 8, NumberOfEpochs = 3, BatchSize = 16, LearningRate = 1e-2f, WideFeatureColumnName = "Wide", Seed = 2,
            }));
        var messages = new List<string>();
        ml.Log += (_, e) => { if (e.Kind == Runtime.ChannelMessageKind.Warning) lock (messages) messages.Add(e.Message); };
        // A training row with an infinite wide value is skipped and said so.
        var withBad = rows.Append(new WideRow { Label = "Tech", Text = "chip code", Wide = [0, float.PositiveInfinity, 0, 0] }).ToList();
        var model = estimator.Fit(ml.Data.LoadFromEnumerable(withBad));
        Assert.IsTrue(messages.Any(m => m.Contains("cannot be read") && m.Contains("'Wide'")), string.Join("\n", messages));

        var scoring = new List<WideRow>
        {
            new() { Text = "", Wide = [1, 0, 0, 0] },               // no tokens, wide says Sports
            new() { Text = "", Wide = [0, 1, 0, 0] },               // no tokens, wide says Business
            new() { Text = "goal match", Wide = [float.NaN, 0, 0, 0] },
            new() { Text = "goal match", Wide = [1, 0, 0, 0] },
        };
        var scores = model.Transform(ml.Data.LoadFromEnumerable(scoring)).GetColumn<float[]>("Score").ToArray();
        CollectionAssert.AreNotEqual(scores[0], scores[1], "empty rows differ by their wide features");
        Assert.IsTrue(scores[2].All(float.IsNaN), "a NaN wide value gives NaN scores");
        Assert.IsTrue(scores[3].All(float.IsFinite), "the next row scores normally");
        var classifier = ((IEnumerable<ITransformer>)model).OfType<RecurrentMulticlassTransformer>().Single();
        var network = classifier.Model.Network;
        var bias = network.Parameters.Value(network.Parameters["head.bias"]).ToArray();
        var w = network.Parameters.Value(network.Parameters["wide.weight"]).ToArray();
        var logits = Enumerable.Range(0, 3).Select(c => bias[c] + w[c * 4 + 0]).ToArray();
        var expected = Softmax(logits);
        for (int c = 0; c < 3; c++)
            Assert.AreEqual(expected[c], scores[0][c], 1e-5f, $"empty row, class {c}: softmax(bias + wide part)");
    }

    private static float[] Softmax(float[] logits)
    {
        float max = logits.Max();
        var e = logits.Select(x => MathF.Exp(x - max)).ToArray();
        float sum = e.Sum();
        return e.Select(x => x / sum).ToArray();
    }

    /// <summary>The wide part's own learning rate: its weights move further with a larger factor; the deep part's options stay.</summary>
    /// <summary>
    /// In the ensemble and boosted modes the recurrent part learns from its own loss only, so (without gradient
    /// clipping, which would couple the parts through the global norm) its weights are exactly those of the same
    /// network trained without a wide part — the wide part cannot starve it. The ensemble halves the head's and the
    /// wide weights into one output; the boosted model keeps the plain sum. Joint training gives a different deep part.
    /// </summary>
    [TestMethod]
    [DataRow(WideTrainingMode.Ensemble)]
    [DataRow(WideTrainingMode.Boosted)]
    public void InTheEnsembleAndBoostedModesTheRecurrentPartLearnsAsIfAlone(WideTrainingMode mode)
    {
        Dictionary<string, float[]> Train(string? wide, WideTrainingMode m)
        {
            var ml = new MLContext(seed: 1);
            var train = ml.Data.LoadFromEnumerable(TestData.Topic(200, 1));
            var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.Text.FeaturizeText("Wide", "Text")).Append(TestData.TokenKeys(ml))
                .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
                {
                    EmbeddingSize = 8, HiddenSize = 8, NumberOfEpochs = 2, BatchSize = 16, LearningRate = 1e-2f, GradientClipNorm = 0,
                    WideFeatureColumnName = wide, WideTraining = m, Seed = 1, NumberOfThreads = 1,
                })).Fit(train);
            var network = ((IEnumerable<ITransformer>)model).OfType<RecurrentMulticlassTransformer>().Single().Model.Network;
            return network.Parameters.Parameters.ToDictionary(p => p.Name, p => network.Parameters.Value(p).ToArray());
        }
        var alone = Train(null, WideTrainingMode.Joint);
        var parts = Train("Wide", mode);
        var joint = Train("Wide", WideTrainingMode.Joint);
        float headScale = mode == WideTrainingMode.Ensemble ? 2f : 1f;
        foreach (var (name, values) in alone)
        {
            var expected = values;
            var actual = name == "head.weight" ? parts[name].Select(v => v * headScale).ToArray() : parts[name];
            CollectionAssert.AreEqual(expected, actual, $"{name} differs from the network trained without a wide part");
        }
        Assert.IsTrue(parts["wide.weight"].Count(v => v != 0) > 100, "the wide part was trained");
        Assert.IsFalse(alone["head.weight"].SequenceEqual(joint["head.weight"]), "joint training changes the recurrent part (the test can fail)");
    }

    /// <summary>
    /// Validation during ensemble training scores the model as it will be kept (the two parts' mean): the best epoch's
    /// reported validation loss and accuracy are what ML.NET's evaluator measures on the fitted model. A trainer that
    /// validated the plain sum, or forgot to halve the parts at the end, fails this.
    /// </summary>
    [TestMethod]
    [DataRow(WideTrainingMode.Ensemble)]
    [DataRow(WideTrainingMode.Boosted)]
    [DataRow(WideTrainingMode.Joint)]
    public void ValidationScoresTheModelThatIsKept(WideTrainingMode mode)
    {
        var ml = new MLContext(seed: 1);
        var featurizer = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.Text.FeaturizeText("Wide", "Text"))
            .Append(TestData.TokenKeys(ml)).Fit(ml.Data.LoadFromEnumerable(TestData.Topic(300, 1)));
        var train = featurizer.Transform(ml.Data.LoadFromEnumerable(TestData.Topic(300, 1)));
        var valid = featurizer.Transform(ml.Data.LoadFromEnumerable(TestData.Topic(150, 2)));
        var reports = new List<RecurrentEpochInfo>();
        var model = ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
        {
            EmbeddingSize = 8, HiddenSize = 8, NumberOfEpochs = 4, BatchSize = 16, LearningRate = 1e-2f, WideLearningRateFactor = 3,
            WideFeatureColumnName = "Wide", WideTraining = mode, EarlyStoppingMetric = EarlyStoppingMetric.Loss, EpochCallback = reports.Add,
        }).Fit(train, valid);
        var best = reports.Last(r => r.IsBest);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(valid));
        TestContext.WriteLine(string.Join("\n", reports.Select(r => $"{r.Epoch}: train loss {r.Loss:F4}, val loss {r.ValidationLoss:F5} acc {r.ValidationAccuracy:F4}")) + $"\nkept: log-loss {metrics.LogLoss:F5}");
        Assert.AreEqual(best.ValidationLoss, metrics.LogLoss, 1e-4, "the validated model is the kept one");
        Assert.AreEqual(best.ValidationAccuracy, metrics.MicroAccuracy, 1e-9);
    }

    [TestMethod]
    public void TheWideLearningRateFactorScalesOnlyTheWidePart()
    {
        float Norm(float factor)
        {
            var ml = new MLContext(seed: 1);
            var train = ml.Data.LoadFromEnumerable(TestData.Topic(200, 1));
            var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.Text.FeaturizeText("Wide", "Text")).Append(TestData.TokenKeys(ml))
                .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
                {
                    EmbeddingSize = 8, HiddenSize = 8, NumberOfEpochs = 1, BatchSize = 16, WideFeatureColumnName = "Wide", WideLearningRateFactor = factor, Seed = 1,
                })).Fit(train);
            var network = ((IEnumerable<ITransformer>)model).OfType<RecurrentMulticlassTransformer>().Single().Model.Network;
            return MathF.Sqrt(network.Parameters.Value(network.Parameters["wide.weight"]).ToArray().Sum(w => w * w));
        }
        float one = Norm(1), ten = Norm(10);
        TestContext.WriteLine($"|wide.weight| after one epoch: factor 1 → {one:F3}, factor 10 → {ten:F3}");
        Assert.IsTrue(ten > 3 * one, $"factor 10 moved the wide weights {ten} vs {one}");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new MLContext().MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options { WideLearningRateFactor = 0 }));
    }

    [TestMethod]
    public void AMissingOrResizedWideColumnIsNamedAtTrainingAndScoring()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TestData.Topic(100, 1));
        var noWide = ml.Transforms.Conversion.MapValueToKey("Label").Append(TestData.TokenKeys(ml))
            .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options { WideFeatureColumnName = "Wide", NumberOfEpochs = 1 }));
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => noWide.Fit(train));
        StringAssert.Contains(e.Message, "'Wide'");

        var model = Pipeline(ml, epochs: 1).Fit(train);
        var classifier = ((IEnumerable<ITransformer>)model).OfType<RecurrentMulticlassTransformer>().Single();
        // Scoring data whose wide column is missing, or has another size (another FeaturizeText fit), is refused by name.
        var tokensOnly = ml.Transforms.Conversion.MapValueToKey("Label").Append(TestData.TokenKeys(ml)).Fit(train).Transform(train);
        var missing = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => classifier.Transform(tokensOnly));
        StringAssert.Contains(missing.Message, "Wide feature column 'Wide'");
        // The model's own token featurizer, but FeaturizeText fitted on other text: another n-gram dictionary.
        var tokenKeys = ((IEnumerable<ITransformer>)model).ElementAt(2);
        var resized = tokenKeys.Transform(ml.Transforms.Text.FeaturizeText("Wide", "Text").Fit(ml.Data.LoadFromEnumerable(TestData.Topic(20, 9))).Transform(train));
        Assert.AreNotEqual(((VectorDataViewType)resized.Schema["Wide"].Type).Size, ((VectorDataViewType)model.Transform(train).Schema["Wide"].Type).Size);
        var other = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => classifier.Transform(resized));
        StringAssert.Contains(other.Message, "values per row");
        // A wide column of the wrong type.
        var bad = ml.Transforms.Conversion.MapValueToKey("Label").Append(TestData.TokenKeys(ml))
            .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options { WideFeatureColumnName = "Text", NumberOfEpochs = 1 }));
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => bad.Fit(train)).Message, "known-size vector of Single");
    }
}
