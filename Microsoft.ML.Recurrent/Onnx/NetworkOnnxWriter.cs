using Microsoft.ML.Recurrent.Layers;
using Microsoft.ML.Recurrent.Model;

namespace Microsoft.ML.Recurrent.Onnx;

/// <summary>
/// Writes a trained network as standard ONNX operators (no custom operators): the feature column (keys
/// <c>uint32 [B, T]</c> or dense features <c>float [B, T·F]</c>) → truncation to the maximum length → <c>Gather</c>
/// from the embedding (the token map folded into it) or <c>Reshape</c> → one ONNX <c>LSTM</c>/<c>GRU</c>/<c>RNN</c>
/// node per layer with <c>sequence_lens</c> and <c>direction = bidirectional</c> → masked pooling (final states from
/// <c>Y_h</c>, masked mean, masked max, input mean, attention with a masked softmax) → <c>Gemm</c>; or, for a per-step
/// head, <c>MatMul</c> + <c>Add</c> at every step.
/// <para>PyTorch's gate order is reordered to ONNX's: LSTM i,f,g,o → i,o,f,c; GRU r,z,n → z,r,h with
/// <c>linear_before_reset = 1</c> (PyTorch's b_hn inside the reset product). The graph scores one row per call, as
/// ML.NET's converter declares its inputs ([1, T]); the row's length is T (<c>sequence_lens</c> is computed from the
/// input's shape), and the pooling is masked by <c>sequence_lens</c>, so the nodes after the input are batch-ready.</para>
/// </summary>
internal sealed class NetworkOnnxWriter
{
    private readonly OnnxGraph _g;
    private readonly RecurrentNetwork _network;
    private readonly NetworkConfig _config;

    /// <summary>X [T + 1, B, I], the stack's input and one step of zeros after it (see <see cref="Write"/>).</summary>
    public string X { get; private set; } = "";
    /// <summary>Y [T + 1, B, D·H], the top layer's output over <see cref="X"/>; the last step is padding.</summary>
    public string Y { get; private set; } = "";
    /// <summary>Whether each row has at least one step, bool [B, 1].</summary>
    public string HasSteps { get; private set; } = "";
    /// <summary>T + 1 as int64 [1], the padded step count of <see cref="X"/> and <see cref="Y"/>.</summary>
    public string PaddedSteps { get; private set; } = "";
    /// <summary>The top layer's final states [D, B, H].</summary>
    public string FinalStates { get; private set; } = "";
    /// <summary>Lengths int64 [B].</summary>
    public string Lengths { get; private set; } = "";
    /// <summary>T as int64 [1].</summary>
    public string Steps { get; private set; } = "";
    /// <summary>Step mask float [T, B, 1] (1 at real steps).</summary>
    public string Mask { get; private set; } = "";
    /// <summary>Step mask bool [T, B, 1].</summary>
    public string MaskBool { get; private set; } = "";

    private NetworkOnnxWriter(OnnxGraph graph, RecurrentNetwork network)
    {
        _g = graph;
        _network = network;
        _config = network.Config;
    }

    /// <summary>
    /// Why this model cannot be written as ONNX, or null when it can. Character features and the CRF have no
    /// standard-operator form here: the character encoder splits text into characters, and Viterbi decoding needs a
    /// loop, whose body graph ML.NET's <c>OnnxContext</c> has no way to write.
    /// </summary>
    public static string? Unsupported(RecurrentModel model)
    {
        var config = model.Network.Config;
        if (config.UsesCharacters)
            return "its character-level word encoder (WordCharacterInput) has no ONNX export yet; train without character features to export";
        if (config.UseCrf)
            return "its CRF (Viterbi decoding) needs a Loop or Scan, whose body graph ML.NET's ONNX context cannot write; a tagger without CRF exports";
        if (config.Head == NetworkHeadKind.Forecast)
            return "forecast heads are exported by the forecaster, not by this transformer";
        return null;
    }

    /// <summary>The wide column's variable (float [1, F]) when the network has a wide part.</summary>
    private string? _wide;

