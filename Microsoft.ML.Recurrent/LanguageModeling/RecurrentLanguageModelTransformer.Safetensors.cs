using System.Globalization;
using System.Text.Json;
using Microsoft.ML.Recurrent.Interop;

namespace Microsoft.ML.Recurrent;

// Export of a language model's weights as a safetensors file with PyTorch's names and shapes (docs/interop.md). The
// tensors and the architecture metadata come from Interop/NetworkTensors; this part adds the vocabulary: which token
// each embedding row and each output stands for.
public sealed partial class RecurrentLanguageModelTransformer
{
    /// <summary>
    /// Writes the language model's weights to <paramref name="path"/> as a <c>.safetensors</c> file with PyTorch's names
    /// and shapes (<c>embedding.weight</c> [V, E], <c>rnn.weight_ih_l0</c> [G·H, E], …, <c>head.weight</c> [V, D·H] unless
    /// the weights are tied, <c>head.bias</c> [V]), float32, for <c>safetensors.torch.load_file</c> and
    /// <c>load_state_dict</c>. Rows and outputs are the model's token ids: id 0 is the unknown token, id 1 the end of a
    /// row, ids 2 … V−1 the tokens the <c>__metadata__</c> lists (<c>characters</c> for a character model;
    /// <c>keys</c> — the ML.NET key of each id — and, when the key column had text, <c>words</c> for a token model),
    /// with the direction (<c>direction</c>: forward, or backward for a model that reads rows right to left).
    /// </summary>
    /// <param name="path">The file to write (replaced if it exists; written to a temporary file first).</param>
    public void SaveAsSafetensors(string path)
    {
        var (tensors, metadata) = SafetensorsContents();
        SafetensorsWriter.Write(path, tensors, metadata); // checks the path
    }

    /// <summary>Writes the weights as a safetensors file to <paramref name="stream"/>; see <see cref="SaveAsSafetensors(string)"/>.</summary>
    /// <param name="stream">A writable stream; it is left open.</param>
    public void SaveAsSafetensors(Stream stream)
    {
        var (tensors, metadata) = SafetensorsContents();
        SafetensorsWriter.Write(stream, tensors, metadata); // checks the stream
    }

    private (List<SafetensorsTensor> Tensors, Dictionary<string, string> Metadata) SafetensorsContents()
    {
        var vocabulary = _vocabulary;
        var tensors = NetworkTensors.Export(_network);
        var metadata = NetworkTensors.Metadata(_network.Config, vocabulary.Size);
        metadata["task"] = "language_model";
        metadata["direction"] = IsBackward ? "backward" : "forward";
        metadata["input_column"] = InputColumnName;
        metadata["token_ids"] = "id 0 is the unknown token, id 1 the end of a row, ids 2 and up the tokens listed here in order";
        var ids = Enumerable.Range(2, vocabulary.Size - 2);
        if (vocabulary.IsCharacters)
        {
            metadata["characters"] = JsonSerializer.Serialize(ids.Select(id => vocabulary.TextOf(id, "")).ToArray());
        }
        else
        {
            metadata["key_count"] = vocabulary.KeyCount.ToString(CultureInfo.InvariantCulture);
            metadata["keys"] = JsonSerializer.Serialize(ids.Select(vocabulary.KeyOf).ToArray());
            if (vocabulary.HasWords)
                metadata["words"] = JsonSerializer.Serialize(ids.Select(id => vocabulary.TextOf(id, "")).ToArray());
        }
        return (tensors, metadata);
    }
}
