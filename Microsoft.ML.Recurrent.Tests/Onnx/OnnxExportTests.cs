using System.Diagnostics;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Microsoft.ML.Recurrent.Tests.MLNet;

namespace Microsoft.ML.Recurrent.Tests.Onnx;

/// <summary>
/// ONNX export through ML.NET's own <c>ConvertToOnnx</c>: the exported graph, run in ONNX Runtime and through ML.NET's
/// <c>ApplyOnnxModel</c>, agrees with our scoring within 1e-5 for every cell × direction × depth × pooling kind, over rows
/// of lengths 1 to 20; the graph passes ONNX's checker (python3-onnx) when it is installed.
/// </summary>
[TestClass]
public sealed class OnnxExportTests
{
    private const float Tolerance = 1e-5f;

    public TestContext TestContext { get; set; } = null!;

    /// <summary>Rows of lengths 0 … 21 (the topic data is 3–12 words), words the vocabulary has and has not seen.</summary>
    private static List<TextRow> Rows()
    {
        var rows = TestData.Topic(40, 3);
        rows.Add(new TextRow { Label = "Sports", Text = "goal" });
        rows.Add(new TextRow { Label = "Sports", Text = "" }); // no tokens: "no evidence", the head's bias
        rows.Add(new TextRow { Label = "Tech", Text = "zebra" }); // unseen: key 0
        rows.Add(new TextRow { Label = "Business", Text = "stock profit" });
        rows.Add(new TextRow { Label = "Tech", Text = string.Join(' ', Enumerable.Repeat("code cloud the", 7)) }); // 21 words
        return rows;
    }

    private static (MLContext Ml, IDataView Featurized, ITransformer Featurizer, IDataView Raw) Featurize(MLContext ml)
    {
        var raw = ml.Data.LoadFromEnumerable(Rows());
        var featurizer = ml.Transforms.Conversion.MapValueToKey("Label").Append(TestData.TokenKeys(ml)).Fit(raw);
        return (ml, featurizer.Transform(raw), featurizer, raw);
    }

    /// <summary>
    /// The feature columns alone, as a view that is not a transform (a cache): ML.NET's converter walks back through
    /// transforms to the first view that is not one, whose columns become the graph's inputs — the input of a
    /// recurrent-only export (docs/onnx.md).
    /// </summary>
    private static IDataView FeatureSchema(IDataView featurized, params string[] columns) =>
        new MLContext().Data.Cache(new MLContext().Transforms.SelectColumns(columns.Length == 0 ? ["Features"] : columns).Fit(featurized).Transform(featurized));

    private static byte[] Export(MLContext ml, ITransformer model, IDataView input)
    {
        using var stream = new MemoryStream();
        ml.Model.ConvertToOnnx(model, input, stream);
        return stream.ToArray();
    }

    /// <summary>Each row's key vector.</summary>
    private static List<uint[]> Keys(IDataView featurized, string column = "Features")
    {
        var keys = new List<uint[]>();
        using var cursor = featurized.GetRowCursor([featurized.Schema[column]]);
        var getter = cursor.GetGetter<VBuffer<uint>>(featurized.Schema[column]);
        VBuffer<uint> value = default;
        while (cursor.MoveNext())
        {
            getter(ref value);
            keys.Add(value.DenseValues().ToArray());
        }
        return keys;
    }

    private static List<float[]> Column(IDataView view, string column)
    {
        var rows = new List<float[]>();
        var col = view.Schema[column];
        using var cursor = view.GetRowCursor([col]);
        if (col.Type is VectorDataViewType)
        {
            var getter = cursor.GetGetter<VBuffer<float>>(col);
            VBuffer<float> value = default;
            while (cursor.MoveNext()) { getter(ref value); rows.Add(value.DenseValues().ToArray()); }
        }
        else
        {
            var getter = cursor.GetGetter<float>(col);
            float value = 0;
            while (cursor.MoveNext()) { getter(ref value); rows.Add([value]); }
        }
        return rows;
    }

    private static Dictionary<string, float[]> RunOrt(InferenceSession session, string inputName, Array row)
    {
        var input = row is uint[] keys
            ? NamedOnnxValue.CreateFromTensor(inputName, new DenseTensor<uint>(keys, [1, keys.Length]))
            : NamedOnnxValue.CreateFromTensor(inputName, new DenseTensor<float>((float[])row, [1, row.Length]));
        using var results = session.Run([input]);
        var outputs = new Dictionary<string, float[]>();
        foreach (var r in results)
        {
            if (r.Value is Tensor<float> f) outputs[r.Name] = f.ToArray();
            else if (r.Value is Tensor<uint> u) outputs[r.Name] = u.ToArray().Select(v => (float)v).ToArray();
            else if (r.Value is Tensor<bool> b) outputs[r.Name] = b.ToArray().Select(v => v ? 1f : 0f).ToArray();
        }
        return outputs;
    }

