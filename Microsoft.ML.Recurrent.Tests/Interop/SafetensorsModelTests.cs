using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Recurrent.Interop;
using Microsoft.ML.Recurrent.Tests.MLNet;
using Microsoft.ML.Recurrent.Tests.Tagging;

namespace Microsoft.ML.Recurrent.Tests.Interop;

/// <summary>
/// Weights out of a trained transformer (<see cref="RecurrentTransformerBase.SaveAsSafetensors(string)"/>) and back in
/// through <see cref="RecurrentTrainerOptions.InitialWeightsPath"/>: PyTorch's names and shapes, the key → row mapping,
/// bit-identical predictions after the round trip, a libtorch-written file scored through ML.NET, continued training,
/// and the errors that name the tensors and both shapes.
/// </summary>
[TestClass]
public sealed class SafetensorsModelTests
{
    public TestContext TestContext { get; set; } = null!;

    private static string TempFile() => Path.Combine(Path.GetTempPath(), $"st-model-{Guid.NewGuid():N}.safetensors");

    /// <summary>Every value of the vector or scalar Single column <paramref name="name"/>, in row order.</summary>
    internal static float[] Column(IDataView data, string name)
    {
        var column = data.Schema[name];
        var values = new List<float>();
        using var cursor = data.GetRowCursor([column]);
        if (column.Type is VectorDataViewType)
        {
            var getter = cursor.GetGetter<VBuffer<float>>(column);
            VBuffer<float> buffer = default;
            while (cursor.MoveNext())
            {
                getter(ref buffer);
                values.AddRange(buffer.DenseValues());
            }
        }
        else
        {
            var getter = cursor.GetGetter<float>(column);
            float value = 0;
            while (cursor.MoveNext())
            {
                getter(ref value);
                values.Add(value);
            }
        }
        return [.. values];
    }

    private static RecurrentMulticlassTrainer.Options Classifier(string? weights = null, int epochs = 2) => new()
    {
        EmbeddingSize = 6, HiddenSize = 5, NumberOfEpochs = epochs, BatchSize = 16, Seed = 3,
        Pooling = PoolingKind.Mean | PoolingKind.Max | PoolingKind.Attention, InitialWeightsPath = weights,
    };

    private static (MLContext Ml, IDataView Data) Topics()
    {
        var ml = new MLContext(seed: 1);
        var text = ml.Data.LoadFromEnumerable(TestData.Topic(160, 1));
        var featurized = ml.Transforms.Conversion.MapValueToKey("Label").Append(TestData.TokenKeys(ml)).Fit(text).Transform(text);
        return (ml, ml.Data.Cache(featurized));
    }

