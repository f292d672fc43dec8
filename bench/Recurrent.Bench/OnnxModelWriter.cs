using System.Runtime.InteropServices;
using System.Text;

namespace Recurrent.Bench;

/// <summary>
/// A minimal protobuf writer (wire types 0 varint, 2 length-delimited, 5 fixed32), enough to emit an ONNX ModelProto.
/// Nested messages are written into their own writer and copied in as bytes, which keeps the code trivial; the models
/// built here are a few tens of MB at most.
/// </summary>
internal sealed class ProtoWriter
{
    private readonly MemoryStream _stream = new();

    public byte[] ToArray() => _stream.ToArray();

    private void RawVarint(ulong v)
    {
        while (v >= 0x80)
        {
            _stream.WriteByte((byte)(v | 0x80));
            v >>= 7;
        }
        _stream.WriteByte((byte)v);
    }

    private void Tag(int field, int wireType) => RawVarint(((ulong)field << 3) | (uint)wireType);

    public ProtoWriter Varint(int field, long value)
    {
        Tag(field, 0);
        RawVarint(unchecked((ulong)value));
        return this;
    }

    public ProtoWriter Bytes(int field, ReadOnlySpan<byte> bytes)
    {
        Tag(field, 2);
        RawVarint((ulong)bytes.Length);
        _stream.Write(bytes);
        return this;
    }

    public ProtoWriter String(int field, string s) => Bytes(field, Encoding.UTF8.GetBytes(s));

    public ProtoWriter Message(int field, Action<ProtoWriter> build)
    {
        var inner = new ProtoWriter();
        build(inner);
        return Bytes(field, inner.ToArray());
    }
}

/// <summary>
/// Builds an ONNX model in memory (field numbers from onnx.proto: ModelProto, GraphProto, NodeProto, AttributeProto,
/// TensorProto, ValueInfoProto, TypeProto, TensorShapeProto, OperatorSetIdProto).
/// </summary>
internal sealed class OnnxModelWriter
{
    private const int FloatType = 1, Int64Type = 7;
    private readonly List<Action<ProtoWriter>> _nodes = new();
    private readonly List<Action<ProtoWriter>> _initializers = new();
    private readonly List<Action<ProtoWriter>> _inputs = new();
    private readonly List<Action<ProtoWriter>> _outputs = new();
    private int _nodeCount;

    /// <summary>A node attribute: int, ints or string.</summary>
    internal abstract record Attr(string Name);
    internal sealed record IntAttr(string Name, long Value) : Attr(Name);
    internal sealed record IntsAttr(string Name, long[] Values) : Attr(Name);
    internal sealed record StringAttr(string Name, string Value) : Attr(Name);

    public void Node(string opType, string[] inputs, string[] outputs, params Attr[] attributes)
    {
        string name = $"{opType}_{_nodeCount++}";
        _nodes.Add(w =>
        {
            foreach (var i in inputs) w.String(1, i);
            foreach (var o in outputs) w.String(2, o);
            w.String(3, name);
            w.String(4, opType);
            foreach (var a in attributes)
            {
                w.Message(5, aw =>
                {
                    aw.String(1, a.Name);
                    switch (a)
                    {
                        case IntAttr ia: aw.Varint(3, ia.Value); aw.Varint(20, 2); break;        // INT
                        case StringAttr sa: aw.String(4, sa.Value); aw.Varint(20, 3); break;     // STRING
                        case IntsAttr ii: foreach (var v in ii.Values) aw.Varint(8, v); aw.Varint(20, 7); break; // INTS
                    }
                });
            }
        });
    }

    public void FloatInitializer(string name, long[] dims, float[] data)
    {
        long count = dims.Aggregate(1L, (a, b) => a * b);
        if (count != data.Length) throw new ArgumentException($"initializer {name}: {data.Length} values for shape [{string.Join(",", dims)}]");
        byte[] raw = MemoryMarshal.AsBytes(data.AsSpan()).ToArray(); // little-endian, as ONNX raw_data requires
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian host");
        _initializers.Add(w =>
        {
            foreach (var d in dims) w.Varint(1, d);
            w.Varint(2, FloatType);
            w.String(8, name);
            w.Bytes(9, raw);
        });
    }

    public void Int64Initializer(string name, long[] values)
    {
        byte[] raw = MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
        _initializers.Add(w =>
        {
            w.Varint(1, values.Length);
            w.Varint(2, Int64Type);
            w.String(8, name);
            w.Bytes(9, raw);
        });
    }

    private static Action<ProtoWriter> ValueInfo(string name, long[] shape) => w =>
    {
        w.String(1, name);
        w.Message(2, type => type.Message(1, tensor =>
        {
            tensor.Varint(1, FloatType);
            tensor.Message(2, s =>
            {
                foreach (var d in shape) s.Message(1, dim => dim.Varint(1, d));
            });
        }));
    };

    public void Input(string name, params long[] shape) => _inputs.Add(ValueInfo(name, shape));

    public void Output(string name, params long[] shape) => _outputs.Add(ValueInfo(name, shape));

    public byte[] Build(int opset = 17, long irVersion = 8)
    {
        var model = new ProtoWriter();
        model.Varint(1, irVersion);
        model.String(2, "Recurrent.Bench");
        model.Message(7, g =>
        {
            foreach (var n in _nodes) g.Message(1, n);
            g.String(2, "bench");
            foreach (var i in _initializers) g.Message(5, i);
            foreach (var i in _inputs) g.Message(11, i);
            foreach (var o in _outputs) g.Message(12, o);
        });
        model.Message(8, op =>
        {
            op.String(1, "");
            op.Varint(2, opset);
        });
        return model.ToArray();
    }
}
