using System.Globalization;
using Microsoft.ML.Recurrent.Layers;
using Microsoft.ML.Recurrent.Model;

namespace Microsoft.ML.Recurrent.Interop;

/// <summary>
/// A <see cref="RecurrentNetwork"/>'s parameters as named tensors and back. The names and shapes are the ones the
/// network registers, which are PyTorch's (see docs/interop.md): <c>embedding.weight</c> [V, E];
/// <c>rnn.weight_ih_l{l}[_reverse]</c> [G·H, I_l], <c>rnn.weight_hh_l{l}[_reverse]</c> [G·H, H],
/// <c>rnn.bias_ih_l{l}[_reverse]</c> and <c>rnn.bias_hh_l{l}[_reverse]</c> [G·H] (G = 4 LSTM, 3 GRU, 1 RNN);
/// <c>attention.weight</c> [W, W], <c>attention.bias</c> and <c>attention.context</c> [W]; <c>head.weight</c> [O, P] and
/// <c>head.bias</c> [O]; <c>wide.weight</c> [O, F]; <c>crf.start_transitions</c>, <c>crf.end_transitions</c> [C] and
/// <c>crf.transitions</c> [C, C]; <c>char.embedding.weight</c> and <c>char.rnn.*</c>; <c>skip.weight</c>. So the
/// tensors load into an <c>nn.Module</c> with those attribute names by <c>load_state_dict</c> unchanged.
/// <para>The <c>__metadata__</c> written beside them describes the architecture (<see cref="Metadata"/>); when a file
/// carries those keys, <see cref="Import"/> checks them against the network too, so that what the shapes cannot tell
/// apart (RNN-tanh from RNN-ReLU, one pooling from another of the same width) is not mixed up silently.</para>
/// </summary>
internal static class NetworkTensors
{
    /// <summary>The <c>__metadata__</c> key naming this library's layout, and its value.</summary>
    public const string FormatKey = "format", FormatValue = "Microsoft.ML.Recurrent";

    /// <summary>
    /// The network's parameters as tensors, in registration order. With <paramref name="embeddingRows"/> non-empty,
    /// <c>embedding.weight</c> is written with one row per entry: row r is the network's row
    /// <paramref name="embeddingRows"/>[r] (how a caller re-indexes the embedding by its own ids).
    /// </summary>
    public static List<SafetensorsTensor> Export(RecurrentNetwork network, ReadOnlySpan<int> embeddingRows = default)
    {
        var ps = network.Parameters;
        var tensors = new List<SafetensorsTensor>(ps.Parameters.Count);
        foreach (var p in ps.Parameters)
        {
            if (p.Name == "embedding.weight" && !embeddingRows.IsEmpty)
            {
                int e = p.Shape[1], v = p.Shape[0];
                var source = ps.Value(p);
                var rows = new float[checked(embeddingRows.Length * e)];
                // rows[r, :] = weight[embeddingRows[r], :]
                for (int r = 0; r < embeddingRows.Length; r++)
                {
                    int from = embeddingRows[r];
                    if ((uint)from >= (uint)v)
                        throw new ArgumentOutOfRangeException(nameof(embeddingRows), from, $"Embedding row {from} for entry {r} is outside [0, {v}).");
                    source.Slice(from * e, e).CopyTo(rows.AsSpan(r * e, e));
                }
                tensors.Add(new SafetensorsTensor(p.Name, [embeddingRows.Length, e], rows));
                continue;
            }
            tensors.Add(new SafetensorsTensor(p.Name, (int[])p.Shape.Clone(), ps.Value(p).ToArray()));
        }
        return tensors;
    }

