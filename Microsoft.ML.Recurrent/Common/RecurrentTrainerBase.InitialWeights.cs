using Microsoft.ML.Recurrent.Interop;
using Microsoft.ML.Recurrent.Model;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Recurrent;

// Initial weights from a safetensors file (RecurrentTrainerOptions.InitialWeightsPath): read and checked by
// Interop/SafetensorsReader, matched to the network by Interop/NetworkTensors; this part only finds the file and says
// what it did.
public abstract partial class RecurrentTrainerBase<TTransformer>
{
    /// <summary>The file of <see cref="RecurrentTrainerOptions.InitialWeightsPath"/>, read and checked; null without one.</summary>
    private SafetensorsFile? ReadInitialWeights()
    {
        if (TrainerOptions.InitialWeightsPath is not { } path)
            return null;
        if (!File.Exists(path))
            throw new FileNotFoundException($"InitialWeightsPath '{path}' does not exist.", path);
        return SafetensorsReader.Read(path);
    }

    /// <summary>Replaces the network's initial weights by the file's, checking every name and shape (see <see cref="NetworkTensors.Import"/>).</summary>
    private static void ImportInitialWeights(RecurrentNetwork network, SafetensorsFile file, IChannel channel)
    {
        NetworkTensors.Import(network, file);
        channel.Info($"Initial weights: {file.Tensors.Count} tensors ({network.Parameters.Length:N0} values) from {file.Source}.");
    }

    /// <summary>
    /// Checks what the file says of the data it was trained on against this trainer's data: the task, the feature
    /// column's vocabulary (its key values' hash) and the label's classes, when the file records them (files written by
    /// <see cref="RecurrentTransformerBase.SaveAsSafetensors(string)"/> do; a PyTorch <c>state_dict</c> does not). The
    /// same key count with other words behind the keys, or classes in another order, would import without any other
    /// error and predict nonsense.
    /// </summary>
    private void CheckInitialWeightsData(SafetensorsFile file, DataViewSchema.Column features, LabelKeyValues? labels)
    {
        var metadata = file.Metadata;
        string Fail(string what) => $"Safetensors file '{file.Source}' {what}. Import it into the pipeline it was trained with (the same fitted featurizers), or retrain.";
        if (metadata.TryGetValue("task", out var task) && task != NetworkTensors.TaskName(Objective))
            throw new InvalidDataException(Fail($"holds a {Model.BoundedReader.Printable(task)} model; this trainer makes a {NetworkTensors.TaskName(Objective)} model"));
        if (metadata.TryGetValue("vocabulary_sha256", out var recorded) && VocabularyHash.Of(features) is { } actual
            && !string.Equals(recorded, Convert.ToHexStringLower(actual), StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException(Fail($"was trained on another vocabulary: the key values of feature column '{features.Name}' (the words behind the keys) differ from the file's"));
        if (metadata.TryGetValue("labels", out var recordedLabels) && labels is not null)
        {
            string[]? names;
            try
            {
                names = System.Text.Json.JsonSerializer.Deserialize<string[]>(recordedLabels);
            }
            catch (System.Text.Json.JsonException)
            {
                throw new InvalidDataException(Fail("has labels metadata that is not a JSON array of strings"));
            }
            var actualNames = labels.Names.Select(n => n.ToString()).ToArray();
            if (names is null || !names.SequenceEqual(actualNames))
                throw new InvalidDataException(Fail($"has the classes [{Model.BoundedReader.Printable(string.Join(", ", names ?? []))}] in its label order; the label column has [{string.Join(", ", actualNames)}]"));
        }
    }
}
