using System.Globalization;
using System.Text.Json;
using Microsoft.ML.Recurrent.Interop;
using Microsoft.ML.Recurrent.Training;

namespace Microsoft.ML.Recurrent;

// Export of the weights as a safetensors file with PyTorch's names and shapes (docs/interop.md). The tensors and the
// architecture metadata come from Interop/NetworkTensors; this part adds what only the ML.NET side knows: how the
// feature column's keys index the embedding, and the task's columns and labels.
public abstract partial class RecurrentTransformerBase
{
    /// <summary>
    /// Writes the network's weights to <paramref name="path"/> as a <c>.safetensors</c> file that PyTorch loads with
    /// <c>safetensors.torch.load_file</c> and <c>load_state_dict</c> into the module of docs/interop.md: PyTorch's
    /// names and shapes (<c>embedding.weight</c> [V, E], <c>rnn.weight_ih_l0</c> [G·H, I], …, <c>head.weight</c>,
    /// <c>head.bias</c>), float32, and a <c>__metadata__</c> that describes the architecture (cell, sizes, layers,
    /// directions, pooling, task, feature column, label names). For token input, row k of <c>embedding.weight</c> is
    /// ML.NET key k (row 0 is key 0, the missing or unknown token), so V = key count + 1; keys that were rare in the
    /// training data (<see cref="RecurrentTrainerOptions.MinimumTokenFrequency"/>) get a copy of the unknown row.
    /// The file can be read back by a trainer through <see cref="RecurrentTrainerOptions.InitialWeightsPath"/>.
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
        var input = Model.Input;
        var network = Model.Network;
        // Row k of the exported embedding is key k: the model's row of that key (the token map sends rare keys to 0).
        int[] rows = [];
        if (input.IsTokens)
        {
            rows = new int[input.KeyCount + 1];
            for (int key = 0; key <= input.KeyCount; key++)
                rows[key] = input.TokenMap is null ? key : input.TokenMap[key];
        }
        var tensors = NetworkTensors.Export(network, rows);
        var metadata = NetworkTensors.Metadata(network.Config, rows.Length);
        metadata["task"] = NetworkTensors.TaskName(Model.Objective);
        metadata["feature_column"] = input.ColumnName;
        if (input.IsTokens)
        {
            metadata["key_count"] = input.KeyCount.ToString(CultureInfo.InvariantCulture);
            metadata["embedding_rows"] = "ML.NET key k is row k; key 0 (missing or unknown) is row 0";
            // Which words the keys stand for (SHA-256 of the key values; see VocabularyHash): checked on import.
            if (Model.Vocabulary is { } vocabulary)
                metadata["vocabulary_sha256"] = Convert.ToHexStringLower(vocabulary);
        }
        else
        {
            metadata["features_per_step"] = input.FeaturesPerStep.ToString(CultureInfo.InvariantCulture);
        }
        if (input.MaximumLength > 0)
            metadata["max_sequence_length"] = input.MaximumLength.ToString(CultureInfo.InvariantCulture);
        if (input.Characters is { } characters)
        {
            metadata["char_column"] = characters.ColumnName;
            // UTF-16 code units of the known characters: code unit of char.embedding row i + 1 (row 0 = unknown).
            metadata["char_codes"] = JsonSerializer.Serialize(characters.Characters.ToArray().Select(c => (int)c).ToArray());
        }
        if (input.Wide is { } wide)
            metadata["wide_column"] = wide.ColumnName;
        if (Model.LabelValues is { } labels)
            metadata["labels"] = JsonSerializer.Serialize(labels.Names.Select(n => n.ToString()).ToArray());
        return (tensors, metadata);
    }
}
