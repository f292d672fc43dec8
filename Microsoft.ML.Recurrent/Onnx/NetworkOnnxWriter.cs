using Microsoft.ML.Recurrent.Layers;
using Microsoft.ML.Recurrent.Model;

namespace Microsoft.ML.Recurrent.Onnx;

/// <summary>
/// Writes a trained network as standard ONNX operators (no custom operators), for one row: the feature column (keys
/// <c>uint32 [1, T]</c> or dense features <c>float [1, T·F]</c>) → truncation to the maximum length → <c>Gather</c>
/// from the embedding (through the token map) or <c>Reshape</c> → one ONNX <c>LSTM</c>/<c>GRU</c>/<c>RNN</c> node per
/// layer with <c>sequence_lens</c> and <c>direction = bidirectional</c> → masked pooling (final states from
/// <c>Y_h</c>, masked mean, masked max, input mean, attention with a masked softmax) → <c>Gemm</c>; or, for a per-step
/// head, <c>MatMul</c> + <c>Add</c> at every step.
/// <para>PyTorch's gate order is reordered to ONNX's: LSTM i,f,g,o → i,o,f,c; GRU r,z,n → z,r,h with
/// <c>linear_before_reset = 1</c> (PyTorch's b_hn inside the reset product). The graph scores one row per call, as
/// ML.NET's converter declares its inputs ([1, T]); the row's length is counted from its values. A row our scorer
/// cannot read (a non-finite feature, a width that is not a multiple of the features per step, a key beyond the
/// vocabulary) is flagged (<see cref="Invalid"/>) and its outputs made NaN, as ours are.</para>
/// </summary>
internal sealed class NetworkOnnxWriter
{
    private readonly OnnxGraph _g;
    private readonly RecurrentNetwork _network;
    private readonly NetworkConfig _config;
    private string? _wide;           // the wide column's variable (float [1, F]) when the network has a wide part
    private string _stepValues = ""; // [1, T], one value per step (any type), to count the steps from
    private string _x = "";          // X [T + 1, 1, I], the stack's input and one step of zeros after it
    private string _finalStates = "";// the top layer's Y_h [D, 1, H]
    private string _lengths = "";    // int64 [1]
    private string _paddedSteps = "";// T + 1, int64 [1]
    private string _hasSteps = "";   // bool [1, 1]
    private string _mask = "", _maskBool = ""; // [T + 1, 1, 1], float and bool (1 at real steps)
    private readonly List<string> _invalid = []; // bool [1, 1] flags of a row our scorer cannot read

    /// <summary>Y [T + 1, 1, D·H], the top layer's output over X; the last step is padding.</summary>
    public string Y { get; private set; } = "";

    /// <summary>T as int64 [1].</summary>
    public string Steps { get; private set; } = "";

    /// <summary>Whether the row cannot be read (see the class remarks), bool [1, 1]; false when nothing can make it so.</summary>
    public string Invalid { get; private set; } = "";

    private NetworkOnnxWriter(OnnxGraph graph, RecurrentNetwork network)
    {
        _g = graph;
        _network = network;
        _config = network.Config;
    }

    /// <summary>
    /// Why this model cannot be written as ONNX, or null when it can. Character features and the CRF have no
    /// standard-operator form here: the character encoder splits text into characters, and Viterbi decoding needs a
    /// loop, whose body graph ML.NET's <c>OnnxContext</c> has no way to write. A featurizer (the
    /// <paramref name="representation"/>) never reads the CRF.
    /// </summary>
    public static string? Unsupported(RecurrentModel model, bool representation)
    {
        var config = model.Network.Config;
        if (config.UsesCharacters)
            return "its character-level word encoder (WordCharacterInput) reads each word's characters from the text, which the standard operators cannot split; train without character features to export";
        if (config.UseCrf && !representation)
            return "its CRF (Viterbi decoding) needs a Loop or Scan, whose body graph ML.NET's ONNX context cannot write; a tagger without CRF exports";
        if (config.Head == NetworkHeadKind.Forecast)
            return "forecast heads are exported by the forecaster, not by this transformer";
        return null;
    }