    private static void AssertClose(float[] expected, float[] actual, string what)
    {
        Assert.AreEqual(expected.Length, actual.Length, $"{what}: length");
        for (int i = 0; i < expected.Length; i++)
            Assert.IsTrue(MathF.Abs(expected[i] - actual[i]) <= Tolerance * Math.Max(1f, MathF.Abs(expected[i])),
                $"{what}[{i}]: ours {expected[i]}, ONNX Runtime {actual[i]}");
    }

    public static IEnumerable<object[]> Architectures()
    {
        PoolingKind[] poolings =
        [
            PoolingKind.FinalState, PoolingKind.Mean, PoolingKind.Max, PoolingKind.Attention,
            PoolingKind.Mean | PoolingKind.Max | PoolingKind.InputMean,
        ];
        foreach (var cell in Enum.GetValues<RecurrentCellKind>())
            foreach (bool bidirectional in new[] { false, true })
                for (int layers = 1; layers <= 3; layers++)
                    yield return [cell, bidirectional, layers, poolings[((int)cell + layers + (bidirectional ? 2 : 0)) % poolings.Length]];
    }

    /// <summary>
    /// Every cell × direction × depth, the pooling kind rotating so that each cell and direction meets every kind; the
    /// multiclass head (Softmax, ArgMax), all rows scored by ONNX Runtime and compared with ours.
    /// </summary>
    [TestMethod]
    [DynamicData(nameof(Architectures))]
    public void ExportedNetworkMatchesOurs(RecurrentCellKind cell, bool bidirectional, int layers, PoolingKind pooling)
    {
        var (ml, featurized, _, _) = Featurize(new MLContext(seed: 5));
        var model = ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
        {
            Cell = cell, Bidirectional = bidirectional, NumberOfLayers = layers, Pooling = pooling,
            EmbeddingSize = 5, HiddenSize = 4, NumberOfEpochs = 1, BatchSize = 16, MinimumTokenFrequency = 2,
            MaximumSequenceLength = 20,
        }).Fit(featurized);
        CheckAgainstOrt(ml, featurized, model, ["Score", "PredictedLabel"]);
    }

    /// <summary>Every pooling kind alone and all together, on a bidirectional two-layer LSTM.</summary>
    [TestMethod]
    public void EveryPoolingKindAloneAndTogether()
    {
        var (ml, featurized, _, _) = Featurize(new MLContext(seed: 6));
        foreach (var pooling in new[] { PoolingKind.FinalState, PoolingKind.Mean, PoolingKind.Max, PoolingKind.Attention,
                     PoolingKind.FinalState | PoolingKind.Mean | PoolingKind.Max | PoolingKind.InputMean | PoolingKind.Attention })
        {
            var model = ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
            {
                Bidirectional = true, NumberOfLayers = 2, Pooling = pooling, EmbeddingSize = 5, HiddenSize = 3, NumberOfEpochs = 1, BatchSize = 16,
            }).Fit(featurized);
            CheckAgainstOrt(ml, featurized, model, ["Score", "PredictedLabel"]);
        }
    }

    private void CheckAgainstOrt(MLContext ml, IDataView featurized, ITransformer model, string[] columns, string inputColumn = "Features")
    {
        var onnx = Export(ml, model, FeatureSchema(featurized, inputColumn));
        var opset14 = OnnxChecker.Check(onnx, TestContext);
        using var session = new InferenceSession(onnx);
        using var session14 = opset14 is null ? null : new InferenceSession(opset14);
        var ours = model.Transform(featurized);
        var expected = columns.ToDictionary(c => c, c => ColumnAsFloats(ours, c));
        List<Array> inputs = featurized.Schema[inputColumn].Type is VectorDataViewType { ItemType: KeyDataViewType }
            ? [.. Keys(featurized, inputColumn)]
            : [.. Column(featurized, inputColumn)];
        for (int row = 0; row < inputs.Count; row++)
        foreach (var s in new[] { session, session14 })
        {
            if (s is null) continue;
            var actual = RunOrt(s, inputColumn, inputs[row]);
            foreach (var c in columns)
                AssertClose(expected[c][row], actual.TryGetValue(c + ".output", out var a) ? a : throw new KeyNotFoundException($"{c}.output not in [{string.Join(", ", actual.Keys)}]"), $"row {row} (length {inputs[row].Length}) {c}");
        }
    }

    private static List<float[]> ColumnAsFloats(IDataView view, string column)
    {
        var col = view.Schema[column];
        var type = col.Type is VectorDataViewType v ? v.ItemType : col.Type;
        if (type is KeyDataViewType || type.RawType == typeof(uint))
        {
            var rows = new List<float[]>();
            using var cursor = view.GetRowCursor([col]);
            if (col.Type is VectorDataViewType)
            {
                var getter = cursor.GetGetter<VBuffer<uint>>(col);
                VBuffer<uint> value = default;
                while (cursor.MoveNext()) { getter(ref value); rows.Add(value.DenseValues().Select(k => (float)k).ToArray()); }
            }
            else
            {
                var getter = cursor.GetGetter<uint>(col);
                uint value = 0;
                while (cursor.MoveNext()) { getter(ref value); rows.Add([value]); }
            }
            return rows;
        }
        if (type is BooleanDataViewType)
        {
            var rows = new List<float[]>();
            using var cursor = view.GetRowCursor([col]);
            var getter = cursor.GetGetter<bool>(col);
            bool value = false;
            while (cursor.MoveNext()) { getter(ref value); rows.Add([value ? 1f : 0f]); }
            return rows;
        }
        return Column(view, column);
    }

    /// <summary>The binary classifier (Score, Probability, PredictedLabel) and the regressor (Score) on GRU and RNN-ReLU.</summary>
    [TestMethod]
    public void BinaryAndRegressionHeadsExport()
    {
        var ml = new MLContext(seed: 7);
        var raw = ml.Data.LoadFromEnumerable(TestData.Sentiment(60, 2));
        var featurized = TestData.TokenKeys(ml).Fit(raw).Transform(raw);
        var binary = ml.BinaryClassification.Trainers.Recurrent(new RecurrentBinaryTrainer.Options
        {
            Cell = RecurrentCellKind.Gru, EmbeddingSize = 4, HiddenSize = 4, NumberOfEpochs = 1, Pooling = PoolingKind.FinalState | PoolingKind.Max,
        }).Fit(featurized);
        CheckAgainstOrt(ml, featurized, binary, ["Score", "Probability", "PredictedLabel"]);

        var regressionData = ml.Transforms.CustomMapping<BinaryRow, RegressionTarget>((row, target) => target.Target = row.Label ? 2.5f : -1f, null)
            .Fit(raw).Transform(raw);
        var regressionFeatures = TestData.TokenKeys(ml).Fit(regressionData).Transform(regressionData);
        var regression = ml.Regression.Trainers.Recurrent(new RecurrentRegressionTrainer.Options
        {
            LabelColumnName = "Target", Cell = RecurrentCellKind.RnnRelu, Bidirectional = true, EmbeddingSize = 4, HiddenSize = 4, NumberOfEpochs = 1,
        }).Fit(regressionFeatures);
        CheckAgainstOrt(ml, regressionFeatures, regression, ["Score"]);
    }

    private sealed class RegressionTarget
    {
        public float Target { get; set; }
    }

    /// <summary>A tagger without CRF (each token's tag and tag probabilities) and a featurizer over it (pooled and per-token states).</summary>
    [TestMethod]
    public void TaggerAndFeaturizerExport()
    {
        var ml = new MLContext(seed: 11);
        var sentences = Tagging.TaggingData.Sentences(60, 2);
        var data = ml.Data.LoadFromEnumerable(sentences);
        var featurizerOfKeys = Tagging.TaggingData.Featurizer(ml).Fit(data);
        var keys = featurizerOfKeys.Transform(data);
        var tagger = ml.MulticlassClassification.Trainers.RecurrentTagger(new RecurrentTaggerTrainer.Options
        {
            EmbeddingSize = 6, HiddenSize = 5, NumberOfEpochs = 1, UseCrf = false, NumberOfLayers = 2, OutputProbabilities = true,
        }).Fit(keys);
        // Scored with an empty sentence among them: no tags, no states, a pooled vector of zeros.
        var withEmpty = featurizerOfKeys.Transform(ml.Data.LoadFromEnumerable(sentences.Take(10).Append(new Tagging.TaggedSentence { Tokens = [], Tags = [] })));
        CheckAgainstOrt(ml, withEmpty, tagger, [tagger.OutputColumnName, tagger.ScoreColumnName!]);
        var featurizer = ml.Transforms.RecurrentFeatures(tagger, pooledColumnName: "Pooled", statesColumnName: "States").Fit(keys);
        CheckAgainstOrt(ml, withEmpty, featurizer, ["Pooled", "States"]);

        var withCrf = ml.MulticlassClassification.Trainers.RecurrentTagger(new RecurrentTaggerTrainer.Options
        {
            EmbeddingSize = 4, HiddenSize = 3, NumberOfEpochs = 1, UseCrf = true,
        }).Fit(keys);
        using var stream = new MemoryStream();
        var error = Assert.ThrowsExactly<NotSupportedException>(() => ml.Model.ConvertToOnnx(withCrf, FeatureSchema(keys), stream));
        StringAssert.Contains(error.Message, "CRF");
        // A featurizer never reads the CRF: over a CRF tagger it exports.
        CheckAgainstOrt(ml, withEmpty, ml.Transforms.RecurrentFeatures(withCrf, pooledColumnName: "Pooled", statesColumnName: "States").Fit(keys), ["Pooled", "States"]);

        // From the string tokens: MapValueToKey → the tagger, through ApplyOnnxModel; the predicted tags equal ours.
        var pipeline = featurizerOfKeys.Append(tagger);
        var rows = ml.Data.LoadFromEnumerable(sentences.Take(10).Append(new Tagging.TaggedSentence { Tokens = [], Tags = [] }));
        List<uint[]> Tags(IDataView view) => view.GetColumn<VBuffer<uint>>(tagger.OutputColumnName).Select(v => v.DenseValues().ToArray()).ToList();
        var ours = Tags(pipeline.Transform(rows));
        var onnx = ThroughApplyOnnxModel(ml, pipeline, rows, Tags);
        for (int row = 0; row < ours.Count; row++)
            CollectionAssert.AreEqual(ours[row], onnx[row], $"row {row}: tags");
    }

    /// <summary>
    /// Exports <paramref name="model"/> from <paramref name="data"/> to a file (checked by ONNX's checker when
    /// <paramref name="check"/>), scores <paramref name="data"/> with ML.NET's ApplyOnnxModel over it and returns what
    /// <paramref name="read"/> reads from the result.
    /// </summary>
    private T ThroughApplyOnnxModel<T>(MLContext ml, ITransformer model, IDataView data, Func<IDataView, T> read, bool check = false)
    {
        string path = Path.Combine(Path.GetTempPath(), $"pipeline-{Guid.NewGuid():N}.onnx");
        try
        {
            using (var file = File.Create(path))
                ml.Model.ConvertToOnnx(model, data, file);
            if (check)
                OnnxChecker.Check(File.ReadAllBytes(path), TestContext);
            return read(ml.Transforms.ApplyOnnxModel(path).Fit(data).Transform(data));
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Dense input (two features per step, a maximum length) through a stacked GRU regressor, and a pooled-head featurizer.</summary>
    [TestMethod]
    public void DenseInputExports()
    {
        var ml = new MLContext(seed: 12);
        var series = ml.Data.LoadFromEnumerable(TestData.Series(40, 4).Append(new SeriesRow { Features = [], Label = 0 }));
        var model = ml.Regression.Trainers.Recurrent(new RecurrentRegressionTrainer.Options
        {
            FeaturesPerStep = 2, Cell = RecurrentCellKind.Gru, NumberOfLayers = 2, HiddenSize = 4, NumberOfEpochs = 1, MaximumSequenceLength = 6,
            Pooling = PoolingKind.FinalState | PoolingKind.InputMean,
        }).Fit(series);
        CheckAgainstOrt(ml, series, model, ["Score"]);
        var featurizer = ml.Transforms.RecurrentFeatures(model, pooledColumnName: "Pooled", statesColumnName: "States").Fit(series);
        CheckAgainstOrt(ml, series, featurizer, ["Pooled", "States"]);
    }

    /// <summary>
    /// Language-model scoring: each row's log-likelihood and perplexity, for a forward model with tied weights and a
    /// backward two-layer GRU, exported from the key column and run in ONNX Runtime, and once from raw text through
    /// ApplyOnnxModel; a key beyond the vocabulary gives NaN as ours; a character model says it cannot be exported.
    /// </summary>
    [TestMethod]
    public void LanguageModelScoringExports()
    {
        var ml = new MLContext(seed: 14);
        var sentences = LanguageModeling.LanguageModelText.Sentences(120, 4);
        var data = ml.Data.LoadFromEnumerable(sentences);
        var keysOf = ml.Transforms.Text.TokenizeIntoWords("Words", "Text").Append(ml.Transforms.Conversion.MapValueToKey("Tokens", "Words")).Fit(data);
        var keys = keysOf.Transform(data);
        foreach (var (backward, cell, layers, tie) in new[] { (false, RecurrentCellKind.Lstm, 1, true), (true, RecurrentCellKind.Gru, 2, false) })
        {
            var lm = ml.Transforms.Text.RecurrentLanguageModel(new RecurrentLanguageModelEstimator.Options
            {
                InputColumnName = "Tokens", EmbeddingSize = 8, HiddenSize = 8, TieWeights = tie, NumberOfLayers = layers, Cell = cell, Backward = backward,
                SequenceLength = 8, BatchSize = 8, NumberOfEpochs = 1, Seed = 2, NumberOfThreads = 1,
            }).Fit(keys);
            var test = keysOf.Transform(ml.Data.LoadFromEnumerable(sentences.Take(12).Append(new LanguageModeling.LanguageModelText.Row { Text = "" })));
            CheckAgainstOrt(ml, test, lm, ["LogLikelihood", "Perplexity"], "Tokens");
            using var session = new InferenceSession(Export(ml, lm, FeatureSchema(test, "Tokens")));
            var beyond = RunOrt(session, "Tokens", new uint[] { 1, 100_000, 2 });
            Assert.IsTrue(float.IsNaN(beyond["LogLikelihood.output"][0]) && float.IsNaN(beyond["Perplexity.output"][0]), "a key beyond the vocabulary: NaN, as ours");
            if (!backward)
            {
                // From raw text: TokenizeIntoWords → MapValueToKey → the language model, through ApplyOnnxModel.
                var whole = keysOf.Append(lm);
                // Non-empty rows: for an empty text, ONNX Runtime can fail in its buffer planner on ML.NET's own declaration of
                // TokenizeIntoWords' output (width 1) — see docs/onnx.md; from the key vector (above) the empty row scores.
                var raw = ml.Data.LoadFromEnumerable(sentences.Take(12));
                var ours = Column(whole.Transform(raw), "LogLikelihood");
                var onnx = ThroughApplyOnnxModel(ml, whole, raw, view => Column(view, "LogLikelihood"));
                for (int row = 0; row < ours.Count; row++)
                    AssertClose(ours[row], onnx[row], $"row {row} LogLikelihood (raw text)");
            }
        }
        var characters = ml.Transforms.Text.RecurrentLanguageModel(new RecurrentLanguageModelEstimator.Options
        {
            EmbeddingSize = 4, HiddenSize = 4, SequenceLength = 8, BatchSize = 8, NumberOfEpochs = 1, Seed = 2,
        }).Fit(data);
        using var stream = new MemoryStream();
        var error = Assert.ThrowsExactly<NotSupportedException>(() => ml.Model.ConvertToOnnx(characters, data, stream));
        StringAssert.Contains(error.Message, "character model");
    }

    /// <summary>
    /// A step without ONNX form that rewrites the feature column in place: ML.NET's converter would feed the raw column
    /// of the same name to the network; the export is refused naming the step instead of scoring something else.
    /// </summary>
    [TestMethod]
    public void AStepWithoutOnnxThatRewritesTheFeaturesIsRefused()
    {
        var ml = new MLContext(seed: 17);
        var series = ml.Data.LoadFromEnumerable(TestData.Series(30, 5));
        var model = ml.Transforms.CustomMapping<SeriesRow, SeriesRow>((a, b) => { b.Features = [.. a.Features.Select(v => 2 * v + 1)]; b.Label = a.Label; }, null)
            .Append(ml.Regression.Trainers.Recurrent(new RecurrentRegressionTrainer.Options { FeaturesPerStep = 2, HiddenSize = 3, NumberOfEpochs = 1 }))
            .Fit(series);
        using var stream = new MemoryStream();
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Model.ConvertToOnnx(model, series, stream));
        StringAssert.Contains(error.Message, "CustomMapping");
        StringAssert.Contains(error.Message, "\"Features\"");
    }

    /// <summary>
    /// Rows our scorer cannot read get what ours gives them in ONNX Runtime too: NaN scores for a NaN or infinite feature,
    /// a width that is not a multiple of the features per step (hidden by truncation, too), a key beyond the vocabulary;
    /// a missing predicted key (0) for the classifier.
    /// </summary>
    [TestMethod]
    public void UnreadableRowsScoreAsOurs()
    {
        var ml = new MLContext(seed: 18);
        var series = ml.Data.LoadFromEnumerable(TestData.Series(30, 6));
        var regressor = ml.Regression.Trainers.Recurrent(new RecurrentRegressionTrainer.Options
        {
            FeaturesPerStep = 2, HiddenSize = 3, NumberOfEpochs = 1, MaximumSequenceLength = 3,
        }).Fit(series);
        using (var session = new InferenceSession(Export(ml, regressor, FeatureSchema(series))))
        {
            foreach (var (name, row) in new (string, float[])[]
            {
                ("NaN", [0.5f, float.NaN, 1, 2]), ("infinity", [0.5f, 1, float.PositiveInfinity, 2]),
                ("odd width", [1, 2, 3, 4, 5, 6, 7, 8, 9]), ("odd width, short", [1, 2, 3]),
            })
                Assert.IsTrue(float.IsNaN(RunOrt(session, "Features", row)["Score.output"][0]), $"{name}: NaN, as ours");
            Assert.IsFalse(float.IsNaN(RunOrt(session, "Features", new float[] { 1, 2, 3, 4, 5, 6, 7, 8, float.NaN, float.NaN })["Score.output"][0]),
                "a non-finite value beyond the maximum length is not read, as ours");
        }

        var (_, featurized, _, _) = Featurize(ml);
        var classifier = ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options { EmbeddingSize = 4, HiddenSize = 3, NumberOfEpochs = 1 }).Fit(featurized);
        using (var session = new InferenceSession(Export(ml, classifier, FeatureSchema(featurized))))
        {
            var beyond = RunOrt(session, "Features", new uint[] { 1, 2, 100_000 });
            Assert.IsTrue(beyond["Score.output"].All(float.IsNaN), "a key beyond the vocabulary: NaN scores, as ours");
            Assert.AreEqual(0f, beyond["PredictedLabel.output"][0], "and the missing key, as ours");
        }
    }

    /// <summary>The scored view can be re-applied to other data as ML.NET's own transforms can (ITransformTemplate).</summary>
    [TestMethod]
    public void TheScoredViewAppliesToOtherData()
    {
        var (ml, featurized, _, _) = Featurize(new MLContext(seed: 19));
        var model = ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options { EmbeddingSize = 4, HiddenSize = 3, NumberOfEpochs = 1 }).Fit(featurized);
        var view = model.Transform(featurized);
        var template = view.GetType().GetInterfaces().Single(i => i.Name == "ITransformTemplate");
        var environment = typeof(MLContext).Assembly.GetType("Microsoft.ML.Runtime.IHostEnvironment", throwOnError: false) is not null ? (object)ml : ml;
        var other = ml.Data.TakeRows(featurized, 5);
        var applied = (IDataView)template.GetMethod("ApplyToData")!.Invoke(view, [environment, other])!;
        CollectionAssert.AreEqual(Column(model.Transform(other), "Score").SelectMany(r => r).ToArray(), Column(applied, "Score").SelectMany(r => r).ToArray());
    }

    /// <summary>The forecaster (each row's forecast reads earlier rows) says why it has no ONNX form.</summary>
    [TestMethod]
    public void ForecasterSaysWhyItCannotBeExported()
    {
        var ml = new MLContext(seed: 15);
        var series = ml.Data.LoadFromEnumerable(Forecasting.ForecastingEstimatorTests.Series(120));
        var options = Forecasting.ForecastingEstimatorTests.SmallOptions();
        options.NumberOfEpochs = 1;
        var model = ml.Forecasting.Recurrent(options).Fit(series);
        using var stream = new MemoryStream();
        var error = Assert.ThrowsExactly<NotSupportedException>(() => ml.Model.ConvertToOnnx(model, series, stream));
        StringAssert.Contains(error.Message, "48 rows before it");
    }

    /// <summary>
    /// The whole pipeline from raw text — TokenizeIntoWords → MapValueToKey → recurrent classifier → MapKeyToValue —
    /// exports end to end, and ML.NET's ApplyOnnxModel over it gives our scores and labels.
    /// </summary>
    [TestMethod]
    public void WholePipelineFromRawTextThroughApplyOnnxModel()
    {
        var ml = new MLContext(seed: 8);
        var raw = ml.Data.LoadFromEnumerable(Rows());
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.Text.TokenizeIntoWords("Tokens", "Text"))
            .Append(ml.Transforms.Conversion.MapValueToKey("Features", "Tokens"))
            .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
            {
                EmbeddingSize = 5, HiddenSize = 4, NumberOfEpochs = 1, Bidirectional = true,
            }))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        var model = pipeline.Fit(raw);
        var ours = model.Transform(raw);
        var (onnxKeys, actualScores, actualLabels) = ThroughApplyOnnxModel(ml, model, raw, onnx => (
            onnx.GetColumn<VBuffer<uint>>("Features").Select(v => v.DenseValues().ToArray()).ToList(),
            Column(onnx, "Score"),
            onnx.GetColumn<VBuffer<ReadOnlyMemory<char>>>("PredictedLabel").Select(l => l.DenseValues().Single().ToString()).ToList()), check: true);
        var oursKeys = Keys(ours);
        for (int row = 0; row < oursKeys.Count; row++)
            CollectionAssert.AreEqual(oursKeys[row], onnxKeys[row], $"row {row}: the tokens' keys differ between ML.NET and its ONNX export");
        var expectedScores = Column(ours, "Score");
        var expectedLabels = ours.GetColumn<ReadOnlyMemory<char>>("PredictedLabel").Select(l => l.ToString()).ToList();
        Assert.AreEqual(expectedScores.Count, actualScores.Count);
        for (int row = 0; row < expectedScores.Count; row++)
        {
            AssertClose(expectedScores[row], actualScores[row], $"row {row} Score");
            Assert.AreEqual(expectedLabels[row], actualLabels[row], $"row {row} PredictedLabel");
        }
    }

    /// <summary>
    /// A pipeline whose features come from TokenizeToIds (no ONNX export) is refused with a message that says what was
    /// left out and what to do; doing that — exporting the recurrent part on its own from the key vector — works.
    /// </summary>
    [TestMethod]
    public void PipelineWithAStepWithoutOnnxSaysWhatWasLeftOutAndTheRecurrentPartExportsAlone()
    {
        var ml = new MLContext(seed: 9);
        var rows = Rows();
        string vocabulary = Path.Combine(Path.GetTempPath(), $"vocab-{Guid.NewGuid():N}.txt");
        try
        {
            var words = rows.SelectMany(r => r.Text.Split(' ')).Distinct().Order().Take(20);
            File.WriteAllLines(vocabulary, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", .. words, "##s"]);
            var raw = ml.Data.LoadFromEnumerable(rows);
            var featurizer = ml.Transforms.Conversion.MapValueToKey("Label")
                .Append(ml.Transforms.Text.TokenizeToIds("Features", "Text", TokenizerData.Bert(vocabulary)))
                .Fit(raw);
            var featurized = featurizer.Transform(raw);
            var recurrent = ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options { EmbeddingSize = 4, HiddenSize = 3, NumberOfEpochs = 1 })
                .Fit(featurized);
            var whole = featurizer.Append(recurrent);
            using var stream = new MemoryStream();
            var error = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Model.ConvertToOnnx(whole, raw, stream));
            StringAssert.Contains(error.Message, "TokenizeToIds");
            StringAssert.Contains(error.Message, "\"Features\"");
            StringAssert.Contains(error.Message, "on its own");
            CheckAgainstOrt(ml, featurized, recurrent, ["Score", "PredictedLabel"]);
        }
        finally
        {
            File.Delete(vocabulary);
        }
    }

    /// <summary>
    /// Wide &amp; deep: the wide column (ProduceNgrams over the keys) enters as a graph input beside the key vector and
    /// its MatMul is added to the logits; agrees with ours. In a whole pipeline from raw text, ML.NET writes ProduceNgrams
    /// itself (TfIdfVectorizer) and ApplyOnnxModel agrees too.
    /// </summary>
    [TestMethod]
    public void WideAndDeepExports()
    {
        var (ml, featurized, _, _) = Featurize(new MLContext(seed: 10));
        var withWide = ml.Transforms.Text.ProduceNgrams("Wide", "Features", ngramLength: 2).Fit(featurized).Transform(featurized);
        var model = ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
        {
            EmbeddingSize = 4, HiddenSize = 3, NumberOfEpochs = 1, WideFeatureColumnName = "Wide",
        }).Fit(withWide);
        var onnx = Export(ml, model, FeatureSchema(withWide, "Features", "Wide"));
        OnnxChecker.Check(onnx, TestContext);
        using var session = new InferenceSession(onnx);
        var expected = Column(model.Transform(withWide), "Score");
        var keys = Keys(withWide);
        var wide = Column(withWide, "Wide");
        for (int row = 0; row < keys.Count; row++)
        {
            using var results = session.Run(
            [
                NamedOnnxValue.CreateFromTensor("Features", new DenseTensor<uint>(keys[row], [1, keys[row].Length])),
                NamedOnnxValue.CreateFromTensor("Wide", new DenseTensor<float>(wide[row], [1, wide[row].Length])),
            ]);
            AssertClose(expected[row], results.First(r => r.Name == "Score.output").AsTensor<float>().ToArray(), $"row {row} (length {keys[row].Length}) Score");
        }
    }

    /// <summary>ProduceNgrams inside a whole raw-text pipeline: exported by ML.NET, and ApplyOnnxModel agrees with ours.</summary>
    [TestMethod]
    public void WideAndDeepFromRawText()
    {
        var ml = new MLContext(seed: 16);
        var raw = ml.Data.LoadFromEnumerable(Rows());
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.Text.TokenizeIntoWords("Tokens", "Text"))
            .Append(ml.Transforms.Conversion.MapValueToKey("Features", "Tokens"))
            .Append(ml.Transforms.Text.ProduceNgrams("Wide", "Features", ngramLength: 2))
            .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
            {
                EmbeddingSize = 4, HiddenSize = 3, NumberOfEpochs = 1, WideFeatureColumnName = "Wide",
            }))
            .Fit(raw);
        var ours = Column(model.Transform(raw), "Score");
        var onnx = ThroughApplyOnnxModel(ml, model, raw, view => Column(view, "Score"));
        for (int row = 0; row < ours.Count; row++)
            AssertClose(ours[row], onnx[row], $"row {row} Score");
    }
}

