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
}