    /// <summary>
    /// Writes the network from the feature column's variable and returns the writer. One step of zeros is appended to
    /// every row, beyond its length, so that a row with no steps still runs (the recurrent node reads max(length, 1)
    /// steps); the pooled vector of such a row is zero, as in our scorer ("no evidence": the head's bias), and its
    /// per-step outputs are empty.
    /// </summary>
    public static NetworkOnnxWriter Write(OnnxGraph graph, RecurrentModel model, string featureVariable, string? wideVariable = null)
    {
        if (model.Network.HasWide != (wideVariable is not null))
            throw new ArgumentException("The wide column's variable is needed exactly when the network has a wide part.", nameof(wideVariable));
        var writer = new NetworkOnnxWriter(graph, model.Network) { _wide = wideVariable };
        writer.WriteInput(model.Input, featureVariable);
        if (wideVariable is not null)
        {
            writer._wide = graph.RowOfRuntimeWidth(wideVariable, "wide_values", keys: false);
            writer._invalid.Add(writer.AnyNonFinite(writer._wide, "wide_bad"));
        }
        writer.WriteLengthsAndMask(model.Input.IsTokens);
        writer.WriteStack();
        return writer;
    }

    /// <summary>
    /// Writes the network of a token model (language model) from token ids int64 [1, T] (embedding rows, already mapped
    /// from keys) and returns the writer. <paramref name="invalid"/>, a bool [1, 1] flag, marks a row its caller found
    /// unreadable.
    /// </summary>
    public static NetworkOnnxWriter WriteFromIds(OnnxGraph graph, RecurrentNetwork network, string ids, string invalid)
    {
        var writer = new NetworkOnnxWriter(graph, network);
        var weights = network.Parameters;
        var table = weights["embedding.weight"];
        writer._stepValues = ids;
        writer._invalid.Add(invalid);
        writer.Embed(writer.Gather("embedding", weights.Value(table), table.Shape[0], ids));
        writer.WriteLengthsAndMask(tokens: true);
        writer.WriteStack();
        return writer;
    }

    /// <summary>The rows of <paramref name="table"/> [rows, E] at <paramref name="ids"/> [1, T]: [1, T, E].</summary>
    private string Gather(string name, ReadOnlySpan<float> table, int rows, string ids) =>
        _g.Node("Gather", name + "_rows", n => n.AddAttribute("axis", 0L), _g.Floats(name, table, rows, _config.InputSize), ids);

    /// <summary>X = <paramref name="steps"/> [1, T, I] time-major, with the padding step.</summary>
    private void Embed(string steps)
    {
        var real = _g.Transpose(steps, "x_real", 1, 0, 2);
        _x = _g.Node("Concat", "x", n => n.AddAttribute("axis", 0L), real, _g.Floats("x_pad", new float[_config.InputSize], 1, 1, _config.InputSize));
    }