/// <summary>
/// ONNX's own model checker (python3-onnx) when installed: the part of the graph the recurrent transformers wrote (their
/// nodes are named "Recurrent.*") is extracted with its inputs and outputs and must pass
/// <c>onnx.checker.check_model(full_check=True)</c> (structure, opset, types, strict shape inference) and use only the
/// default domain; the whole model is checked structurally too (ML.NET's own nodes: its Tokenizer uses the
/// com.microsoft domain without declaring it, and its slot-name LabelEncoder fails strict shape inference — reported, not
/// ours to fix).
/// </summary>
internal static class OnnxChecker
{
    private const string CheckScript = """
        import onnx, sys
        from onnx import checker, helper
        m = onnx.load(sys.argv[1])
        ours = [n for n in m.graph.node if n.name.startswith('Recurrent.')]
        assert ours, 'no recurrent nodes in the graph'
        assert all(n.domain in ('', 'ai.onnx') for n in ours), 'a recurrent node outside the default domain'
        produced = {o for n in ours for o in n.output}
        consumed = {i for n in ours for i in n.input if i}
        initializers = {i.name for i in m.graph.initializer}
        inputs = sorted(consumed - produced - initializers)
        others = {i for n in m.graph.node if not n.name.startswith('Recurrent.') for i in n.input} | {o.name for o in m.graph.output}
        outputs = sorted(produced & others)
        # The recurrent part as a model of its own (ML.NET's value infos left out: its slot-name node's fails inference).
        types = {v.name: v.type for v in list(m.graph.input) + list(m.graph.value_info) + list(m.graph.output)}
        # ML.NET declares some column variables with a literal -1 dimension (not valid ONNX): made symbolic here.
        def unshaped(name):
            t = onnx.TypeProto()
            t.CopyFrom(types[name])
            for i, d in enumerate(t.tensor_type.shape.dim):
                if d.HasField('dim_value') and d.dim_value < 0:
                    d.dim_param = 'd%d' % i
            return helper.make_value_info(name, t)
        graph = onnx.helper.make_graph(ours, 'recurrent', [onnx.helper.make_value_info(i, types[i]) for i in inputs],
            [unshaped(o) for o in outputs],
            [i for i in m.graph.initializer if i.name in consumed])
        sub = onnx.helper.make_model(graph, opset_imports=[o for o in m.opset_import if o.domain in ('', 'ai.onnx')], ir_version=m.ir_version)
        checker.check_model(sub, full_check=True)
        ops = sorted({n.op_type for n in sub.graph.node})
        print('recurrent part passes onnx.checker (full_check):', len(sub.graph.node), 'nodes, inputs', inputs, 'ops', ops,
              'opsets', [(o.domain, o.version) for o in m.opset_import])
        # The same part at opset 14 (its operators are unchanged from 12 to 17), with ML.NET's output names, for ONNX Runtime.
        identities = [n for n in m.graph.node if n.op_type == 'Identity' and n.input[0] in outputs and n.output[0] in {o.name for o in m.graph.output}]
        graph14 = helper.make_graph(ours + identities, 'recurrent_opset14', [helper.make_value_info(i, types[i]) for i in inputs],
            [unshaped(n.output[0]) for n in identities], [i for i in m.graph.initializer if i.name in consumed])
        m14 = helper.make_model(graph14, opset_imports=[helper.make_opsetid('', 14)], ir_version=8)
        checker.check_model(m14, full_check=True)
        onnx.save(m14, sys.argv[2])
        print('recurrent part passes onnx.checker (full_check) at opset 14 too')
        try:
            checker.check_model(m)
            print('whole model passes onnx.checker')
        except Exception as e:
            print('whole model (ML.NET nodes included):', type(e).__name__, str(e).splitlines()[0])
        """;