    /// <summary>
    /// Writes the network from the feature column's variable and returns the writer, whose properties name its tensors.
    /// One step of zeros is appended to every row, beyond its length, so that a row with no steps still runs (the
    /// recurrent node reads max(length, 1) steps); the pooled vector of such a row is zero, as in our scorer ("no
    /// evidence": the head's bias), and its per-step outputs are empty.
    /// </summary>
    public static NetworkOnnxWriter Write(OnnxGraph graph, RecurrentModel model, string featureVariable, string? wideVariable = null)
    {
        if (model.Network.HasWide != (wideVariable is not null))
            throw new ArgumentException("The wide column's variable is needed exactly when the network has a wide part.", nameof(wideVariable));
        var writer = new NetworkOnnxWriter(graph, model.Network) { _wide = wideVariable };
        writer.WriteInput(model.Input, featureVariable);
        writer.WriteLengthsAndMask(model.Input.IsTokens);
        writer.WriteStack();
        return writer;
    }

    /// <summary>
    /// Writes the network of a token model (language model) from token ids int64 [1, T] (embedding rows, already mapped
    /// from keys) and returns the writer.
    /// </summary>
    public static NetworkOnnxWriter WriteFromIds(OnnxGraph graph, RecurrentNetwork network, string ids)
    {
        var writer = new NetworkOnnxWriter(graph, network);
        var weights = network.Parameters;
        var table = weights["embedding.weight"];
        writer._stepValues = ids;
        writer.Embed(ids, weights.Value(table), table.Shape[0]);
        writer.WriteLengthsAndMask(tokens: true);
        writer.WriteStack();
        return writer;
    }

    /// <summary>X = the rows of <paramref name="table"/> [rows, E] at <paramref name="ids"/> [1, T], time-major, with the padding step.</summary>
    private void Embed(string ids, ReadOnlySpan<float> table, int rows)
    {
        var gathered = _g.Node("Gather", "embedded", n => n.AddAttribute("axis", 0L), _g.Floats("embedding", table, rows, _config.InputSize), ids); // [B, T, E]
        X = _g.Transpose(gathered, "x_real", 1, 0, 2);
        X = _g.Node("Concat", "x", n => n.AddAttribute("axis", 0L), X, _g.Floats("x_pad", new float[_config.InputSize], 1, 1, _config.InputSize));
    }

    private void WriteInput(SequenceInput input, string feature)
    {
        // One row per call, as ML.NET's converter declares its inputs ([1, T]); upstream ONNX steps may hand the row over
        // as [T] or [1, 1, T] (ML.NET's Tokenizer → LabelEncoder does), so it is reshaped to [1, T] first.
        if (input.IsTokens)
        {
            string ids = DynamicWidth(_g.Cast(_g.Reshape(feature, "keys_row", 1, -1), "key_values", typeof(long)), "token_ids_all", _g.Long("minus_one", -1));
            if (input.MaximumLength > 0)
                ids = _g.Node("Slice", "token_ids", ids, _g.Longs("slice_start", 0), _g.Longs("slice_end", input.MaximumLength), _g.Longs("slice_axis", 1));
            _stepValues = ids;
            // Key k (0 = missing/unseen … KeyCount) reads embedding row TokenMap[k]: the map is folded into the table.
            var weights = _network.Parameters;
            var embedding = weights.Value(weights["embedding.weight"]);
            int e = _config.InputSize, rows = input.KeyCount + 1;
            var table = new float[(long)rows * e];
            for (int k = 0; k < rows; k++)
            {
                int row = input.TokenMap is null ? k : input.TokenMap[k];
                embedding.Slice(row * e, e).CopyTo(table.AsSpan(k * e, e));
            }
            Embed(ids, table, rows);
        }
        else
        {
            string values = DynamicWidth(_g.Reshape(feature, "features_row", 1, -1), "feature_values", _g.Float("minus_inf", float.NegativeInfinity));
            int f = input.FeaturesPerStep;
            if (input.MaximumLength > 0)
                values = _g.Node("Slice", "features_truncated", values, _g.Longs("slice_start", 0), _g.Longs("slice_end", (long)input.MaximumLength * f), _g.Longs("slice_axis", 1));
            var steps = _g.Reshape(values, "features_steps", 1, -1, f); // [1, T, F]
            var first = _g.Node("Slice", "features_first", steps, _g.Longs("first_start", 0), _g.Longs("first_end", 1), _g.Longs("first_axis", 2));
            _stepValues = _g.Reshape(first, "step_values", 1, -1); // [1, T]
            X = _g.Transpose(steps, "x_real", 1, 0, 2);
            X = _g.Node("Concat", "x", n => n.AddAttribute("axis", 0L), X, _g.Floats("x_pad", new float[_config.InputSize], 1, 1, _config.InputSize));
        }
    }