    private void WriteInput(SequenceInput input, string feature)
    {
        // One row per call, as ML.NET's converter declares its inputs ([1, T]); upstream ONNX steps may hand the row over
        // as [T] or [1, 1, T] (ML.NET's Tokenizer → LabelEncoder does), so it is reshaped to [1, T] first.
        if (input.IsTokens)
        {
            var (ids, _) = DynamicWidth(_g.Cast(_g.RowOfRuntimeWidth(feature, "keys_row", keys: true), "key_values", typeof(long)), "token_ids_all", _g.Long("minus_one", -1));
            if (input.MaximumLength > 0)
                ids = _g.Node("Slice", "token_ids_truncated", ids, _g.Longs("slice_start", 0), _g.Longs("slice_end", input.MaximumLength), _g.Longs("slice_axis", 1));
            // A key beyond the vocabulary: our scorer gives NaN; here it is flagged, and clamped so that Gather can run.
            var keyCount = _g.Long("key_count", input.KeyCount);
            _invalid.Add(AnyTrue(_g.Node("Greater", "key_beyond", ids, keyCount), "keys_bad"));
            ids = _g.Node("Min", "token_ids", ids, keyCount);
            _stepValues = ids;
            // Key k (0 = missing/unseen … KeyCount) reads embedding row TokenMap[k].
            var weights = _network.Parameters;
            var embedding = weights["embedding.weight"];
            var rows = ids;
            if (input.TokenMap is { } map)
                rows = _g.Node("Gather", "embedding_row", n => n.AddAttribute("axis", 0L), _g.LongsShaped("token_map", [.. map.Select(r => (long)r)], [map.Length]), ids);
            Embed(Gather("embedding", weights.Value(embedding), embedding.Shape[0], rows));
        }
        else
        {
            int f = input.FeaturesPerStep;
            var (all, width) = DynamicWidth(_g.RowOfRuntimeWidth(feature, "features_row", keys: false), "feature_values", _g.Float("minus_inf", float.NegativeInfinity));
            // Our scorer reads min(width / F, maximum length) steps, and flags a width that is not a multiple of F.
            var perStep = _g.Long("features_per_step", f);
            var steps = _g.Node("Div", "feature_steps", width, perStep);
            if (input.MaximumLength > 0)
                steps = _g.Node("Min", "feature_steps_truncated", steps, _g.Long("maximum_steps", input.MaximumLength));
            var values = _g.Node("Slice", "feature_values_used", all, _g.Longs("used_start", 0), _g.Node("Mul", "feature_count_used", steps, perStep), _g.Longs("used_axis", 1));
            var remainder = _g.Node("Mod", "feature_remainder", width, perStep);
            _invalid.Add(_g.Reshape(_g.Node("Not", "width_bad_1", _g.Node("Equal", "width_whole", remainder, _g.Long("no_remainder", 0))), "width_bad", 1, 1));
            _invalid.Add(AnyNonFinite(values, "features_bad"));
            var stepped = _g.Reshape(values, "features_steps", 1, -1, f); // [1, T, F]
            var first = _g.Node("Slice", "features_first", stepped, _g.Longs("first_start", 0), _g.Longs("first_end", 1), _g.Longs("first_axis", 2));
            _stepValues = _g.Reshape(first, "step_values", 1, -1); // [1, T]
            Embed(stepped);
        }
    }

    /// <summary>Whether any value of <paramref name="values"/> [1, N] is NaN or infinite: bool [1, 1].</summary>
    private string AnyNonFinite(string values, string name) =>
        AnyTrue(_g.Node("Or", name + "_any", _g.Node("IsNaN", name + "_nan", values), _g.Node("IsInf", name + "_inf", values)), name);

    private string AnyTrue(string flags, string name) => _g.AnyTrue(flags, name);

    private (string Values, string Width) DynamicWidth(string row, string name, string below) => _g.DynamicWidth(row, name, below);

    private void WriteLengthsAndMask(bool tokens)
    {
        // The lengths are counted from the data, not read with Shape (see DynamicWidth).
        var real = _g.Node("Greater", "step_real", _stepValues, tokens ? _g.Long("below_keys", -1) : _g.Float("below_features", float.NegativeInfinity));
        var always = _g.Node("Or", "step_always", real, _g.Node("Not", "step_not_real", real)); // NaN features too
        var ones = _g.Cast(always, "step_ones", typeof(float));
        var count = _g.Node("ReduceL1", "lengths_f", n => { n.AddAttribute("axes", new long[] { 1 }); n.AddAttribute("keepdims", 0L); }, ones); // [1]
        _lengths = _g.Cast(count, "lengths", typeof(long));
        Steps = _g.Node("ReduceMax", "steps", n => { n.AddAttribute("axes", new long[] { 0 }); n.AddAttribute("keepdims", 1L); }, _lengths); // [1]
        _paddedSteps = _g.Node("Add", "padded_steps", Steps, _g.Long("one_step", 1));
        _hasSteps = _g.Reshape(_g.Node("Greater", "has_steps_b", _lengths, _g.Long("no_steps", 0)), "has_steps", -1, 1);
        // mask[t, b] = t < lengths[b], over the padded steps
        var stepsScalar = _g.Node("Reshape", "steps_scalar", _paddedSteps, _g.LongsShaped("scalar_shape", [], [0]));
        var range = _g.Node("Range", "step_index", _g.Long("zero", 0), stepsScalar, _g.Long("one", 1));
        var column = _g.Reshape(range, "step_column", -1, 1);
        var row = _g.Reshape(_lengths, "length_row", 1, -1);
        var less = _g.Node("Less", "mask_2d", column, row);
        _maskBool = _g.Reshape(less, "mask_bool", 0, 0, 1);
        _mask = _g.Cast(_maskBool, "mask", typeof(float));
        Invalid = _invalid.Count == 0 ? _g.Node("Cast", "valid_always", n => n.AddAttribute("to", typeof(bool)), _g.LongsShaped("no_flag", [0], [1, 1]))
            : _invalid.Skip(1).Aggregate(_invalid[0], (a, b) => _g.Node("Or", "invalid_any", a, b));
    }

