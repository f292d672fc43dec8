using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Recurrent.Tests.MLNet;

namespace Microsoft.ML.Recurrent.Tests.Tagging;

[TestClass]
public sealed class PretrainedEmbeddingTests
{
    public TestContext TestContext { get; set; } = null!;

    /// <summary>Writes a word-vector file for some of the synthetic words: GloVe style, or fastText with its header line.</summary>
    private static string WriteVectors(IEnumerable<string> words, int dimension, bool fastTextHeader, out Dictionary<string, float[]> vectors)
    {
        var random = new Random(7);
        vectors = words.Distinct().ToDictionary(w => w, w => Enumerable.Range(0, dimension).Select(_ => (float)Math.Round(random.NextDouble() * 2 - 1, 4)).ToArray());
        string path = Path.Combine(Path.GetTempPath(), $"vectors-{Guid.NewGuid():N}.txt");
        var lines = vectors.Select(kv => kv.Key + " " + string.Join(' ', kv.Value.Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture))));
        File.WriteAllLines(path, fastTextHeader ? lines.Prepend($"{vectors.Count} {dimension}") : lines);
        return path;
    }

    [TestMethod]
    public void TheTaggerStartsFromTheFileAndFrozenRowsStayPut()
    {
        var ml = new MLContext(seed: 1);
        var rows = TaggingData.Sentences(200, 1);
        var words = rows.SelectMany(r => r.Tokens).Where(w => w.Length > 3).ToList(); // some words only
        foreach (bool header in new[] { false, true })
        {
            string path = WriteVectors(words, 12, header, out var vectors);
            try
            {
                var data = TaggingData.Featurizer(ml).Fit(ml.Data.LoadFromEnumerable(rows)).Transform(ml.Data.LoadFromEnumerable(rows));
                var log = new List<string>();
                ml.Log += (_, e) => { if (e.Message.Contains("Pretrained")) lock (log) log.Add(e.Message); };
                var tagger = ml.MulticlassClassification.Trainers.RecurrentTagger(new RecurrentTaggerTrainer.Options
                {
                    HiddenSize = 8, NumberOfEpochs = 2, MinimumTokenFrequency = 1, PretrainedEmbeddingsPath = path, FreezeEmbeddings = true, WeightDecay = 0.01f,
                }).Fit(data);
                TestContext.WriteLine(string.Join("\n", log.Distinct()));
                var network = tagger.Model.Network;
                var embedding = network.Parameters.Value(network.Parameters["embedding.weight"]);
                Assert.AreEqual(12, network.Config.InputSize, "the file's width sets the embedding size");
                VBuffer<ReadOnlyMemory<char>> keyValues = default;
                data.Schema["Features"].GetKeyValues(ref keyValues);
                int checkedRows = 0;
                foreach (var (word, key) in keyValues.DenseValues().Select((w, i) => (w.ToString(), i + 1)))
                    if (vectors.TryGetValue(word, out var vector))
                    {
                        CollectionAssert.AreEqual(vector, embedding.Slice(key * 12, 12).ToArray(), $"row of '{word}' changed or was not initialized");
                        checkedRows++;
                    }
                Assert.IsTrue(checkedRows >= 10, $"only {checkedRows} words matched");
                Assert.IsTrue(log.Any(l => l.Contains($"{checkedRows} of")), "the coverage is logged");
            }
            finally
            {
                File.Delete(path);
            }
        }
    }

    [TestMethod]
    public void TheClassifiersTakeTheSameOptionAndBadFilesNameTheLine()
    {
        var ml = new MLContext(seed: 1);
        var rows = TestData.Topic(100, 1);
        string path = WriteVectors(rows.SelectMany(r => r.Text.Split(' ')), 6, false, out _);
        try
        {
            var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(TestData.TokenKeys(ml))
                .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options { HiddenSize = 4, NumberOfEpochs = 1, PretrainedEmbeddingsPath = path }))
                .Fit(ml.Data.LoadFromEnumerable(rows));
            Assert.AreEqual(6, ((IEnumerable<ITransformer>)model).OfType<RecurrentTransformerBase>().Single().Model.Network.Config.InputSize);
            File.AppendAllLines(path, ["broken 0.1 nope 0.3 0.4 0.5 0.6"]);
            var e = Assert.ThrowsExactly<InvalidDataException>(() => ml.Transforms.Conversion.MapValueToKey("Label").Append(TestData.TokenKeys(ml))
                .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options { HiddenSize = 4, NumberOfEpochs = 1, PretrainedEmbeddingsPath = path }))
                .Fit(ml.Data.LoadFromEnumerable(rows.Append(new TextRow { Label = "Tech", Text = "broken" }))));
            TestContext.WriteLine(e.Message);
            StringAssert.Contains(e.Message, "line");
            StringAssert.Contains(e.Message, "'nope'");
        }
        finally
        {
            File.Delete(path);
        }
    }
}