    /// <summary>
    /// The architecture as <c>__metadata__</c> strings: cell (PyTorch's mode name: LSTM, GRU, RNN_TANH, RNN_RELU),
    /// sizes, directions, head, pooling, CRF, character encoder, wide part and forecast head, with
    /// <paramref name="vocabularySize"/> the embedding rows as exported.
    /// </summary>
    public static Dictionary<string, string> Metadata(NetworkConfig config, int vocabularySize)
    {
        static string Int(int value) => value.ToString(CultureInfo.InvariantCulture);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [FormatKey] = FormatValue,
            ["format_version"] = "1",
            ["cell"] = CellName(config.Cell),
            ["input_size"] = Int(config.InputSize),
            ["hidden_size"] = Int(config.HiddenSize),
            ["num_layers"] = Int(config.NumLayers),
            ["bidirectional"] = config.Bidirectional ? "true" : "false",
            ["vocabulary_size"] = Int(vocabularySize),
            ["padding_idx"] = config.PaddingId < 0 ? "none" : Int(config.PaddingId),
            ["head"] = HeadName(config.Head),
            ["output_size"] = Int(config.OutputSize),
            ["crf"] = config.UseCrf ? "true" : "false",
        };
        if (config.Head == NetworkHeadKind.Pooled)
            metadata["pooling"] = PoolingName(config.Pooling);
        if (config.TieWeights)
            metadata["tied_embedding"] = "true";
        if (config.WideSize > 0)
            metadata["wide_size"] = Int(config.WideSize);
        if (config.UsesCharacters)
        {
            metadata["char_vocabulary_size"] = Int(config.CharacterVocabularySize);
            metadata["char_embedding_size"] = Int(config.CharacterEmbeddingSize);
            metadata["char_hidden_size"] = Int(config.CharacterHiddenSize);
            metadata["max_word_length"] = Int(config.MaximumWordLength);
        }
        if (config.Head == NetworkHeadKind.Forecast)
        {
            metadata["forecast_steps"] = Int(config.ForecastSteps);
            metadata["skip_columns"] = Int(config.SkipColumns);
            metadata["static_size"] = Int(config.StaticSize);
        }
        return metadata;
    }

    /// <summary>PyTorch's name of a cell (<c>nn.RNNBase.mode</c>).</summary>
    public static string CellName(RecurrentCellKind cell) => cell switch
    {
        RecurrentCellKind.Lstm => "LSTM",
        RecurrentCellKind.Gru => "GRU",
        RecurrentCellKind.RnnTanh => "RNN_TANH",
        RecurrentCellKind.RnnRelu => "RNN_RELU",
        _ => throw new ArgumentOutOfRangeException(nameof(cell), cell, "Unknown cell kind."),
    };

    private static string HeadName(NetworkHeadKind head) => head switch
    {
        NetworkHeadKind.Pooled => "pooled",
        NetworkHeadKind.PerStep => "per_step",
        _ => "forecast",
    };

    /// <summary>The pooling kinds in flag order (the order of the pieces of the pooled vector), comma-separated.</summary>
    public static string PoolingName(PoolingKind pooling)
    {
        var names = new List<string>();
        if ((pooling & PoolingKind.FinalState) != 0) names.Add("final_state");
        if ((pooling & PoolingKind.Mean) != 0) names.Add("mean");
        if ((pooling & PoolingKind.Max) != 0) names.Add("max");
        if ((pooling & PoolingKind.InputMean) != 0) names.Add("input_mean");
        if ((pooling & PoolingKind.Attention) != 0) names.Add("attention");
        return string.Join(",", names);
    }

    /// <summary>
    /// Copies the tensors of <paramref name="file"/> into <paramref name="network"/>'s parameters. Every parameter must
    /// be in the file with its exact shape, and the file must hold nothing else; its values must be finite; architecture
    /// keys of its metadata (when present) must agree with the network. Nothing is copied unless all of this holds.
    /// </summary>
    /// <exception cref="InvalidDataException">
    /// The file does not fit the network: the message names every missing and unexpected tensor, and each tensor whose
    /// shape differs with both shapes, or the metadata key, or the tensor holding a non-finite value.
    /// </exception>
    public static void Import(RecurrentNetwork network, SafetensorsFile file)
    {
        var config = network.Config;
        CheckMetadata(config, file);
        var ps = network.Parameters;
        var problems = new List<string>();
        var expected = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in ps.Parameters)
        {
            expected.Add(p.Name);
            if (!file.Tensors.TryGetValue(p.Name, out var tensor))
                problems.Add($"tensor '{p.Name}' {SafetensorsTensor.FormatShape(p.Shape)} is missing");
            else if (!tensor.Shape.AsSpan().SequenceEqual(p.Shape))
                problems.Add($"tensor '{p.Name}' has shape {tensor.ShapeText} in the file; the network needs {SafetensorsTensor.FormatShape(p.Shape)}");
        }
        foreach (var name in file.Tensors.Keys.Where(n => !expected.Contains(n)).Order(StringComparer.Ordinal))
            problems.Add($"tensor '{Model.BoundedReader.Printable(name)}' {file.Tensors[name].ShapeText} is not a parameter of this network");
        if (problems.Count > 0)
        {
            const int shown = 20;
            string list = string.Join("; ", problems.Take(shown)) + (problems.Count > shown ? $"; and {problems.Count - shown} more" : "");
            throw new InvalidDataException($"Safetensors file '{file.Source}' does not fit a {Describe(config)}: {list}.");
        }
        foreach (var p in ps.Parameters)
        {
            var values = file.Tensors[p.Name].Values;
            int bad = IndexOfNonFinite(values);
            if (bad >= 0)
                throw new InvalidDataException($"Safetensors file '{file.Source}': tensor '{p.Name}' holds {values[bad]} at index {bad}; weights must be finite.");
        }
        foreach (var p in ps.Parameters)
            file.Tensors[p.Name].Values.CopyTo(ps.Value(p));
    }

    /// <summary>The <c>task</c> metadata value of an objective.</summary>
    public static string TaskName(Training.Objective objective) => objective switch
    {
        Training.Objective.Multiclass => "multiclass",
        Training.Objective.Binary => "binary",
        Training.Objective.Regression => "regression",
        _ => "tagging",
    };

    /// <summary>A network's shape in words, for messages.</summary>
    public static string Describe(NetworkConfig config) =>
        $"{(config.Bidirectional ? "bidirectional " : "")}{config.NumLayers}-layer {CellName(config.Cell)} network (input {config.InputSize}, hidden {config.HiddenSize}, " +
        $"{(config.TokenInput ? $"vocabulary {config.VocabularySize}, " : "")}{HeadName(config.Head)} head, {config.OutputSize} outputs" +
        $"{(config.Head == NetworkHeadKind.Pooled ? $", pooling {PoolingName(config.Pooling)}" : "")}{(config.UseCrf ? ", CRF" : "")}{(config.WideSize > 0 ? $", wide {config.WideSize}" : "")})";

    private static int IndexOfNonFinite(float[] values)
    {
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i])) return i;
        return -1;
    }

    /// <summary>Refuses a file whose metadata describes another architecture in what the shapes cannot show.</summary>
    private static void CheckMetadata(NetworkConfig config, SafetensorsFile file)
    {
        var metadata = file.Metadata;
        void Check(string key, string actual)
        {
            if (metadata.TryGetValue(key, out var value) && !string.Equals(value, actual, StringComparison.OrdinalIgnoreCase))
                throw new InvalidDataException($"Safetensors file '{file.Source}': its metadata says {key} = '{Model.BoundedReader.Printable(value)}', " +
                    $"but the options describe {key} = '{actual}'.");
        }
        if (metadata.TryGetValue("format_version", out var version) && version != "1")
            throw new InvalidDataException($"Safetensors file '{file.Source}' has format_version '{Model.BoundedReader.Printable(version)}'; this library reads 1.");
        Check("cell", CellName(config.Cell));
        Check("bidirectional", config.Bidirectional ? "true" : "false");
        Check("num_layers", config.NumLayers.ToString(CultureInfo.InvariantCulture));
        Check("head", HeadName(config.Head));
        if (config.Head == NetworkHeadKind.Pooled)
            Check("pooling", PoolingName(config.Pooling));
        Check("crf", config.UseCrf ? "true" : "false");
    }
}