    /// <summary><paramref name="values"/> with NaN everywhere when the row is <see cref="Invalid"/> (broadcast).</summary>
    public string NaNIfInvalid(string values, string name) =>
        _g.Node("Where", name, Invalid, _g.Float(name + "_nan", float.NaN), values);

    /// <summary><paramref name="keys"/> (int64) with key 0 — missing — when the row is <see cref="Invalid"/>.</summary>
    public string MissingIfInvalid(string keys, string name) =>
        _g.Node("Where", name, Invalid, _g.Long(name + "_missing", 0), keys);

    private void WriteStack()
    {
        var lengths32 = _g.Cast(_g.Node("Max", "rnn_lengths", _lengths, _g.Long("at_least_one", 1)), "sequence_lens", typeof(int));
        int h = _config.HiddenSize, d = _config.Bidirectional ? 2 : 1, layers = _config.NumLayers;
        var (op, gates) = _config.Cell switch
        {
            RecurrentCellKind.Lstm => ("LSTM", 4),
            RecurrentCellKind.Gru => ("GRU", 3),
            _ => ("RNN", 1),
        };
        // ONNX gate block g reads our (PyTorch's) block order[g].
        int[] order = _config.Cell switch
        {
            RecurrentCellKind.Lstm => [0, 3, 1, 2],
            RecurrentCellKind.Gru => [1, 0, 2],
            _ => [0],
        };
        string x = _x;
        var ps = _network.Parameters;
        for (int l = 0; l < layers; l++)
        {
            int inputSize = l == 0 ? _config.InputSize : d * h;
            var w = new float[(long)d * gates * h * inputSize];
            var r = new float[(long)d * gates * h * h];
            var b = new float[(long)d * 2 * gates * h];
            for (int dir = 0; dir < d; dir++)
            {
                string suffix = $"_l{l}{(dir == 1 ? "_reverse" : "")}";
                var wih = ps.Value(ps["rnn.weight_ih" + suffix]);
                var whh = ps.Value(ps["rnn.weight_hh" + suffix]);
                var bih = ps.Value(ps["rnn.bias_ih" + suffix]);
                var bhh = ps.Value(ps["rnn.bias_hh" + suffix]);
                for (int g = 0; g < gates; g++)
                {
                    int src = order[g];
                    wih.Slice(src * h * inputSize, h * inputSize).CopyTo(w.AsSpan((dir * gates + g) * h * inputSize, h * inputSize));
                    whh.Slice(src * h * h, h * h).CopyTo(r.AsSpan((dir * gates + g) * h * h, h * h));
                    bih.Slice(src * h, h).CopyTo(b.AsSpan((dir * 2 * gates + g) * h, h));
                    bhh.Slice(src * h, h).CopyTo(b.AsSpan((dir * 2 * gates + gates + g) * h, h));
                }
            }
            var outputs = _g.NodeWithOutputs(op, [$"y_l{l}", $"y_h_l{l}"], n =>
            {
                n.AddAttribute("hidden_size", (long)h);
                n.AddAttribute("direction", d == 2 ? "bidirectional" : "forward");
                if (_config.Cell == RecurrentCellKind.Gru)
                    n.AddAttribute("linear_before_reset", 1L);
                if (_config.Cell is RecurrentCellKind.RnnTanh or RecurrentCellKind.RnnRelu)
                    n.AddAttribute("activations", Enumerable.Repeat(_config.Cell == RecurrentCellKind.RnnRelu ? "Relu" : "Tanh", d));
            }, x, _g.Floats($"W_l{l}", w, d, gates * h, inputSize), _g.Floats($"R_l{l}", r, d, gates * h, h), _g.Floats($"B_l{l}", b, d, 2 * gates * h), lengths32);
            // Y [T, D, B, H] → [T, B, D, H] → [T, B, D·H]: forward columns first, as in our packed output.
            var transposed = _g.Transpose(outputs[0], $"y_l{l}_tbdh", 0, 2, 1, 3);
            x = _g.Reshape(transposed, $"y_l{l}_packed", 0, 0, -1);
            _finalStates = outputs[1];
        }
        Y = x;
    }