    // Debian's python3-onnx installs for the system interpreter, which may not be the first python3 on PATH.
    private static readonly Lazy<string?> Python = new(() =>
        new[] { "/usr/bin/python3", "python3" }.FirstOrDefault(p => Run(p, "import onnx", out _) == 0));

    /// <summary>
    /// Checks the model; returns the recurrent part re-declared at opset 14 (checked too), with the model's output names,
    /// or null when python3-onnx is not installed.
    /// </summary>
    public static byte[]? Check(byte[] model, TestContext context)
    {
        if (Python.Value is not { } python)
        {
            context.WriteLine("python3-onnx is not installed: ONNX's checker skipped (ONNX Runtime still loads and runs the model). .ci/run installs it.");
            return null;
        }
        string path = Path.Combine(Path.GetTempPath(), $"check-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(path, model);
        try
        {
            int code = Run(python, CheckScript, out string output, path, path + ".opset14");
            context.WriteLine(output);
            Assert.AreEqual(0, code, "ONNX's checker rejected the model: " + output);
            return File.ReadAllBytes(path + ".opset14");
        }
        finally
        {
            File.Delete(path);
            File.Delete(path + ".opset14");
        }
    }

    private static int Run(string python, string script, out string output, params string[] arguments)
    {
        try
        {
            var info = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true };
            info.ArgumentList.Add("-c");
            info.ArgumentList.Add(script);
            foreach (var argument in arguments) info.ArgumentList.Add(argument);
            using var process = Process.Start(info)!;
            output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
            process.WaitForExit();
            return process.ExitCode;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            output = e.Message;
            return -1;
        }
    }
}
