using Microsoft.ML.Data;

namespace Microsoft.ML.Recurrent.Tests.LanguageModeling;

/// <summary>The language model through ML.NET: training, scoring columns, generation, persistence, bad input.</summary>
[TestClass]
public sealed class LanguageModelTests
{
    public TestContext TestContext { get; set; } = null!;

    private static RecurrentLanguageModelEstimator.Options Small(int epochs = 4) => new()
    {
        EmbeddingSize = 16, HiddenSize = 48, NumberOfLayers = 1, SequenceLength = 32, BatchSize = 8, NumberOfEpochs = epochs,
        LearningRate = 1e-2f, Dropout = 0, OutputDropout = 0, Seed = 1, NumberOfThreads = 1,
    };

    /// <summary>A periodic text is learned: after training, greedy generation continues the period exactly.</summary>
    [TestMethod]
    public void ACharacterModelLearnsAPeriodicText()
    {
        var ml = new MLContext(seed: 1);
        var text = string.Concat(Enumerable.Repeat("abcdefg ", 400));
        var data = ml.Data.LoadFromEnumerable(new[] { new LanguageModelText.Row { Text = text } });
        var model = ml.Transforms.Text.RecurrentLanguageModel(Small(epochs: 6)).Fit(data);
        Assert.IsTrue(model.IsCharacterModel);
        Assert.AreEqual(2 + 8, model.VocabularySize); // unknown, end of row, "abcdefg "
        string generated = model.Generate("abc", new GenerationOptions { Temperature = 0, MaximumLength = 16 });
        Assert.AreEqual("defg abcdefg abc", generated);
    }

    [TestMethod]
    public void TrainingLowersTheValidationLossAndReportsPerplexity()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(LanguageModelText.Sentences(600, 1));
        var validation = ml.Data.LoadFromEnumerable(LanguageModelText.Sentences(80, 2));
        var reports = new List<RecurrentEpochInfo>();
        var messages = new List<string>();
        ml.Log += (_, e) => { if (e.Source.Contains("LanguageModel")) lock (messages) messages.Add(e.Message); };
        var options = Small(epochs: 4);
        options.EpochCallback = reports.Add;
        var model = ml.Transforms.Text.RecurrentLanguageModel(options).Fit(train, validation);
        Assert.AreEqual(4, reports.Count);
        TestContext.WriteLine(string.Join("\n", reports.Select(r => $"{r.Epoch}: train {r.Loss:F3}, validation {r.ValidationLoss:F3} (ppl {r.ValidationPerplexity:F2})")));
        Assert.IsTrue(reports[^1].ValidationLoss < reports[0].ValidationLoss, "validation loss did not fall");
        // Uniform over ~30 characters is ln 30 ≈ 3.4 nats; this grammar is nearly deterministic within words.
        Assert.IsTrue(reports[^1].ValidationLoss < 1.2, $"validation loss {reports[^1].ValidationLoss}");
        Assert.AreEqual(Math.Exp(reports[^1].ValidationLoss), reports[^1].ValidationPerplexity, 1e-9);
        Assert.IsTrue(messages.Any(m => m.Contains("validation loss") && m.Contains("perplexity")), "epoch summaries reach MLContext.Log");
        Assert.IsTrue(messages.Any(m => m.Contains("% (step")), "progress within an epoch reaches MLContext.Log");

