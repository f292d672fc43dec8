using System.Diagnostics;
using System.IO.Compression;
using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Recurrent.Tests.Scorer;

namespace Microsoft.ML.Recurrent.Tests.MLNet;

/// <summary>
/// Save → load in a fresh <c>dotnet</c> process that references only Microsoft.ML.Recurrent → every output value
/// compared bit for bit with the scores of the training process.
/// </summary>
[TestClass]
public sealed class RoundTripTests
{
    public TestContext TestContext { get; set; } = null!;

    public sealed class AgNewsRow
    {
        [LoadColumn(0)] public string Label { get; set; } = "";
        [LoadColumn(1)] public string Title { get; set; } = "";
        [LoadColumn(2)] public string Text { get; set; } = "";
    }

    private static string ScorerPath =>
        typeof(RoundTripTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "ScorerPath").Value!;

    /// <summary>Runs the Scorer process on a model zip and a binary IDataView.</summary>
    private static (int ExitCode, string Output, string Error) RunScorer(string zip, string data, string output)
    {
        Assert.IsTrue(File.Exists(ScorerPath), $"Scorer not built at {ScorerPath}");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { ScorerPath, zip, data, output }) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.IsTrue(process.WaitForExit(TimeSpan.FromMinutes(2)), "the scoring process did not finish in 2 minutes");
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>
    /// Saves model and data, scores both here and in a second process, asserts identical output.
    /// <paramref name="inspect"/>, if given, sees the saved zip first.
    /// </summary>
    private void AssertSameScoresInAnotherProcess(MLContext ml, ITransformer model, DataViewSchema inputSchema, IDataView test, Action<string>? inspect = null)
    {
        string dir = Path.Combine(Path.GetTempPath(), "rnn-roundtrip-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string zip = Path.Combine(dir, "model.zip"), data = Path.Combine(dir, "data.idv"), output = Path.Combine(dir, "scores.txt");
            ml.Model.Save(model, inputSchema, zip);
            inspect?.Invoke(zip);
            using (var stream = File.Create(data))
                ml.Data.SaveAsBinary(test, stream, keepHidden: false);
            string expected = ScoreDump.Dump(model.Transform(test)) + ScoreDump.DumpGeneration(model);
            Assert.IsTrue(expected.Length > 0);

            var (exitCode, stdout, stderr) = RunScorer(zip, data, output);
            TestContext.WriteLine(stdout);
            Assert.AreEqual(0, exitCode, "scorer failed: " + stderr);
            string actual = File.ReadAllText(output);
            Assert.AreEqual(expected, actual, "scores differ between the training process and the loading process");
            TestContext.WriteLine($"{expected.Split('\n').Length - 1} rows identical; first: {expected.Split('\n')[0]}");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [TestMethod]
    public void AgNewsMulticlassPipelineRoundTrips()
    {
        var ml = new MLContext(seed: 1);
        var all = ml.Data.LoadFromTextFile<AgNewsRow>(Datasets.Require("ag_news/train_subset_10k.csv"), separatorChar: ',', allowQuoting: true);
        var train = ml.Data.TakeRows(all, 800);
        var test = ml.Data.TakeRows(ml.Data.LoadFromTextFile<AgNewsRow>(Datasets.Require("ag_news/test.csv"), separatorChar: ',', allowQuoting: true), 300);
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.Text.NormalizeText("Normalized", "Text"))
            .Append(ml.Transforms.Text.TokenizeIntoWords("Tokens", "Normalized"))
            .Append(ml.Transforms.Conversion.MapValueToKey("Features", "Tokens"))
            .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
            {
                EmbeddingSize = 32, HiddenSize = 32, NumberOfEpochs = 5, BatchSize = 32, LearningRate = 1e-2f, MaximumSequenceLength = 64,
                Pooling = PoolingKind.Mean | PoolingKind.Max,
            }))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        var model = pipeline.Fit(train);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
        TestContext.WriteLine($"AG News, 800 training rows, 5 epochs: accuracy {metrics.MicroAccuracy:P1}, log-loss {metrics.LogLoss:F3}");
        Assert.IsTrue(metrics.MicroAccuracy > 0.4, $"accuracy {metrics.MicroAccuracy} is not above chance (0.25)");
        AssertSameScoresInAnotherProcess(ml, model, train.Schema, test);
    }

    /// <summary>
    /// A classifier fine-tuned from language models pretrained inside Fit (forward and backward, attention pooling,
    /// discriminative rates, gradual unfreezing) scores the same in a new process; the zip needs no language model.
    /// </summary>
    [TestMethod]
    public void FineTunedClassifierRoundTrips()
    {
        var ml = new MLContext(seed: 4);
        var train = ml.Data.LoadFromEnumerable(TestData.Topic(400, 1));
        var test = ml.Data.LoadFromEnumerable(TestData.Topic(100, 2));
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(TestData.TokenKeys(ml))
            .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
            {
                EmbeddingSize = 12, HiddenSize = 16, NumberOfEpochs = 4, BatchSize = 16, LearningRate = 1e-2f,
                LanguageModelEpochs = 2, LanguageModelVocabularySize = 20, DiscriminativeLearningRateFactor = 0.4f, GradualUnfreezing = true,
                Pooling = PoolingKind.Mean | PoolingKind.Attention,
            }))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
            .Fit(train);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
        TestContext.WriteLine($"topics, fine-tuned from language models: accuracy {metrics.MicroAccuracy:P1}");
        Assert.IsTrue(metrics.MicroAccuracy > 0.8, $"accuracy {metrics.MicroAccuracy}");
        AssertSameScoresInAnotherProcess(ml, model, train.Schema, test);
    }

    [TestMethod]
    public void BinaryPipelineRoundTrips()
    {
        var ml = new MLContext(seed: 2);
        var train = ml.Data.LoadFromEnumerable(TestData.Sentiment(400, 1));
        var test = ml.Data.LoadFromEnumerable(TestData.Sentiment(100, 2));
        var model = TestData.TokenKeys(ml)
            .Append(ml.BinaryClassification.Trainers.Recurrent(new RecurrentBinaryTrainer.Options
            {
                EmbeddingSize = 8, HiddenSize = 12, NumberOfEpochs = 8, BatchSize = 16, LearningRate = 1e-2f, Cell = RecurrentCellKind.Gru,
            }))
            .Fit(train);
        var metrics = ml.BinaryClassification.Evaluate(model.Transform(test));
        TestContext.WriteLine($"negation task: accuracy {metrics.Accuracy:P1}, AUC {metrics.AreaUnderRocCurve:F3}");
        Assert.IsTrue(metrics.Accuracy > 0.9, $"accuracy {metrics.Accuracy}");
        AssertSameScoresInAnotherProcess(ml, model, train.Schema, test);
    }

    [TestMethod]
    public void RegressionOnDenseTimeSeriesRoundTrips()
    {
        var ml = new MLContext(seed: 3);
        var train = ml.Data.LoadFromEnumerable(TestData.Series(500, 1));
        var test = ml.Data.LoadFromEnumerable(TestData.Series(100, 2));
        var model = ml.Regression.Trainers.Recurrent(new RecurrentRegressionTrainer.Options
        {
            FeaturesPerStep = 2, HiddenSize = 16, NumberOfEpochs = 15, BatchSize = 16, LearningRate = 1e-2f, Bidirectional = false,
        }).Fit(train);
        var metrics = ml.Regression.Evaluate(model.Transform(test));
        TestContext.WriteLine($"sine continuation: RMSE {metrics.RootMeanSquaredError:F3}, R² {metrics.RSquared:F3}");
        Assert.IsTrue(metrics.RSquared > 0.8, $"R² {metrics.RSquared}");
        AssertSameScoresInAnotherProcess(ml, model, train.Schema, test);
    }

    [TestMethod]
    public void TokenizeToIdsPipelineRoundTrips()
    {
        var ml = new MLContext(seed: 4);
        var rows = TestData.Topic(400, 5);
        string vocabulary = Path.Combine(Path.GetTempPath(), $"vocab-{Guid.NewGuid():N}.txt");
        try
        {
            var words = rows.SelectMany(r => r.Text.Split(' ')).Distinct().Order().Take(20);
            File.WriteAllLines(vocabulary, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", .. words, "##s", "##ing"]);
            var train = ml.Data.LoadFromEnumerable(rows);
            var test = ml.Data.LoadFromEnumerable(TestData.Topic(100, 6));
            var model = ml.Transforms.Conversion.MapValueToKey("Label")
                .Append(ml.Transforms.Text.TokenizeToIds("Features", "Text", TokenizerData.Bert(vocabulary)))
                .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
                {
                    EmbeddingSize = 16, HiddenSize = 16, NumberOfEpochs = 4, BatchSize = 16, LearningRate = 1e-2f,
                }))
                .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
                .Fit(train);
            File.Delete(vocabulary); // the zip must carry the vocabulary itself
            var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
            Assert.IsTrue(metrics.MicroAccuracy > 0.6, $"accuracy {metrics.MicroAccuracy}");
            AssertSameScoresInAnotherProcess(ml, model, train.Schema, test);
        }
        finally
        {
            File.Delete(vocabulary);
        }
    }

    /// <summary>The Scorer references no Microsoft.ML.Tokenizers.Data package; fails the test if it does.</summary>
    private static void AssertScorerHasNoTokenizerDataPackage()
    {
        string directory = Path.GetDirectoryName(ScorerPath)!;
        Assert.IsFalse(Directory.EnumerateFiles(directory, "Microsoft.ML.Tokenizers.Data.*").Any(), $"a tokenizer data package is in {directory}");
        StringAssert.DoesNotMatch(File.ReadAllText(Path.Combine(directory, "Scorer.deps.json")), new System.Text.RegularExpressions.Regex("Tokenizers\\.Data"));
    }

    [TestMethod]
    public void TiktokenPipelineRoundTripsWithoutTheDataPackage()
    {
        AssertScorerHasNoTokenizerDataPackage();
        var ml = new MLContext(seed: 5);
        var train = ml.Data.LoadFromEnumerable(TestData.Topic(300, 7));
        var test = ml.Data.LoadFromEnumerable(TestData.Topic(100, 8));
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.Text.TokenizeToIds("Features", "Text", TokenizerData.Tiktoken("cl100k_base")))
            .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
            {
                EmbeddingSize = 8, HiddenSize = 8, NumberOfEpochs = 2, BatchSize = 16, LearningRate = 1e-2f,
            }))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
            .Fit(train);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
        TestContext.WriteLine($"cl100k_base, 300 rows, 2 epochs: accuracy {metrics.MicroAccuracy:P1}");
        Assert.IsTrue(metrics.MicroAccuracy > 0.4, $"accuracy {metrics.MicroAccuracy} is not above chance (0.33)");
        AssertSameScoresInAnotherProcess(ml, model, train.Schema, test, zip =>
        {
            using (var archive = ZipFile.OpenRead(zip))
            {
                foreach (var entry in archive.Entries)
                {
                    using var stream = entry.Open();
                    var head = new byte[128];
                    stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
                    if (head.AsSpan().IndexOf("TOK2IDS"u8) >= 0)
                        TestContext.WriteLine($"{entry.FullName}: {entry.Length:N0} bytes, {entry.CompressedLength:N0} compressed; zip {new FileInfo(zip).Length:N0} bytes");
                }
            }
            var watch = Stopwatch.StartNew();
            new MLContext(seed: 0).Model.Load(zip, out _);
            TestContext.WriteLine($"Model.Load in this process: {watch.ElapsedMilliseconds} ms");
        });
    }

    [TestMethod]
    public void Version1TiktokenModelWithoutTheDataPackageNamesIt()
    {
        AssertScorerHasNoTokenizerDataPackage();
        string fixtures = Path.Combine(AppContext.BaseDirectory, "Fixtures", "tokenizer");
        string output = Path.Combine(Path.GetTempPath(), $"rnn-scores-{Guid.NewGuid():N}.txt");
        try
        {
            var (exitCode, _, error) = RunScorer(Path.Combine(fixtures, "v1-tiktoken-cl100k.zip"), Path.Combine(fixtures, "v1-tiktoken-cl100k.input.idv"), output);
            TestContext.WriteLine(error.Split('\n').FirstOrDefault(l => l.Contains("InvalidDataException")) ?? error);
            Assert.AreNotEqual(0, exitCode);
            StringAssert.Contains(error, "InvalidDataException");
            StringAssert.Contains(error, "Microsoft.ML.Tokenizers.Data.Cl100kBase");
        }
        finally
        {
            File.Delete(output);
        }
    }

    [TestMethod]
    public void TaggerWithCrfAndCharactersRoundTrips()
    {
        var ml = new MLContext(seed: 5);
        var train = ml.Data.LoadFromEnumerable(Tagging.CrfTaggerTests.Entities(300, 1));
        var test = ml.Data.LoadFromEnumerable(Tagging.CrfTaggerTests.Entities(60, 2));
        var model = Tagging.TaggingData.Featurizer(ml)
            .Append(ml.MulticlassClassification.Trainers.RecurrentTagger(new RecurrentTaggerTrainer.Options
            {
                EmbeddingSize = 8, HiddenSize = 8, NumberOfEpochs = 3, BatchSize = 16, LearningRate = 1e-2f,
                UseCrf = true, TagScheme = TagScheme.Bio, OutputProbabilities = true,
                CharacterColumnName = "Tokens", CharacterEmbeddingSize = 4, CharacterHiddenSize = 4,
            }))
            .Fit(train);
        AssertSameScoresInAnotherProcess(ml, model, train.Schema, test);
    }

    [TestMethod]
    public void CharacterLanguageModelRoundTrips()
    {
        var ml = new MLContext(seed: 5);
        var train = ml.Data.LoadFromEnumerable(LanguageModeling.LanguageModelText.Sentences(200, 1));
        var test = ml.Data.LoadFromEnumerable(LanguageModeling.LanguageModelText.Sentences(20, 2));
        var model = ml.Transforms.Text.RecurrentLanguageModel(new RecurrentLanguageModelEstimator.Options
        {
            EmbeddingSize = 8, HiddenSize = 16, NumberOfLayers = 2, SequenceLength = 16, BatchSize = 8, NumberOfEpochs = 1, NumberOfThreads = 1,
        }).Fit(train);
        AssertSameScoresInAnotherProcess(ml, model, train.Schema, test);
    }

    [TestMethod]
    public void WordLanguageModelPipelineRoundTrips()
    {
        var ml = new MLContext(seed: 5);
        var train = ml.Data.LoadFromEnumerable(LanguageModeling.LanguageModelText.Sentences(200, 3));
        var test = ml.Data.LoadFromEnumerable(LanguageModeling.LanguageModelText.Sentences(20, 4));
        var model = ml.Transforms.Text.TokenizeIntoWords("Words", "Text")
            .Append(ml.Transforms.Conversion.MapValueToKey("Tokens", "Words"))
            .Append(ml.Transforms.Text.RecurrentLanguageModel(new RecurrentLanguageModelEstimator.Options
            {
                InputColumnName = "Tokens", EmbeddingSize = 12, HiddenSize = 12, TieWeights = true, Cell = RecurrentCellKind.Gru,
                SequenceLength = 8, BatchSize = 4, NumberOfEpochs = 1, NumberOfThreads = 1,
            }))
            .Fit(train);
        AssertSameScoresInAnotherProcess(ml, model, train.Schema, test, zip => Assert.IsTrue(new FileInfo(zip).Length > 0));
    }

    [TestMethod]
    public void ForecasterWithCovariatesIntervalAndEngineStateRoundTrips()
    {
        // Transform's forecasts, bounds and the checkpointed engine's next forecast, bit for bit in a new process.
        var ml = new MLContext(seed: 6);
        var steps = Forecasting.ForecastingEstimatorTests.Series(260);
        var model = ml.Forecasting.Recurrent(Forecasting.ForecastingEstimatorTests.SmallOptions(covariates: true, interval: 0.8f))
            .Fit(ml.Data.LoadFromEnumerable(steps[..200]));
        var engine = model.CreateForecastEngine(ml.Data.LoadFromEnumerable(steps[..240]));
        using var checkpoint = new MemoryStream();
        engine.Checkpoint(ml, checkpoint);
        checkpoint.Position = 0;
        var withState = ml.Model.Load(checkpoint, out var schema);
        AssertSameScoresInAnotherProcess(ml, withState, schema, ml.Data.LoadFromEnumerable(steps));
    }
}