    /// <summary>Masked mean over the steps of <paramref name="values"/> [T, B, W] → [B, W] (Σ mask·v / length).</summary>
    public string MaskedMean(string values, string name)
    {
        var masked = _g.Node("Mul", name + "_masked", values, _mask);
        // Σ_t = (T + 1) · mean_t (ReduceSum's axes became an input at opset 13; ReduceMean's stayed an attribute until 18).
        var mean = _g.Node("ReduceMean", name + "_mean_all", n => { n.AddAttribute("axes", new long[] { 0 }); n.AddAttribute("keepdims", 0L); }, masked);
        var lengths = _g.Cast(_g.Node("Max", name + "_lengths_1", _lengths, _g.Long(name + "_one", 1)), name + "_lengths_f", typeof(float));
        var scale = _g.Node("Div", name + "_scale", _g.Cast(_paddedSteps, name + "_steps_f", typeof(float)), _g.Reshape(lengths, name + "_lengths_col", -1, 1));
        return _g.Node("Mul", name, mean, scale);
    }

    /// <summary>Masked maximum over the steps of <paramref name="values"/> [T, B, W] → [B, W].</summary>
    public string MaskedMax(string values, string name)
    {
        var masked = _g.Node("Where", name + "_masked", _maskBool, values, _g.Float(name + "_neg_inf", float.NegativeInfinity));
        return _g.Node("ReduceMax", name, n => { n.AddAttribute("axes", new long[] { 0 }); n.AddAttribute("keepdims", 0L); }, masked);
    }

    /// <summary>
    /// The pooled head's pooled vector [1, P], pieces in <see cref="PoolingKind"/> order (final state, mean, max, input
    /// mean, attention), as <see cref="PooledHead"/> builds it; zero for a row with no steps, NaN for one that cannot be read.
    /// </summary>
    public string Pooled() => NaNIfInvalid(PooledVector(), "pooled");

    private string PooledVector()
    {
        var kinds = _config.Pooling;
        var pieces = new List<string>();
        if ((kinds & PoolingKind.FinalState) != 0)
        {
            // Y_h [D, B, H]: forward at the last real step, reverse at the first → [B, D·H].
            var final = _g.Transpose(_finalStates, "final_bdh", 1, 0, 2);
            pieces.Add(_g.Reshape(final, "pool_final", 0, -1));
        }
        if ((kinds & PoolingKind.Mean) != 0)
            pieces.Add(MaskedMean(Y, "pool_mean"));
        if ((kinds & PoolingKind.Max) != 0)
            pieces.Add(MaskedMax(Y, "pool_max"));
        if ((kinds & PoolingKind.InputMean) != 0)
            pieces.Add(MaskedMean(_x, "pool_input_mean"));
        if ((kinds & PoolingKind.Attention) != 0)
            pieces.Add(Attention());
        var pooled = pieces.Count == 1 ? pieces[0] : _g.Node("Concat", "pooled_pieces", n => n.AddAttribute("axis", 1L), [.. pieces]);
        return ZeroWithoutSteps(pooled, "pooled_or_zero");
    }

    /// <summary>[1, P] set to zero for a row with no steps (its pieces are −∞ or NaN otherwise).</summary>
    public string ZeroWithoutSteps(string pooled, string name) =>
        _g.Node("Where", name, _hasSteps, pooled, _g.Float(name + "_zero", 0f));

    /// <summary>The top layer's outputs at the real steps, [T, 1, D·H] (the padding step dropped), NaN for a row that cannot be read.</summary>
    public string RealY() =>
        NaNIfInvalid(_g.Node("Slice", "y_real_steps", Y, _g.Longs("y_real_start", 0), Steps, _g.Longs("y_real_axis", 0)), "y_real");