    [TestMethod]
    public void AClassifierRoundTripsWithPyTorchNamesAndIdenticalPredictions()
    {
        var (ml, data) = Topics();
        var trained = ml.MulticlassClassification.Trainers.Recurrent(Classifier()).Fit(data);
        string path = TempFile(), again = TempFile();
        try
        {
            trained.SaveAsSafetensors(path);
            var file = SafetensorsReader.Read(path);
            int keys = (int)((KeyDataViewType)((VectorDataViewType)data.Schema["Features"].Type).ItemType).Count;
            var expected = new Dictionary<string, int[]>
            {
                ["embedding.weight"] = [keys + 1, 6],
                ["rnn.weight_ih_l0"] = [20, 6], ["rnn.weight_hh_l0"] = [20, 5], ["rnn.bias_ih_l0"] = [20], ["rnn.bias_hh_l0"] = [20],
                ["rnn.weight_ih_l0_reverse"] = [20, 6], ["rnn.weight_hh_l0_reverse"] = [20, 5], ["rnn.bias_ih_l0_reverse"] = [20], ["rnn.bias_hh_l0_reverse"] = [20],
                ["attention.weight"] = [10, 10], ["attention.bias"] = [10], ["attention.context"] = [10],
                ["head.weight"] = [3, 30], ["head.bias"] = [3],
            };
            CollectionAssert.AreEquivalent(expected.Keys.ToArray(), file.Tensors.Keys.ToArray());
            foreach (var (name, shape) in expected)
                CollectionAssert.AreEqual(shape, file.Tensors[name].Shape, name);
            Assert.AreEqual("multiclass", file.Metadata["task"]);
            Assert.AreEqual("LSTM", file.Metadata["cell"]);
            Assert.AreEqual("mean,max,attention", file.Metadata["pooling"]);
            CollectionAssert.AreEquivalent(TestData.Classes, System.Text.Json.JsonSerializer.Deserialize<string[]>(file.Metadata["labels"]));
            Assert.AreEqual((keys + 1).ToString(), file.Metadata["vocabulary_size"]);

            // Rare keys (MinimumTokenFrequency = 2) were read as key 0: their rows are copies of row 0; the others are not.
            var embedding = file.Tensors["embedding.weight"].Values;
            var map = trained.Model.Input.TokenMap!;
            int copies = 0;
            for (int key = 1; key <= keys; key++)
            {
                bool same = embedding.AsSpan(key * 6, 6).SequenceEqual(embedding.AsSpan(0, 6));
                Assert.AreEqual(map[key] == 0, same, $"key {key}");
                if (same) copies++;
            }
            TestContext.WriteLine($"{keys} keys, {copies} rare ones share the unknown row");

            var imported = ml.MulticlassClassification.Trainers.Recurrent(Classifier(path, epochs: 0)).Fit(data);
            CollectionAssert.AreEqual(Column(trained.Transform(data), "Score"), Column(imported.Transform(data), "Score"), "imported scores are bit-identical");
            imported.SaveAsSafetensors(again);
            CollectionAssert.AreEqual(File.ReadAllBytes(path), File.ReadAllBytes(again), "exporting the imported model gives the same file");
        }
        finally
        {
            File.Delete(path);
            File.Delete(again);
        }
    }