        // Scoring columns: a sentence of the grammar is far likelier than the same characters shuffled.
        var rows = new[]
        {
            new LanguageModelText.Row { Text = "the cat sees the mat." },
            new LanguageModelText.Row { Text = "eht tac sees eht tam." },
            new LanguageModelText.Row { Text = "" },
            new LanguageModelText.Row { Text = "the cat sees the mat. ☃" }, // a character never seen in training
        };
        var scored = model.Transform(ml.Data.LoadFromEnumerable(rows));
        var ll = scored.GetColumn<float>("LogLikelihood").ToArray();
        var ppl = scored.GetColumn<float>("Perplexity").ToArray();
        Assert.IsTrue(ll[0] > ll[1] + 5, $"grammatical {ll[0]} vs shuffled {ll[1]}");
        Assert.IsTrue(ll.All(float.IsFinite) && ll.All(x => x < 0));
        // Perplexity = exp(−LL / (characters + 1)).
        Assert.AreEqual(Math.Exp(-ll[0] / (rows[0].Text.Length + 1)), ppl[0], 1e-3 * ppl[0]);
        Assert.AreEqual(Math.Exp(-ll[2]), ppl[2], 1e-3 * ppl[2]);
        Assert.IsTrue(ll[3] < ll[0], "an unknown character costs likelihood");
        Assert.AreEqual(model.LogLikelihood(rows[0].Text), ll[0], 1e-3);
    }

    [TestMethod]
    public void GenerationIsReproducibleForASeedAndStreams()
    {
        var ml = new MLContext(seed: 1);
        var model = ml.Transforms.Text.RecurrentLanguageModel(Small(epochs: 2)).Fit(ml.Data.LoadFromEnumerable(LanguageModelText.Sentences(300, 3)));
        var options = new GenerationOptions { Seed = 11, MaximumLength = 80, Temperature = 0.8f, TopK = 10, TopP = 0.95f };
        string a = model.Generate("the ", options), b = model.Generate("the ", options);
        Assert.AreEqual(a, b);
        Assert.AreEqual(80, a.Length);
        Assert.AreNotEqual(a, model.Generate("the ", new GenerationOptions { Seed = 12, MaximumLength = 80, Temperature = 0.8f, TopK = 10, TopP = 0.95f }));
        // The stream yields the same text piece by piece, lazily.
        var pieces = model.GenerateStream("the ", options).ToList();
        Assert.AreEqual(80, pieces.Count);
        Assert.AreEqual(a, string.Concat(pieces));
        Assert.AreEqual(a[..10], string.Concat(model.GenerateStream("the ", options).Take(10)));
        // Stopping at the end of a row: never longer than the first end of row.
        string sentence = model.Generate("", new GenerationOptions { Seed = 5, MaximumLength = 500, StopAtEndOfRow = true, Temperature = 0.5f });
        Assert.IsFalse(sentence.Contains('\n'));
        Assert.IsTrue(sentence.Length < 500, "the model should end a sentence-row well before 500 characters");
        // Top-k = 1 is greedy.
        Assert.AreEqual(model.Generate("a ", new GenerationOptions { Temperature = 0, MaximumLength = 30 }),
            model.Generate("a ", new GenerationOptions { Seed = 99, TopK = 1, MaximumLength = 30 }));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => model.Generate("", new GenerationOptions { TopP = 0 }));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => model.Generate("", new GenerationOptions { Temperature = -1 }));
    }

    [TestMethod]
    public void ATokenModelReadsKeysAndGeneratesWords()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(LanguageModelText.Sentences(500, 4));
        var pipeline = ml.Transforms.Text.TokenizeIntoWords("Words", "Text")
            .Append(ml.Transforms.Conversion.MapValueToKey("Tokens", "Words"))
            .Append(ml.Transforms.Text.RecurrentLanguageModel(new RecurrentLanguageModelEstimator.Options
            {
                InputColumnName = "Tokens", EmbeddingSize = 24, HiddenSize = 24, TieWeights = true, NumberOfLayers = 1,
                SequenceLength = 8, BatchSize = 8, NumberOfEpochs = 5, LearningRate = 1e-2f, Seed = 2, NumberOfThreads = 1,
            }));
        var model = pipeline.Fit(data);
        var lm = model.LastTransformer;
        Assert.IsFalse(lm.IsCharacterModel);
        string text = lm.Generate("the cat", new GenerationOptions { Seed = 1, MaximumLength = 3, Temperature = 0 });
        var words = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.AreEqual(3, words.Length, text);
        CollectionAssert.Contains(new[] { "sees", "likes", "follows", "calls", "finds" }, words[0], $"after 'the cat' comes a verb: '{text}'");
        var keys = lm.GenerateKeys([1u, 2u], new GenerationOptions { Seed = 1, MaximumLength = 5 }).ToList();
        Assert.IsTrue(keys.Count <= 5 && keys.All(k => k >= 1));
        StringAssert.Contains(Scorer.ScoreDump.DumpGeneration(model), "Generated=", "the round-trip dump finds the language model at the end of a chain");
        var scored = model.Transform(ml.Data.LoadFromEnumerable(LanguageModelText.Sentences(5, 9)));
        Assert.IsTrue(scored.GetColumn<float>("Perplexity").All(p => p > 1 && p < 20));
    }

    [TestMethod]
    public void SavesAndLoadsWithTheSameScoresAndGeneration()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(LanguageModelText.Sentences(300, 5));
        var options = Small(epochs: 2);
        options.NumberOfLayers = 2;
        options.Cell = RecurrentCellKind.Gru;
        var model = ml.Transforms.Text.RecurrentLanguageModel(options).Fit(data);
        string path = Path.Combine(Path.GetTempPath(), $"lm-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(model, data.Schema, path);
            var loaded = (RecurrentLanguageModelTransformer)ml.Model.Load(path, out _);
            var test = ml.Data.LoadFromEnumerable(LanguageModelText.Sentences(20, 6));
            CollectionAssert.AreEqual(model.Transform(test).GetColumn<float>("LogLikelihood").ToArray(),
                loaded.Transform(test).GetColumn<float>("LogLikelihood").ToArray());
            var g = new GenerationOptions { Seed = 3, MaximumLength = 50 };
            Assert.AreEqual(model.Generate("a ", g), loaded.Generate("a ", g));
            // A flipped byte in the entry is caught by its checksum.
            var bytes = File.ReadAllBytes(path);
            string corrupt = path + ".bad.zip";
            using (var zip = new System.IO.Compression.ZipArchive(new MemoryStream(bytes)))
            {
                // Our entry: the one whose ML.NET header carries the language model's signature.
                byte[] Read(System.IO.Compression.ZipArchiveEntry e)
                {
                    using var s = e.Open();
                    var content = new MemoryStream();
                    s.CopyTo(content);
                    return content.ToArray();
                }
                var signature = System.Text.Encoding.ASCII.GetBytes("RNNLANGM");
                var entry = zip.Entries.Single(e => Read(e).AsSpan().IndexOf(signature) >= 0);
                var modified = Read(entry);
                modified[modified.Length - 100] ^= 0x40;
                using var output = new System.IO.Compression.ZipArchive(File.Create(corrupt), System.IO.Compression.ZipArchiveMode.Create);
                foreach (var e in zip.Entries)
                {
                    using var target = output.CreateEntry(e.FullName).Open();
                    target.Write(e == entry ? modified : Read(e));
                }
            }
            // ML.NET wraps a loader's exception; the innermost is ours (docs/design/persistence.md).
            var error = Assert.Throws<Exception>(() => ml.Model.Load(corrupt, out _)).GetBaseException();
            Assert.IsInstanceOfType<InvalidDataException>(error);
            StringAssert.Contains(error.Message, "SHA-256");
            File.Delete(corrupt);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void PredictionEngineScoresRows()
    {
        var ml = new MLContext(seed: 1);
        var model = ml.Transforms.Text.RecurrentLanguageModel(Small(epochs: 1)).Fit(ml.Data.LoadFromEnumerable(LanguageModelText.Sentences(200, 7)));
        var engine = ml.Model.CreatePredictionEngine<LanguageModelText.Row, Scores>(model);
        var s = engine.Predict(new LanguageModelText.Row { Text = "the king calls a song." });
        Assert.IsTrue(s.LogLikelihood < 0 && s.Perplexity > 1);
        Assert.AreEqual(model.LogLikelihood("the king calls a song."), s.LogLikelihood, 1e-3);
        var empty = engine.Predict(new LanguageModelText.Row { Text = null! });
        Assert.IsTrue(float.IsFinite(empty.LogLikelihood), "a missing text scores the end of row alone");
    }

    public sealed class Scores
    {
        public float LogLikelihood { get; set; }
        public float Perplexity { get; set; }
    }

    [TestMethod]
    public void BadInputGetsClearErrors()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(LanguageModelText.Sentences(10, 1));
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.Text.RecurrentLanguageModel("Missing").Fit(data));
        StringAssert.Contains(e.Message, "'Missing'");
        var numbers = ml.Data.LoadFromEnumerable(new[] { new { Text = 1f } });
        e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.Text.RecurrentLanguageModel("Text").Fit(numbers));
        StringAssert.Contains(e.Message, "text");
        Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.Text.RecurrentLanguageModel(new RecurrentLanguageModelEstimator.Options { TieWeights = true, EmbeddingSize = 8, HiddenSize = 16 }));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.Text.RecurrentLanguageModel(new RecurrentLanguageModelEstimator.Options { SequenceLength = 0 }));
        var empty = ml.Data.LoadFromEnumerable(new[] { new LanguageModelText.Row { Text = "" } });
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Transforms.Text.RecurrentLanguageModel(Small()).Fit(empty));
        StringAssert.Contains(error.Message, "nothing to learn");
        // Scoring a schema without the column names it.
        var model = ml.Transforms.Text.RecurrentLanguageModel(Small(epochs: 1)).Fit(data);
        e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => model.Transform(ml.Data.LoadFromEnumerable(new[] { new { Other = "x" } })));
        StringAssert.Contains(e.Message, "'Text'");
    }

    /// <summary>
    /// A token model scored on keys of another, larger vocabulary: the rows with keys beyond the model's get NaN, the
    /// others their scores; the scoring pass never aborts. Empty rows score the end of row alone.
    /// </summary>
    [TestMethod]
    public void KeysBeyondTheVocabularyScoreNaNWithoutAbortingThePass()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(LanguageModelText.Sentences(100, 1));
        var keys = ml.Transforms.Text.TokenizeIntoWords("Words", "Text").Append(ml.Transforms.Conversion.MapValueToKey("Tokens", "Words"));
        var lm = keys.Append(ml.Transforms.Text.RecurrentLanguageModel(new RecurrentLanguageModelEstimator.Options
        {
            InputColumnName = "Tokens", EmbeddingSize = 8, HiddenSize = 8, NumberOfLayers = 1, SequenceLength = 8, BatchSize = 4,
            NumberOfEpochs = 1, NumberOfThreads = 1,
        })).Fit(train).LastTransformer;
        // Keys from a featurizer fitted on more words: "zebra" gets a key beyond the model's key count.
        var wider = ml.Data.LoadFromEnumerable(LanguageModelText.Sentences(100, 1).Append(new LanguageModelText.Row { Text = "zebra zebra" }));
        var rows = new[] { new LanguageModelText.Row { Text = "the cat sees the mat." }, new LanguageModelText.Row { Text = "zebra" }, new LanguageModelText.Row { Text = "" } };
        var scored = lm.Transform(keys.Fit(wider).Transform(ml.Data.LoadFromEnumerable(rows)));
        var ll = scored.GetColumn<float>("LogLikelihood").ToArray();
        Assert.AreEqual(3, ll.Length);
        Assert.IsTrue(float.IsFinite(ll[0]) && ll[0] < 0);
        Assert.IsTrue(float.IsNaN(ll[1]), "a key beyond the model's vocabulary gives NaN");
        Assert.IsTrue(float.IsFinite(ll[2]), "an empty row scores the end of row alone");
    }
}