    private string _stepValues = ""; // [B, T], one value per step (any type)

    /// <summary>
    /// <paramref name="row"/> [1, N] sliced to its own counted width: the same values, but a width no shape inference
    /// can fix. ML.NET declares some variable-length columns with a fixed width of 1 (TokenizeIntoWords' output as
    /// [-1, 1]); ONNX Runtime's shape inference believes it, folds a Shape of it into a constant and plans buffers of
    /// that size (a row of 2 tokens is read as 1; an empty row fails). Counted from the data (ReduceL1 of ones, whose
    /// axes stay an attribute up to opset 17), the width is known at run time only.
    /// </summary>
    private string DynamicWidth(string row, string name, string below)
    {
        var greater = _g.Node("Greater", name + "_gt", row, below);
        var always = _g.Node("Or", name + "_any", greater, _g.Node("Not", name + "_not_gt", greater)); // NaN features too
        var count = _g.Node("ReduceL1", name + "_count_f", n => { n.AddAttribute("axes", new long[] { 1 }); n.AddAttribute("keepdims", 0L); }, _g.Cast(always, name + "_ones", typeof(float)));
        return _g.Node("Slice", name, row, _g.Longs(name + "_start", 0), _g.Cast(count, name + "_count", typeof(long)), _g.Longs(name + "_axis", 1));
    }

    private void WriteLengthsAndMask(bool tokens)
    {
        // The lengths are counted from the data, not read with Shape (see DynamicWidth).
        var real = _g.Node("Greater", "step_real", _stepValues, tokens ? _g.Long("below_keys", -1) : _g.Float("below_features", float.NegativeInfinity));
        var always = _g.Node("Or", "step_always", real, _g.Node("Not", "step_not_real", real)); // NaN features too
        var ones = _g.Cast(always, "step_ones", typeof(float));
        var count = _g.Node("ReduceL1", "lengths_f", n => { n.AddAttribute("axes", new long[] { 1 }); n.AddAttribute("keepdims", 0L); }, ones); // [B]
        Lengths = _g.Cast(count, "lengths", typeof(long));
        Steps = _g.Node("ReduceMax", "steps", n => { n.AddAttribute("axes", new long[] { 0 }); n.AddAttribute("keepdims", 1L); }, Lengths); // [1]
        PaddedSteps = _g.Node("Add", "padded_steps", Steps, _g.Long("one_step", 1));
        HasSteps = _g.Reshape(_g.Node("Greater", "has_steps_b", Lengths, _g.Long("no_steps", 0)), "has_steps", -1, 1);
        // mask[t, b] = t < lengths[b], over the padded steps
        var stepsScalar = _g.Node("Reshape", "steps_scalar", PaddedSteps, _g.LongsShaped("scalar_shape", [], [0]));
        var range = _g.Node("Range", "step_index", _g.Long("zero", 0), stepsScalar, _g.Long("one", 1));
        var column = _g.Reshape(range, "step_column", -1, 1);
        var row = _g.Reshape(Lengths, "length_row", 1, -1);
        var less = _g.Node("Less", "mask_2d", column, row);
        MaskBool = _g.Reshape(less, "mask_bool", 0, 0, 1);
        Mask = _g.Cast(MaskBool, "mask", typeof(float));
    }

