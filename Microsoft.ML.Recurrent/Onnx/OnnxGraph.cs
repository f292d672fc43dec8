using Microsoft.ML.Model.OnnxConverter;

namespace Microsoft.ML.Recurrent.Onnx;

/// <summary>
/// A thin writer over ML.NET's <see cref="OnnxContext"/>: nodes with fresh output names, constants and weights as
/// initializers. Names start with a prefix (ours: "Recurrent."); ML.NET's context makes every variable and node name
/// unique, so two recurrent steps in one pipeline never collide. Only default-domain operators whose definitions are the
/// same from opset 11 to 17 are written (no Squeeze/Unsqueeze/ReduceSum, whose axes moved to inputs at 13; Softmax and
/// LogSoftmax only over the last axis, where opset 13's per-axis definition and the earlier flattening one agree), so the
/// graph is valid at the opset ML.NET's converter writes (12) and unchanged at 13–17.
/// </summary>
internal sealed class OnnxGraph(OnnxContext context, string prefix)
{
    /// <summary>A fresh intermediate variable name.</summary>
    public string Variable(string name) => context.AddIntermediateVariable(null, prefix + name, skip: true);

    /// <summary>Adds a node with one output and returns the output's name.</summary>
    public string Node(string op, string output, params string[] inputs) => Node(op, output, null, inputs);

    /// <summary>Adds a node with one output, sets its attributes, and returns the output's name.</summary>
    public string Node(string op, string output, Action<OnnxNode>? attributes, params string[] inputs)
    {
        string name = Variable(output);
        NodeInto(op, name, attributes, inputs);
        return name;
    }

    /// <summary>Adds a node writing into the existing variable <paramref name="output"/> (a column's variable).</summary>
    public void NodeInto(string op, string output, Action<OnnxNode>? attributes, params string[] inputs)
    {
        var node = context.CreateNode(op, inputs, [output], context.GetNodeName(prefix + op), "");
        attributes?.Invoke(node);
    }

    /// <summary>Adds a node with several outputs (all fresh variables) and returns their names.</summary>
    public string[] NodeWithOutputs(string op, string[] outputs, Action<OnnxNode>? attributes, params string[] inputs)
    {
        var names = outputs.Select(Variable).ToArray();
        var node = context.CreateNode(op, inputs, names, context.GetNodeName(prefix + op), "");
        attributes?.Invoke(node);
        return names;
    }

    /// <summary>A float tensor initializer.</summary>
    public string Floats(string name, ReadOnlySpan<float> values, params long[] shape) =>
        context.AddInitializer(values.ToArray(), shape, prefix + name);

    /// <summary>A float scalar initializer (shape []).</summary>
    public string Float(string name, float value) => context.AddInitializer(value, prefix + name);

    /// <summary>An int64 scalar initializer (shape []).</summary>
    public string Long(string name, long value) => context.AddInitializer(value, prefix + name);

    /// <summary>An int64 tensor initializer.</summary>
    public string Longs(string name, params long[] values) => context.AddInitializer(values, [values.Length], prefix + name);

    /// <summary>An int64 tensor initializer of the given shape (at least one dimension; see <see cref="Long"/> for scalars).</summary>
    public string LongsShaped(string name, long[] values, long[] shape) => context.AddInitializer(values, shape, prefix + name);

    /// <summary>Reshape to a constant shape (0 keeps that dimension, −1 infers it).</summary>
    public string Reshape(string input, string output, params long[] shape) =>
        Node("Reshape", output, input, Longs(output + "_shape", shape));

    /// <summary>Transpose with a permutation.</summary>
    public string Transpose(string input, string output, params long[] perm) =>
        Node("Transpose", output, n => n.AddAttribute("perm", perm), input);

    /// <summary>Cast to <paramref name="type"/> (float, long, int, uint or bool).</summary>
    public string Cast(string input, string output, Type type) =>
        Node("Cast", output, n => n.AddAttribute("to", type), input);

    /// <summary>
    /// <paramref name="row"/> [1, N] sliced to its own counted width, and that width (int64 [1]): the same values, but a
    /// width no shape inference can fix. ML.NET declares some variable-length columns with a fixed width of 1
    /// (TokenizeIntoWords' output as [-1, 1]); ONNX Runtime's shape inference believes it, folds a Shape of it into a
    /// constant and plans buffers of that size (a row of 2 tokens is read as 1; an empty row fails). Counted from the
    /// data (ReduceL1 of ones, whose axes stay an attribute up to opset 17), the width is known at run time only.
    /// <paramref name="below"/> is a scalar below every value (NaN features count too).
    /// </summary>
    public (string Values, string Width) DynamicWidth(string row, string name, string below)
    {
        var greater = Node("Greater", name + "_gt", row, below);
        var always = Node("Or", name + "_any", greater, Node("Not", name + "_not_gt", greater));
        var count = Node("ReduceL1", name + "_count_f", n => { n.AddAttribute("axes", new long[] { 1 }); n.AddAttribute("keepdims", 0L); }, Cast(always, name + "_ones", typeof(float)));
        var width = Cast(count, name + "_count", typeof(long));
        return (Node("Slice", name, row, Longs(name + "_start", 0), width, Longs(name + "_axis", 1)), width);
    }

    /// <summary>Whether any of <paramref name="flags"/> [1, N] (bool) is set: bool [1, 1] (false for N = 0).</summary>
    public string AnyTrue(string flags, string name)
    {
        // ReduceL1 of 0/1 counts them, also over an empty row (ReduceMax of nothing would be −∞ or an error); reduced
        // without keepdims and reshaped, as ONNX Runtime gives a reduction over an empty axis with keepdims no dimension.
        var count = Node("ReduceL1", name + "_count", n => { n.AddAttribute("axes", new long[] { 1 }); n.AddAttribute("keepdims", 0L); }, Cast(flags, name + "_f", typeof(float)));
        return Reshape(Node("Greater", name + "_any_set", count, Float(name + "_none", 0f)), name, 1, 1);
    }

    /// <summary>
    /// <paramref name="input"/> reshaped to one row [1, N] through a shape computed from its values (a reduction of the
    /// input itself, times zero), so that no shape inference can give the row a fixed width: ML.NET declares some
    /// variable-length columns with a width of 1 (TokenizeIntoWords' output as [-1, 1]), and ONNX Runtime, believing it,
    /// plans the buffers of every tensor computed from the row for that width — a row of another width then fails
    /// ("Shape mismatch attempting to re-use buffer"). The reduction has a scalar output whatever the input's shape;
    /// it reads float features directly, and keys (uint32, which ONNX Runtime's reductions do not take) through one Cast
    /// to int32, the only tensor left with an inferred width.
    /// </summary>
    public string RowOfRuntimeWidth(string input, string name, bool keys)
    {
        var readable = keys ? Cast(input, name + "_int", typeof(int)) : input;
        var reduced = Node("ReduceL1", name + "_reduced", n => n.AddAttribute("keepdims", 0L), readable); // scalar
        var zero = Node("Mul", name + "_zero", Cast(reduced, name + "_reduced_long", typeof(long)), Long(name + "_times", 0));
        var shape = Node("Add", name + "_shape", Longs(name + "_row_shape", 1, -1), zero);
        return Node("Reshape", name, input, shape);
    }
}