    private string Attention()
    {
        var ps = _network.Parameters;
        int w = _network.StateSize;
        var weight = ps.Value(ps["attention.weight"]); // [A, W]
        var transposed = new float[weight.Length];
        for (int a = 0; a < w; a++)
            for (int k = 0; k < w; k++)
                transposed[k * w + a] = weight[a * w + k];
        var projected = _g.Node("MatMul", "attention_projected", Y, _g.Floats("attention_weight_t", transposed, w, w));
        var biased = _g.Node("Add", "attention_biased", projected, _g.Floats("attention_bias", ps.Value(ps["attention.bias"]), w));
        var u = _g.Node("Tanh", "attention_u", biased);
        var e = _g.Node("MatMul", "attention_e", u, _g.Floats("attention_context", ps.Value(ps["attention.context"]), w, 1)); // [T, B, 1]
        var masked = _g.Node("Where", "attention_e_masked", _maskBool, e, _g.Float("attention_neg_inf", float.NegativeInfinity));
        // Softmax over the steps: [T, 1, 1] → [1, T], softmax over the last axis (the same at every opset).
        var bt = _g.Transpose(_g.Reshape(masked, "attention_e_tb", 0, 0), "attention_e_bt", 1, 0);
        var alphaBt = _g.Node("Softmax", "attention_alpha_bt", n => n.AddAttribute("axis", 1L), bt);
        var alpha = _g.Reshape(_g.Transpose(alphaBt, "attention_alpha_tb", 1, 0), "attention_alpha", 0, 0, 1);
        var weighted = _g.Node("Mul", "attention_weighted", Y, alpha);
        var mean = _g.Node("ReduceMean", "attention_mean_all", n => { n.AddAttribute("axes", new long[] { 0 }); n.AddAttribute("keepdims", 0L); }, weighted);
        return _g.Node("Mul", "pool_attention", mean, _g.Cast(_paddedSteps, "attention_steps_f", typeof(float)));
    }

    /// <summary>
    /// The pooled head's outputs (logits) [1, O]: Gemm of the pooled vector, plus, with a wide part, the wide column
    /// [1, F] times <c>wide.weight</c>ᵀ (a dense MatMul: the column's zeros add nothing, as the sparse product skips
    /// them); NaN for a row that cannot be read.
    /// </summary>
    public string PooledOutputs()
    {
        var ps = _network.Parameters;
        var weight = ps["head.weight"];
        var deep = _g.Node("Gemm", _wide is null ? "logits" : "deep_logits", n => n.AddAttribute("transB", 1L), Pooled(),
            _g.Floats("head_weight", ps.Value(weight), weight.Shape[0], weight.Shape[1]),
            _g.Floats("head_bias", ps.Value(ps["head.bias"]), _config.OutputSize));
        if (_wide is null)
            return deep;
        var wide = ps["wide.weight"]; // [O, F]
        int o = wide.Shape[0], f = wide.Shape[1];
        var values = ps.Value(wide);
        var transposed = new float[values.Length];
        for (int i = 0; i < o; i++)
            for (int k = 0; k < f; k++)
                transposed[(long)k * o + i] = values[i * f + k];
        var product = _g.Node("MatMul", "wide_logits", _wide, _g.Floats("wide_weight_t", transposed, f, o));
        return _g.Node("Add", "logits", deep, product);
    }

    /// <summary>The per-step head's outputs [1, T, O]: the top layer's state at every step times the head's weight, plus bias (NaN for a row that cannot be read).</summary>
    public string PerStepOutputs()
    {
        var ps = _network.Parameters;
        var head = (PerStepHead)_network.Head;
        var weight = head.Output.Weight;
        int o = weight.Shape[0], w = weight.Shape[1];
        var values = ps.Value(weight);
        var transposed = new float[values.Length];
        for (int i = 0; i < o; i++)
            for (int k = 0; k < w; k++)
                transposed[k * o + i] = values[i * w + k];
        var bty = _g.Transpose(RealY(), "y_btw", 1, 0, 2);
        var product = _g.Node("MatMul", "step_product", bty, _g.Floats("head_weight_t", transposed, w, o));
        return _g.Node("Add", "step_logits", product, _g.Floats("head_bias", ps.Value(ps["head.bias"]), o));
    }
}