    private void WriteStack()
    {
        var lengths32 = _g.Cast(_g.Node("Max", "rnn_lengths", Lengths, _g.Long("at_least_one", 1)), "sequence_lens", typeof(int));
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
        string x = X;
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
            FinalStates = outputs[1];
        }
        Y = x;
    }

    /// <summary>Masked mean over the steps of <paramref name="values"/> [T, B, W] → [B, W] (Σ mask·v / length).</summary>
    public string MaskedMean(string values, string name)
    {
        var masked = _g.Node("Mul", name + "_masked", values, Mask);
        // Σ_t = (T + 1) · mean_t (ReduceSum's axes became an input at opset 13; ReduceMean's stayed an attribute until 18).
        var mean = _g.Node("ReduceMean", name + "_mean_all", n => { n.AddAttribute("axes", new long[] { 0 }); n.AddAttribute("keepdims", 0L); }, masked);
        var lengths = _g.Cast(_g.Node("Max", name + "_lengths_1", Lengths, _g.Long(name + "_one", 1)), name + "_lengths_f", typeof(float));
        var scale = _g.Node("Div", name + "_scale", _g.Cast(PaddedSteps, name + "_steps_f", typeof(float)), _g.Reshape(lengths, name + "_lengths_col", -1, 1));
        return _g.Node("Mul", name, mean, scale);
    }

    /// <summary>Masked maximum over the steps of <paramref name="values"/> [T, B, W] → [B, W].</summary>
    public string MaskedMax(string values, string name)
    {
        var masked = _g.Node("Where", name + "_masked", MaskBool, values, _g.Float(name + "_neg_inf", float.NegativeInfinity));
        return _g.Node("ReduceMax", name, n => { n.AddAttribute("axes", new long[] { 0 }); n.AddAttribute("keepdims", 0L); }, masked);
    }

    /// <summary>
    /// The pooled head's pooled vector [B, P], pieces in <see cref="PoolingKind"/> order (final state, mean, max, input
    /// mean, attention), as <see cref="PooledHead"/> builds it.
    /// </summary>
    public string Pooled()
    {
        var kinds = _config.Pooling;
        var pieces = new List<string>();
        if ((kinds & PoolingKind.FinalState) != 0)
        {
            // Y_h [D, B, H]: forward at the last real step, reverse at the first → [B, D·H].
            var final = _g.Transpose(FinalStates, "final_bdh", 1, 0, 2);
            pieces.Add(_g.Reshape(final, "pool_final", 0, -1));
        }
        if ((kinds & PoolingKind.Mean) != 0)
            pieces.Add(MaskedMean(Y, "pool_mean"));
        if ((kinds & PoolingKind.Max) != 0)
            pieces.Add(MaskedMax(Y, "pool_max"));
        if ((kinds & PoolingKind.InputMean) != 0)
            pieces.Add(MaskedMean(X, "pool_input_mean"));
        if ((kinds & PoolingKind.Attention) != 0)
            pieces.Add(Attention());
        var pooled = pieces.Count == 1 ? pieces[0] : _g.Node("Concat", "pooled_pieces", n => n.AddAttribute("axis", 1L), [.. pieces]);
        return ZeroWithoutSteps(pooled, "pooled");
    }

    /// <summary>[B, P] with the rows that have no steps set to zero (their pieces are −∞ or NaN otherwise).</summary>
    public string ZeroWithoutSteps(string pooled, string name) =>
        _g.Node("Where", name, HasSteps, pooled, _g.Float(name + "_zero", 0f));

    /// <summary>The top layer's outputs at the real steps, [T, B, D·H] (the padding step dropped).</summary>
    public string RealY() =>
        _g.Node("Slice", "y_real", Y, _g.Longs("y_real_start", 0), Steps, _g.Longs("y_real_axis", 0));

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
        var masked = _g.Node("Where", "attention_e_masked", MaskBool, e, _g.Float("attention_neg_inf", float.NegativeInfinity));
        // Softmax over the steps: [T, B, 1] → [B, T], softmax over the last axis of a 2-D tensor (same at every opset).
        var bt = _g.Transpose(_g.Reshape(masked, "attention_e_tb", 0, 0), "attention_e_bt", 1, 0);
        var alphaBt = _g.Node("Softmax", "attention_alpha_bt", n => n.AddAttribute("axis", 1L), bt);
        var alpha = _g.Reshape(_g.Transpose(alphaBt, "attention_alpha_tb", 1, 0), "attention_alpha", 0, 0, 1);
        var weighted = _g.Node("Mul", "attention_weighted", Y, alpha);
        var mean = _g.Node("ReduceMean", "attention_mean_all", n => { n.AddAttribute("axes", new long[] { 0 }); n.AddAttribute("keepdims", 0L); }, weighted);
        return _g.Node("Mul", "pool_attention", mean, _g.Cast(PaddedSteps, "attention_steps_f", typeof(float)));
    }

    /// <summary>
    /// The pooled head's outputs (logits) [B, O]: Gemm of the pooled vector, plus, with a wide part, the wide column
    /// [1, F] times <c>wide.weight</c>ᵀ (a dense MatMul: the column's zeros add nothing, as the sparse product skips them).
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
        var row = _g.Reshape(_wide, "wide_row", 1, f);
        var product = _g.Node("MatMul", "wide_logits", row, _g.Floats("wide_weight_t", transposed, f, o));
        return _g.Node("Add", "logits", deep, product);
    }

    /// <summary>The per-step head's outputs [B, T, O]: the top layer's state at every step times the head's weight, plus bias.</summary>
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
