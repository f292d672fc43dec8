using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.Recurrent.Tests.Tagging;

/// <summary>Character features let the tagger tag words it never saw, from their spelling.</summary>
[TestClass]
public sealed class CharacterTaggerTests
{
    public TestContext TestContext { get; set; } = null!;

    private static readonly string[] Stems = ["plen", "dor", "vask", "mirt", "sel", "kron", "bav", "trel", "gost", "nur", "fap", "lisk",
        "zor", "quen", "hap", "wim", "tob", "rul", "sket", "dran"];

    /// <summary>"the X-tion X-ize X-ly": the tag of a made-up word is in its suffix, and the position alone is ambiguous.</summary>
    private static List<TaggedSentence> Sentences(int count, int seed, int firstStem, int stems)
    {
        var random = new Random(seed);
        string Word(string suffix) => Stems[firstStem + random.Next(stems)] + suffix;
        var rows = new List<TaggedSentence>();
        for (int i = 0; i < count; i++)
        {
            var pieces = new List<(string Word, string Tag)> { ("the", "DET") };
            for (int k = 0; k < 3; k++)
            {
                pieces.Add(random.Next(3) switch
                {
                    0 => (Word(random.Next(2) == 0 ? "tion" : "ness"), "NOUN"),
                    1 => (Word(random.Next(2) == 0 ? "ize" : "ate"), "VERB"),
                    _ => (Word("ly"), "ADV"),
                });
            }
            rows.Add(new TaggedSentence { Tokens = pieces.Select(p => p.Word).ToArray(), Tags = pieces.Select(p => p.Tag).ToArray() });
        }
        return rows;
    }

    [TestMethod]
    public void CharacterFeaturesTagUnseenWordsFromTheirSpelling()
    {
        var ml = new MLContext(seed: 1);
        var train = Sentences(400, 1, 0, 12);   // stems 0–11
        var test = Sentences(100, 2, 12, 8);    // stems 12–19: every content word unseen
        double Unseen(bool characters)
        {
            var options = new RecurrentTaggerTrainer.Options
            {
                EmbeddingSize = 16, HiddenSize = 16, NumberOfEpochs = 6, BatchSize = 16, LearningRate = 1e-2f,
                EmbeddingDropout = 0.1f, HeadDropout = 0.1f,
                CharacterColumnName = characters ? "Tokens" : null, CharacterEmbeddingSize = 8, CharacterHiddenSize = 8,
            };
            var model = TaggingData.Featurizer(ml).Append(ml.MulticlassClassification.Trainers.RecurrentTagger(options)).Fit(ml.Data.LoadFromEnumerable(train));
            var metrics = ml.MulticlassClassification.EvaluateTagging(model.Transform(ml.Data.LoadFromEnumerable(test)));
            TestContext.WriteLine($"{(characters ? "with" : "without")} characters: accuracy {metrics.TokenAccuracy:P1}, unseen {metrics.UnseenTokens} tokens {metrics.UnseenTokenAccuracy:P1}");
            if (characters)
            {
                using var stream = new MemoryStream();
                ml.Model.Save(model, ml.Data.LoadFromEnumerable(train).Schema, stream);
                stream.Position = 0;
                var loaded = ml.Model.Load(stream, out _);
                var data = ml.Data.LoadFromEnumerable(test);
                Assert.AreEqual(Scorer.ScoreDump.Dump(model.Transform(data)), Scorer.ScoreDump.Dump(loaded.Transform(data)), "the loaded model tags identically");
            }
            return metrics.UnseenTokenAccuracy;
        }
        double without = Unseen(false), with = Unseen(true);
        Assert.IsTrue(with > 0.95, $"with characters: {with:P1} on unseen words");
        Assert.IsTrue(with > without + 0.2, $"characters {with:P1} vs words only {without:P1}");
    }

    [TestMethod]
    public void WordsNotAlignedWithTheTokensAreAnUnreadableRow()
    {
        var ml = new MLContext(seed: 1);
        var options = new RecurrentTaggerTrainer.Options { EmbeddingSize = 4, HiddenSize = 4, NumberOfEpochs = 1, CharacterColumnName = "Words", CharacterEmbeddingSize = 4, CharacterHiddenSize = 4 };
        var rows = Sentences(40, 1, 0, 12).Select(r => new WordsRow { Tokens = r.Tokens, Tags = r.Tags, Words = r.Tokens }).ToList();
        var model = ml.Transforms.Conversion.MapValueToKey("Label", "Tags").Append(ml.Transforms.Conversion.MapValueToKey("Features", "Tokens"))
            .Append(ml.MulticlassClassification.Trainers.RecurrentTagger(options)).Fit(ml.Data.LoadFromEnumerable(rows));
        rows[3].Words = rows[3].Words[..^1];
        var scored = ml.Data.CreateEnumerable<KeysOut>(model.Transform(ml.Data.LoadFromEnumerable(rows)), reuseRowObject: false).ToList();
        Assert.IsTrue(scored[3].PredictedLabel.All(k => k == 0), "missing tags for the unreadable row");
        Assert.IsTrue(scored[4].PredictedLabel.All(k => k > 0));
    }

    public sealed class WordsRow
    {
        [VectorType] public string[] Tokens { get; set; } = [];
        [VectorType] public string[] Tags { get; set; } = [];
        [VectorType] public string[] Words { get; set; } = [];
    }

    public sealed class KeysOut
    {
        [VectorType] public uint[] PredictedLabel { get; set; } = [];
    }
}
