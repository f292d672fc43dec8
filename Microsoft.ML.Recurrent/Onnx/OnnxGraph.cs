using Microsoft.ML.Model.OnnxConverter;

namespace Microsoft.ML.Recurrent.Onnx;

/// <summary>
/// A thin writer over ML.NET's <see cref="OnnxContext"/>: nodes with fresh output names, constants and weights as
/// initializers. Every name it makes starts with one prefix per exported transformer, so two recurrent models in one
/// pipeline never collide. Only default-domain operators whose definitions are the same from opset 11 to 17 are
/// written (no Squeeze/Unsqueeze/ReduceSum, whose axes moved to inputs at 13; Softmax only over the last axis of a
/// 2-D tensor), so the graph is valid at the opset ML.NET's converter writes (12) and unchanged at 13–17.
/// </summary>
internal sealed class OnnxGraph(OnnxContext context, string prefix)
{
    /// <summary>The ML.NET context the nodes go to.</summary>
    public OnnxContext Context => context;

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
}
