using System.IO.Compression;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.Recurrent.Tests.MLNet;

/// <summary>Bad input gets a clear exception that names the column, row or value.</summary>
[TestClass]
public sealed class BadInputTests
{
    public TestContext TestContext { get; set; } = null!;

    private static RecurrentMulticlassTrainer.Options Small => new() { EmbeddingSize = 4, HiddenSize = 4, NumberOfEpochs = 1, BatchSize = 8 };

    private TException Throws<TException>(Action action, params string[] fragments) where TException : Exception
    {
        var e = Assert.ThrowsExactly<TException>(action);
        TestContext.WriteLine($"{typeof(TException).Name}: {e.Message}");
        foreach (var fragment in fragments)
            StringAssert.Contains(e.Message, fragment);
        return e;
    }

    [TestMethod]
    public void MissingFeatureColumnIsNamed()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(TestData.Topic(20, 1));
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options { FeatureColumnName = "Tokens" }));
        Throws<ArgumentOutOfRangeException>(() => pipeline.Fit(data), "'Tokens'");
    }

    [TestMethod]
    public void MissingLabelColumnIsNamed()
    {
        var ml = new MLContext(1);
        var data = TestData.TokenKeys(ml).Fit(ml.Data.LoadFromEnumerable(TestData.Topic(20, 1))).Transform(ml.Data.LoadFromEnumerable(TestData.Topic(20, 1)));
        var trainer = ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options { LabelColumnName = "Topic" });
        Throws<ArgumentOutOfRangeException>(() => trainer.Fit(data), "'Topic'");
    }

    [TestMethod]
    public void LabelThatIsNotAKeyIsRejected()
    {
        var ml = new MLContext(1);
        var rows = ml.Data.LoadFromEnumerable(TestData.Topic(20, 1));
        var data = TestData.TokenKeys(ml).Fit(rows).Transform(rows); // Label is still text
        Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.Recurrent(Small).Fit(data), "'Label'", "key");
    }

    [TestMethod]
    public void TextFeaturesAreRejected()
    {
        var ml = new MLContext(1);
        var rows = ml.Data.LoadFromEnumerable(TestData.Topic(20, 1));
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options { FeatureColumnName = "Text" }));
        Throws<ArgumentOutOfRangeException>(() => pipeline.Fit(rows), "'Text'", "vector of keys");
    }

    /// <summary>Runs <paramref name="action"/> and returns the warnings it logged through MLContext.Log.</summary>
    internal static List<string> Warnings(MLContext ml, Action action)
    {
        var warnings = new List<string>();
        void OnLog(object? sender, LoggingEventArgs e)
        {
            if (e.Kind == Runtime.ChannelMessageKind.Warning)
                lock (warnings) warnings.Add(e.Message);
        }
        ml.Log += OnLog;
        try { action(); }
        finally { ml.Log -= OnLog; }
        return warnings;
    }

    private void AssertWarned(List<string> warnings, params string[] fragments)
    {
        TestContext.WriteLine(string.Join("\n", warnings));
        Assert.IsTrue(warnings.Any(w => fragments.All(w.Contains)), $"no warning contains all of: {string.Join(" | ", fragments)}");
    }

    [TestMethod]
    public void EmptyRowsInTrainingAreSkippedAndLogged()
    {
        var ml = new MLContext(1);
        var list = TestData.Topic(400, 1);
        // 1 % of the rows become empty token vectors: empty, whitespace-only, punctuation-only after NormalizeText.
        list[7].Text = "";
        list[100].Text = "   ";
        list[250].Text = "!!! ?";
        list[399].Text = "";
        var rows = ml.Data.LoadFromEnumerable(list);
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.Text.NormalizeText("Normalized", "Text", keepPunctuations: false))
            .Append(TestData.TokenKeys(ml, "Normalized"))
            .Append(ml.MulticlassClassification.Trainers.Recurrent(Small));
        ITransformer? model = null;
        var warnings = Warnings(ml, () => model = pipeline.Fit(rows));
        AssertWarned(warnings, "Skipped 4 training rows", "empty", "'Features'", "row 7");
        var metrics = ml.MulticlassClassification.Evaluate(model!.Transform(rows));
        Assert.AreEqual(400, metrics.ConfusionMatrix.Counts.Sum(r => r.Sum()), "every row, the empty ones included, is scored");
    }

    public sealed class KeyRow
    {
        public bool Label { get; set; }
        [KeyType(5)] [VectorType] public uint[] Features { get; set; } = [];
    }

    [TestMethod]
    public void KeyBeyondTheVocabularyIsSkippedInTrainingAndNaNWhenScoring()
    {
        var ml = new MLContext(1);
        var rows = ml.Data.LoadFromEnumerable(new[]
        {
            new KeyRow { Label = true, Features = [1, 2, 3] },
            new KeyRow { Label = false, Features = [4, 9, 1] },
            new KeyRow { Label = false, Features = [4, 5, 1] },
        });
        var trainer = ml.BinaryClassification.Trainers.Recurrent(new RecurrentBinaryTrainer.Options { HiddenSize = 4, EmbeddingSize = 4, NumberOfEpochs = 1 });
        RecurrentBinaryTransformer? model = null;
        var warnings = Warnings(ml, () => model = trainer.Fit(rows));
        AssertWarned(warnings, "Skipped 1 training rows", "row 1", "key 9", "position 1", "'Features'");
        var scored = ml.Data.CreateEnumerable<BinaryScore>(model!.Transform(rows), reuseRowObject: false).ToList();
        Assert.IsTrue(float.IsNaN(scored[1].Score) && float.IsNaN(scored[1].Probability) && !scored[1].PredictedLabel, "the unreadable row gets NaN scores");
        Assert.IsTrue(float.IsFinite(scored[0].Score) && float.IsFinite(scored[2].Score));
    }

    public sealed class BinaryScore
    {
        public float Score { get; set; }
        public float Probability { get; set; }
        public bool PredictedLabel { get; set; }
    }

    [TestMethod]
    public void NaNInDenseInputIsSkippedInTrainingNamingTheRowAndStep()
    {
        var ml = new MLContext(1);
        var series = TestData.Series(10, 1);
        series[3].Features[4] = float.NaN;
        var trainer = ml.Regression.Trainers.Recurrent(new RecurrentRegressionTrainer.Options { FeaturesPerStep = 2, HiddenSize = 4, NumberOfEpochs = 1 });
        var warnings = Warnings(ml, () => trainer.Fit(ml.Data.LoadFromEnumerable(series)));
        AssertWarned(warnings, "Skipped 1 training rows", "row 3", "NaN", "step 2");
    }

    [TestMethod]
    public void DenseLengthNotAMultipleOfFeaturesPerStepIsSkippedInTraining()
    {
        var ml = new MLContext(1);
        var series = TestData.Series(10, 1);
        series[2].Features = [1f, 2f, 3f];
        var trainer = ml.Regression.Trainers.Recurrent(new RecurrentRegressionTrainer.Options { FeaturesPerStep = 2, HiddenSize = 4, NumberOfEpochs = 1 });
        var warnings = Warnings(ml, () => trainer.Fit(ml.Data.LoadFromEnumerable(series)));
        AssertWarned(warnings, "Skipped 1 training rows", "row 2", "multiple of FeaturesPerStep");
    }

    [TestMethod]
    public void FitFailsOnlyWhenNoUsableRowIsLeftAndSaysWhy()
    {
        var ml = new MLContext(1);
        var featurizer = ml.Transforms.Conversion.MapValueToKey("Label").Append(TestData.TokenKeys(ml)).Fit(ml.Data.LoadFromEnumerable(TestData.Topic(20, 1)));
        var list = TestData.Topic(6, 1);
        foreach (var row in list) row.Text = " ";
        var data = featurizer.Transform(ml.Data.LoadFromEnumerable(list));
        Throws<InvalidOperationException>(() => ml.MulticlassClassification.Trainers.Recurrent(Small).Fit(data), "no usable rows", "6 an empty sequence", "'Features'");
    }

    [TestMethod]
    public void InvalidOptionsAreRejectedWhenTheTrainerIsCreated()
    {
        var ml = new MLContext(1);
        Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options { HiddenSize = 0 }), "HiddenSize");
        Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options { Dropout = 1f }), "Dropout");
    }

    [TestMethod]
    public void ScoringAColumnWithADifferentVocabularyIsRejected()
    {
        var ml = new MLContext(1);
        var rows = ml.Data.LoadFromEnumerable(TestData.Topic(60, 1));
        var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(TestData.TokenKeys(ml)).Append(ml.MulticlassClassification.Trainers.Recurrent(Small)).Fit(rows);
        var trained = model.LastTransformer;
        var other = TestData.TokenKeys(ml).Fit(ml.Data.LoadFromEnumerable(TestData.Topic(5, 9))).Transform(rows);
        Throws<ArgumentOutOfRangeException>(() => trained.Transform(other), "'Features'", "vocabulary");
    }

    private static (MLContext Ml, string Path, IDataView Data) SavedModel()
    {
        var ml = new MLContext(1);
        var rows = ml.Data.LoadFromEnumerable(TestData.Topic(60, 1));
        var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(TestData.TokenKeys(ml)).Append(ml.MulticlassClassification.Trainers.Recurrent(Small)).Fit(rows);
        string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"rnn-bad-{Guid.NewGuid():N}.zip");
        ml.Model.Save(model, rows.Schema, path);
        return (ml, path, rows);
    }

    /// <summary>Rewrites the zip entry holding the recurrent model through <paramref name="edit"/>, keeping the zip itself valid.</summary>
    private static void EditRecurrentEntry(string path, Func<byte[], byte[]> edit)
    {
        using var zip = ZipFile.Open(path, ZipArchiveMode.Update);
        foreach (var entry in zip.Entries.ToList())
        {
            byte[] bytes;
            using (var stream = entry.Open())
            using (var memory = new MemoryStream())
            {
                stream.CopyTo(memory);
                bytes = memory.ToArray();
            }
            if (IndexOf(bytes, "RNNMCLAS"u8) < 0) continue;
            string name = entry.FullName;
            entry.Delete();
            using var replacement = zip.CreateEntry(name).Open();
            replacement.Write(edit(bytes));
            return;
        }
        Assert.Fail("no recurrent model entry in the zip");
    }

    internal static int IndexOf(byte[] haystack, ReadOnlySpan<byte> needle) => haystack.AsSpan().IndexOf(needle);

    [TestMethod]
    public void TruncatedZipFailsCleanly()
    {
        var (ml, path, _) = SavedModel();
        try
        {
            var bytes = File.ReadAllBytes(path);
            File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
            // ML.NET reports a broken zip as FormatException("Failed to open a zip archive") around the zip reader's error.
            var e = Assert.ThrowsExactly<FormatException>(() => ml.Model.Load(path, out _));
            TestContext.WriteLine(Describe(e));
            StringAssert.Contains(e.Message, "zip");
        }
        finally { File.Delete(path); }
    }

    [TestMethod]
    public void CorruptedWeightsFailWithAChecksumError()
    {
        var (ml, path, _) = SavedModel();
        try
        {
            EditRecurrentEntry(path, bytes =>
            {
                // The network's data starts at its magic number; 1000 bytes on lies inside the parameter values.
                int at = IndexOf(bytes, "MLRNNET\0"u8);
                Assert.IsTrue(at > 0, "network magic not found");
                bytes[at + 1000] ^= 0x5A;
                return bytes;
            });
            var e = Assert.Throws<Exception>(() => ml.Model.Load(path, out _));
            string all = Describe(e);
            TestContext.WriteLine(all);
            StringAssert.Contains(all, "SHA-256");
        }
        finally { File.Delete(path); }
    }

    [TestMethod]
    public void TruncatedModelEntryFailsCleanly()
    {
        var (ml, path, _) = SavedModel();
        try
        {
            // ML.NET validates the entry's header (offsets against the entry length) before our loader runs,
            // so this surfaces as ML.NET's FormatException, wrapped by its component catalog.
            EditRecurrentEntry(path, bytes => bytes[..(bytes.Length - 200)]);
            var e = Assert.Throws<Exception>(() => ml.Model.Load(path, out _));
            string all = Describe(e);
            TestContext.WriteLine(all);
            StringAssert.Contains(all, "FormatException");
        }
        finally { File.Delete(path); }
    }

    [TestMethod]
    public void ModelFromAFutureVersionIsRefused()
    {
        var (ml, path, _) = SavedModel();
        try
        {
            EditRecurrentEntry(path, bytes =>
            {
                // ML.NET's model header: the 8-byte model signature is followed by verWritten and verReadable (u32 each).
                int at = IndexOf(bytes, "RNNMCLAS"u8);
                BitConverter.TryWriteBytes(bytes.AsSpan(at + 8), 0x00020001u);
                BitConverter.TryWriteBytes(bytes.AsSpan(at + 12), 0x00020001u);
                return bytes;
            });
            var e = Assert.Throws<Exception>(() => ml.Model.Load(path, out _));
            string all = Describe(e);
            TestContext.WriteLine(all);
            StringAssert.Contains(all, "version");
        }
        finally { File.Delete(path); }
    }

    private static string Describe(Exception e)
    {
        var text = new StringBuilder();
        for (var x = e; x is not null; x = x.InnerException)
            text.Append(x.GetType().Name).Append(": ").Append(x.Message).Append(" | ");
        return text.ToString();
    }
}
