using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Recurrent;

namespace TextClassificationDemo;

/// <summary>
/// --onnx: exports the recurrent part of the trained pipeline to ONNX from the key vector (NormalizeText, which this
/// demo's featurizer uses, has no ONNX form in ML.NET 5.0.1; see docs/onnx.md), and writes beside it what a program
/// without ML.NET needs to use it: the vocabulary (word of key k on line k), the class names, how the text was
/// normalized, and ML.NET's own probabilities for the first test rows with their keys, to check against.
/// </summary>
internal static class OnnxExport
{
    public static void Write(MLContext ml, ITransformer model, IDataView test, string path)
    {
        var steps = ((IEnumerable<ITransformer>)model).ToArray();
        var recurrent = steps.OfType<RecurrentMulticlassTransformer>().Single();
        var featurizer = new TransformerChain<ITransformer>(steps.TakeWhile(s => s != recurrent).ToArray());
        var featurized = featurizer.Transform(ml.Data.TakeRows(test, 200));

        // The graph's input: the key column alone, as a view that is not a transform (docs/onnx.md).
        var keysOnly = ml.Data.Cache(ml.Transforms.SelectColumns(recurrent.FeatureColumnName).Fit(featurized).Transform(featurized));
        using (var file = File.Create(path))
            ml.Model.ConvertToOnnx(recurrent, keysOnly, file);

        VBuffer<ReadOnlyMemory<char>> words = default, classes = default;
        featurized.Schema[recurrent.FeatureColumnName].GetKeyValues(ref words);
        var scored = recurrent.Transform(featurized);
        scored.Schema["Score"].GetSlotNames(ref classes);
        var keys = featurized.GetColumn<VBuffer<uint>>(recurrent.FeatureColumnName).Select(v => v.DenseValues().ToArray()).ToList();
        var probabilities = scored.GetColumn<VBuffer<float>>("Score").Select(v => v.DenseValues().ToArray()).ToList();
        var sidecar = new
        {
            input = recurrent.FeatureColumnName,
            normalization = "NormalizeText(lower case, diacritics removed, punctuation removed, numbers kept) then TokenizeIntoWords (spaces)",
            vocabulary = words.DenseValues().Select(w => w.ToString()).ToArray(),
            classes = classes.DenseValues().Select(c => c.ToString()).ToArray(),
            check = keys.Zip(probabilities, (k, p) => new { keys = k, probabilities = p }).ToArray(),
        };
        File.WriteAllText(path + ".json", JsonSerializer.Serialize(sidecar));
        Console.WriteLine($"Exported the recurrent part to {path} ({new FileInfo(path).Length / 1024.0 / 1024.0:F1} MB; input '{recurrent.FeatureColumnName}' " +
            $"uint32 [1, T]) and its vocabulary, classes and {keys.Count} check rows to {path}.json. Score it with samples/OnnxScoring.");
    }
}