    [TestMethod]
    public void ARegressorAndACrfTaggerRoundTrip()
    {
        var ml = new MLContext(seed: 1);
        var series = ml.Data.LoadFromEnumerable(TestData.Series(60, 1));
        RecurrentRegressionTrainer.Options Regression(string? weights, int epochs) => new()
        {
            FeaturesPerStep = 2, HiddenSize = 5, NumberOfLayers = 2, Cell = RecurrentCellKind.Gru, NumberOfEpochs = epochs, Seed = 2, InitialWeightsPath = weights,
        };
        var regressor = ml.Regression.Trainers.Recurrent(Regression(null, 1)).Fit(series);
        string path = TempFile();
        try
        {
            using (var stream = File.Create(path))
                regressor.SaveAsSafetensors(stream);
            var file = SafetensorsReader.Read(path);
            Assert.IsFalse(file.Tensors.ContainsKey("embedding.weight"));
            CollectionAssert.AreEqual(new[] { 15, 2 }, file.Tensors["rnn.weight_ih_l0"].Shape);
            CollectionAssert.AreEqual(new[] { 15, 10 }, file.Tensors["rnn.weight_ih_l1_reverse"].Shape);
            Assert.AreEqual("2", file.Metadata["features_per_step"]);
            var imported = ml.Regression.Trainers.Recurrent(Regression(path, 0)).Fit(series);
            CollectionAssert.AreEqual(Column(regressor.Transform(series), "Score"), Column(imported.Transform(series), "Score"));
        }
        finally
        {
            File.Delete(path);
        }

        var sentences = ml.Data.LoadFromEnumerable(CrfTaggerTests.Entities(120, 1));
        var featurized = ml.Data.Cache(TaggingData.Featurizer(ml).Fit(sentences).Transform(sentences));
        RecurrentTaggerTrainer.Options Tagger(string? weights, int epochs) => new()
        {
            EmbeddingSize = 4, HiddenSize = 4, NumberOfEpochs = epochs, UseCrf = true, TagScheme = TagScheme.Bio, OutputProbabilities = true, Seed = 4,
            InitialWeightsPath = weights,
        };
        var tagger = ml.MulticlassClassification.Trainers.RecurrentTagger(Tagger(null, 1)).Fit(featurized);
        try
        {
            tagger.SaveAsSafetensors(path);
            var file = SafetensorsReader.Read(path);
            CollectionAssert.AreEqual(new[] { 4, 4 }, file.Tensors["crf.transitions"].Shape);
            CollectionAssert.AreEqual(new[] { 4 }, file.Tensors["crf.start_transitions"].Shape);
            CollectionAssert.AreEqual(new[] { 4, 8 }, file.Tensors["head.weight"].Shape);
            Assert.AreEqual("tagging", file.Metadata["task"]);
            Assert.AreEqual("per_step", file.Metadata["head"]);
            var imported = ml.MulticlassClassification.Trainers.RecurrentTagger(Tagger(path, 0)).Fit(featurized);
            CollectionAssert.AreEqual(Column(tagger.Transform(featurized), "Score"), Column(imported.Transform(featurized), "Score"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    public sealed class KeyRow
    {
        [KeyType(8), VectorType] public uint[] Features { get; set; } = [];
        [KeyType(3)] public uint Label { get; set; }
    }

    [TestMethod]
    public void ALibtorchFileScoresThroughMLNetWithKeyKAsRowK()
    {
        // libtorch's classifier over ids 0…8; ML.NET key k is id k (key 0, the missing key, is id 0).
        var fixture = SafetensorsTorchParityTests.Load("lstm_uni_l1");
        var rows = new List<KeyRow>();
        for (int i = 0, start = 0; i < fixture.Lengths.Length; start += fixture.Lengths[i++])
            rows.Add(new KeyRow { Features = fixture.Tokens[start..(start + fixture.Lengths[i])].Select(t => (uint)t).ToArray(), Label = (uint)(i % 3 + 1) });
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(rows);
        var options = new RecurrentMulticlassTrainer.Options
        {
            Cell = RecurrentCellKind.Lstm, EmbeddingSize = 5, HiddenSize = 4, NumberOfLayers = 1, Bidirectional = false, Pooling = PoolingKind.FinalState,
            InitialWeightsPath = fixture.File("torch_file"), NumberOfEpochs = 0,
        };
        var model = ml.MulticlassClassification.Trainers.Recurrent(options).Fit(data);
        float[] scores = Column(model.Transform(data), "Score");
        float[] logits = fixture.Floats("torch_logits");
        float worst = 0;
        for (int i = 0; i < fixture.Lengths.Length; i++)
        {
            var row = logits.AsSpan(i * 3, 3);
            float max = row[0];
            foreach (float v in row) max = Math.Max(max, v);
            double sum = 0;
            foreach (float v in row) sum += Math.Exp(v - max);
            for (int c = 0; c < 3; c++)
                worst = Math.Max(worst, Math.Abs(scores[i * 3 + c] - (float)(Math.Exp(row[c] - max) / sum)));
        }
        TestContext.WriteLine($"ML.NET scores vs softmax of libtorch's logits: max |diff| {worst:G3}");
        Assert.IsTrue(worst <= 1e-5f, $"max |diff| {worst}");
    }

    [TestMethod]
    public void TrainingContinuesFromTheFile()
    {
        var (ml, data) = Topics();
        string path = TempFile();
        try
        {
            ml.MulticlassClassification.Trainers.Recurrent(Classifier()).Fit(data).SaveAsSafetensors(path);
            var imported = Column(ml.MulticlassClassification.Trainers.Recurrent(Classifier(path, epochs: 0)).Fit(data).Transform(data), "Score");
            // One epoch at a tiny rate from the file stays next to it; one epoch from the seeded random start does not.
            var options = Classifier(path, epochs: 1);
            options.LearningRate = 1e-6f;
            var continued = Column(ml.MulticlassClassification.Trainers.Recurrent(options).Fit(data).Transform(data), "Score");
            options.InitialWeightsPath = null;
            var fresh = Column(ml.MulticlassClassification.Trainers.Recurrent(options).Fit(data).Transform(data), "Score");
            float near = imported.Zip(continued, (a, b) => Math.Abs(a - b)).Max(), far = imported.Zip(fresh, (a, b) => Math.Abs(a - b)).Max();
            TestContext.WriteLine($"max |score change|: continued {near:G3}, from a random start {far:G3}");
            Assert.IsTrue(near > 0 && near < 1e-4f && far > 100 * near, $"continued {near}, fresh {far}");
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// A wide &amp; deep model (ensemble mode, whose parts train at twice the kept scale) continues from its file: one
    /// epoch at a tiny rate stays next to the imported model.
    /// </summary>
    [TestMethod]
    public void AWideAndDeepEnsembleContinuesFromTheFile()
    {
        var (ml, data) = Topics();
        var withWide = ml.Data.Cache(ml.Transforms.Text.ProduceNgrams("Wide", "Features", ngramLength: 1).Fit(data).Transform(data));
        RecurrentMulticlassTrainer.Options Wide(string? weights, int epochs, float rate = 2e-3f)
        {
            var options = Classifier(weights, epochs);
            options.WideFeatureColumnName = "Wide";
            options.WideTraining = WideTrainingMode.Ensemble;
            options.LearningRate = rate;
            return options;
        }
        string path = TempFile();
        try
        {
            ml.MulticlassClassification.Trainers.Recurrent(Wide(null, 2)).Fit(withWide).SaveAsSafetensors(path);
            var imported = Column(ml.MulticlassClassification.Trainers.Recurrent(Wide(path, 0)).Fit(withWide).Transform(withWide), "Score");
            var continued = Column(ml.MulticlassClassification.Trainers.Recurrent(Wide(path, 1, 1e-7f)).Fit(withWide).Transform(withWide), "Score");
            float change = imported.Zip(continued, (x, y) => Math.Abs(x - y)).Max();
            TestContext.WriteLine($"max |score change| after one epoch at 1e-7: {change:G3}");
            Assert.IsTrue(change < 1e-3f, $"the continued ensemble moved {change} from the imported one: its parts did not start at the file's scale");
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// A file recorded against other data is refused: other words behind the same keys (the vocabulary's hash), the
    /// classes in another order, another task.
    /// </summary>
    [TestMethod]
    public void AFileOfOtherDataIsRefused()
    {
        var (ml, data) = Topics();
        string path = TempFile();
        try
        {
            ml.MulticlassClassification.Trainers.Recurrent(Classifier()).Fit(data).SaveAsSafetensors(path);
            // The same rows, keys given in reverse order: the same key count, other words behind each key.
            var text = ml.Data.LoadFromEnumerable(TestData.Topic(160, 1));
            var reversed = ml.Data.LoadFromEnumerable(TestData.Topic(160, 1).AsEnumerable().Reverse());
            var otherKeys = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.Text.TokenizeIntoWords("Tokens", "Text"))
                .Append(ml.Transforms.Conversion.MapValueToKey("Features", "Tokens", keyOrdinality: Microsoft.ML.Transforms.ValueToKeyMappingEstimator.KeyOrdinality.ByValue))
                .Fit(reversed).Transform(text);
            var vocabulary = Assert.ThrowsExactly<InvalidDataException>(() =>
                ml.MulticlassClassification.Trainers.Recurrent(Classifier(path, epochs: 0)).Fit(otherKeys));
            StringAssert.Contains(vocabulary.Message, "another vocabulary");

            var otherLabels = ml.Transforms.Conversion.MapValueToKey("Label", keyOrdinality: Microsoft.ML.Transforms.ValueToKeyMappingEstimator.KeyOrdinality.ByValue)
                .Append(TestData.TokenKeys(ml)).Fit(text).Transform(text);
            // Keys of the features as at export, classes sorted by value instead of by first appearance.
            var labels = Assert.ThrowsExactly<InvalidDataException>(() =>
                ml.MulticlassClassification.Trainers.Recurrent(Classifier(path, epochs: 0)).Fit(otherLabels));
            StringAssert.Contains(labels.Message, "label order");

            var binary = ml.Data.LoadFromEnumerable(TestData.Topic(160, 1).Select(r => new BinaryRow { Label = r.Label == "Sports", Text = r.Text }));
            var binaryKeys = TestData.TokenKeys(ml).Fit(binary).Transform(binary);
            var task = Assert.ThrowsExactly<InvalidDataException>(() => ml.BinaryClassification.Trainers.Recurrent(new RecurrentBinaryTrainer.Options
            {
                EmbeddingSize = 6, HiddenSize = 5, NumberOfEpochs = 0, Pooling = PoolingKind.Mean | PoolingKind.Max | PoolingKind.Attention, InitialWeightsPath = path,
            }).Fit(binaryKeys));
            StringAssert.Contains(task.Message, "multiclass model");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void AMismatchNamesTheTensorsAndBothShapes()
    {
        var (ml, data) = Topics();
        string path = TempFile(), edited = TempFile();
        try
        {
            ml.MulticlassClassification.Trainers.Recurrent(Classifier(epochs: 1)).Fit(data).SaveAsSafetensors(path);
            InvalidDataException Refused(RecurrentMulticlassTrainer.Options options) =>
                Assert.ThrowsExactly<InvalidDataException>(() => ml.MulticlassClassification.Trainers.Recurrent(options).Fit(data));

            var wider = Classifier(path, 0);
            wider.HiddenSize = 6;
            var e = Refused(wider);
            StringAssert.Contains(e.Message, "tensor 'rnn.weight_ih_l0' has shape [20, 6] in the file; the network needs [24, 6]");
            StringAssert.Contains(e.Message, "tensor 'head.weight' has shape [3, 30] in the file; the network needs [3, 36]");

            var gru = Classifier(path, 0);
            gru.Cell = RecurrentCellKind.Gru;
            StringAssert.Contains(Refused(gru).Message, "its metadata says cell = 'LSTM', but the options describe cell = 'GRU'");

            // Without metadata (as PyTorch's save_file writes it) the shapes still tell: a missing and an unexpected tensor, and a NaN.
            var file = SafetensorsReader.Read(path);
            var tensors = file.Tensors.Values.Where(t => t.Name != "head.bias").Append(new SafetensorsTensor("fc.bias", [3], new float[3])).ToList();
            SafetensorsWriter.Write(edited, tensors);
            e = Refused(Classifier(edited, 0));
            StringAssert.Contains(e.Message, "tensor 'head.bias' [3] is missing");
            StringAssert.Contains(e.Message, "tensor 'fc.bias' [3] is not a parameter of this network");
            var poisoned = file.Tensors.Values.Select(t => t.Name == "rnn.bias_hh_l0" ? t with { Values = t.Values.Select((v, i) => i == 7 ? float.NaN : v).ToArray() } : t);
            SafetensorsWriter.Write(edited, poisoned);
            StringAssert.Contains(Refused(Classifier(edited, 0)).Message, "tensor 'rnn.bias_hh_l0' holds NaN at index 7");

            Assert.ThrowsExactly<FileNotFoundException>(() => ml.MulticlassClassification.Trainers.Recurrent(Classifier(path + ".missing", 0)).Fit(data));
            var characters = Classifier(path, 0);
            characters.CharacterColumnName = "Tokens";
            Assert.ThrowsExactly<ArgumentException>(() => ml.MulticlassClassification.Trainers.Recurrent(characters));
            Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.Recurrent(Classifier(null, 0)));
        }
        finally
        {
            File.Delete(path);
            File.Delete(edited);
        }
    }
}
