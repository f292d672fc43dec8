using Microsoft.ML.Recurrent.Interop;
using Microsoft.ML.Recurrent.Model;
using Microsoft.ML.Recurrent.Tests.LanguageModeling;

namespace Microsoft.ML.Recurrent.Tests.Interop;

/// <summary>
/// A language model's weights as a safetensors file: every parameter under its PyTorch name, bit for bit, nothing else;
/// the metadata names the token of every id (characters, or the ML.NET keys and words) and the direction; a network
/// built from the file holds the same weights.
/// </summary>
[TestClass]
public sealed class SafetensorsLanguageModelTests
{
    private static void CheckFile(RecurrentLanguageModelTransformer model, Action<IReadOnlyDictionary<string, string>> checkMetadata)
    {
        using var stream = new MemoryStream();
        model.SaveAsSafetensors(stream);
        stream.Position = 0;
        var file = SafetensorsReader.Read(stream, "lm.safetensors");
        var network = model.Network;
        var ps = network.Parameters;
        CollectionAssert.AreEquivalent(ps.Parameters.Select(p => p.Name).ToArray(), file.Tensors.Keys.ToArray(), "exactly the network's parameters");
        foreach (var p in ps.Parameters)
        {
            CollectionAssert.AreEqual(p.Shape, file.Tensors[p.Name].Shape, p.Name);
            CollectionAssert.AreEqual(ps.Value(p).ToArray(), file.Tensors[p.Name].Values, p.Name);
        }
        Assert.AreEqual(model.VocabularySize, file.Tensors["embedding.weight"].Shape[0], "a row per token id");
        Assert.AreEqual("language_model", file.Metadata["task"]);
        checkMetadata(file.Metadata);

        var rebuilt = new RecurrentNetwork(network.Config);
        NetworkTensors.Import(rebuilt, file);
        CollectionAssert.AreEqual(ps.Values, rebuilt.Parameters.Values, "a network built from the file holds the same weights");
    }

    [TestMethod]
    public void ATokenModelWithTiedWeightsAndACharacterModelWriteTheirWeightsAndVocabulary()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(LanguageModelText.Sentences(200, 4));
        var keys = ml.Transforms.Text.TokenizeIntoWords("Words", "Text").Append(ml.Transforms.Conversion.MapValueToKey("Tokens", "Words")).Fit(data).Transform(data);
        var tokens = ml.Transforms.Text.RecurrentLanguageModel(new RecurrentLanguageModelEstimator.Options
        {
            InputColumnName = "Tokens", EmbeddingSize = 8, HiddenSize = 8, TieWeights = true, SequenceLength = 8, BatchSize = 8, NumberOfEpochs = 1, Seed = 2, Backward = true,
        }).Fit(keys);
        CheckFile(tokens, metadata =>
        {
            Assert.AreEqual("backward", metadata["direction"]);
            var keysOfIds = System.Text.Json.JsonSerializer.Deserialize<uint[]>(metadata["keys"])!;
            var words = System.Text.Json.JsonSerializer.Deserialize<string[]>(metadata["words"])!;
            Assert.AreEqual(tokens.VocabularySize - 2, keysOfIds.Length);
            for (int i = 0; i < keysOfIds.Length; i++)
            {
                Assert.AreEqual(i + 2, tokens.Vocabulary.OfKey(keysOfIds[i]), "id i + 2 is the listed key");
                Assert.AreEqual(tokens.Vocabulary.TextOf(i + 2, ""), words[i]);
            }
        });
        Assert.IsFalse(tokens.Network.Parameters.Parameters.Any(p => p.Name == "head.weight"), "tied: the output layer is the embedding");

        var characters = ml.Transforms.Text.RecurrentLanguageModel(new RecurrentLanguageModelEstimator.Options
        {
            EmbeddingSize = 6, HiddenSize = 10, NumberOfLayers = 2, Cell = RecurrentCellKind.Gru, SequenceLength = 16, BatchSize = 8, NumberOfEpochs = 1, Seed = 2,
        }).Fit(data);
        CheckFile(characters, metadata =>
        {
            Assert.AreEqual("forward", metadata["direction"]);
            var listed = System.Text.Json.JsonSerializer.Deserialize<string[]>(metadata["characters"])!;
            Assert.AreEqual(characters.VocabularySize - 2, listed.Length);
            for (int i = 0; i < listed.Length; i++)
                Assert.AreEqual(i + 2, characters.Vocabulary.OfCharacter(listed[i][0]), "id i + 2 is the listed character");
        });
    }
}
