using Microsoft.ML.OnnxRuntime;

namespace Recurrent.Bench;

/// <summary>
/// ONNX Runtime running a stack of ONNX LSTM nodes built from our parameters. Input x [B,T,E] (batch-first, like the
/// other implementations), output y [B,T,D·H]. Graph: Transpose(1,0,2) → per layer LSTM (Y [T,D,B,H]) → Transpose(0,2,1,3)
/// + Reshape [T,B,D·H] between layers; after the top layer Transpose(2,0,1,3) + Reshape [B,T,D·H].
/// ONNX gate order is i,o,f,c (PyTorch i,f,g,o); B is [D, 8H] = Wb then Rb.
/// </summary>
internal sealed class OnnxLstm : IDisposable
{
    private readonly Fixture _f;
    private readonly byte[] _model;
    private readonly Dictionary<int, InferenceSession> _sessions = new();
    private readonly OrtValue _input, _output;
    private readonly RunOptions _runOptions = new();
    private readonly string[] _inputNames = ["x"], _outputNames = ["y"];
    private readonly OrtValue[] _inputs, _outputs;

    public float[] Output { get; }

    public static string Version => OrtEnv.Instance().GetVersionString();

    public OnnxLstm(Fixture f)
    {
        _f = f;
        var s = f.Shape;
        _model = BuildModel(f);
        Output = new float[s.B * s.T * s.OutputWidth];
        _input = OrtValue.CreateTensorValueFromMemory(f.X, new long[] { s.B, s.T, s.E });
        _output = OrtValue.CreateTensorValueFromMemory(Output, new long[] { s.B, s.T, s.OutputWidth });
        _inputs = [_input];
        _outputs = [_output];
    }

    // PyTorch block order i,f,g,o → ONNX i,o,f,c: ONNX block k takes PyTorch block Map[k].
    private static readonly int[] Map = [0, 3, 1, 2];

    private static float[] Reorder(float[] torchRows, int h, int cols)
    {
        var r = new float[torchRows.Length];
        for (int k = 0; k < 4; k++)
            Array.Copy(torchRows, Map[k] * h * cols, r, k * h * cols, h * cols);
        return r;
    }

    private static byte[] BuildModel(Fixture f)
    {
        var s = f.Shape;
        int h = s.H;
        var m = new OnnxModelWriter();
        m.Input("x", s.B, s.T, s.E);
        m.Output("y", s.B, s.T, s.OutputWidth);
        m.Int64Initializer("shape_tb", [0, 0, -1]);
        m.Node("Transpose", ["x"], ["x_tbe"], new OnnxModelWriter.IntsAttr("perm", [1, 0, 2]));
        string input = "x_tbe";
        for (int l = 0; l < s.L; l++)
        {
            int inSize = l == 0 ? s.E : s.OutputWidth;
            var w = new List<float>();
            var r = new List<float>();
            var b = new List<float>();
            for (int d = 0; d < s.D; d++)
            {
                string suffix = $"_l{l}{(d == 1 ? "_reverse" : "")}";
                w.AddRange(Reorder(f.Values("rnn.weight_ih" + suffix), h, inSize));
                r.AddRange(Reorder(f.Values("rnn.weight_hh" + suffix), h, h));
                b.AddRange(Reorder(f.Values("rnn.bias_ih" + suffix), h, 1));
                b.AddRange(Reorder(f.Values("rnn.bias_hh" + suffix), h, 1));
            }
            m.FloatInitializer($"W{l}", [s.D, 4 * h, inSize], w.ToArray());
            m.FloatInitializer($"R{l}", [s.D, 4 * h, h], r.ToArray());
            m.FloatInitializer($"B{l}", [s.D, 8 * h], b.ToArray());
            m.Node("LSTM", [input, $"W{l}", $"R{l}", $"B{l}"], [$"Y{l}"],
                new OnnxModelWriter.IntAttr("hidden_size", h),
                new OnnxModelWriter.StringAttr("direction", s.Bidirectional ? "bidirectional" : "forward"));
            bool top = l == s.L - 1;
            if (!top)
            {
                m.Node("Transpose", [$"Y{l}"], [$"Y{l}_tbdh"], new OnnxModelWriter.IntsAttr("perm", [0, 2, 1, 3]));
                m.Node("Reshape", [$"Y{l}_tbdh", "shape_tb"], [$"X{l + 1}"]);
                input = $"X{l + 1}";
            }
            else
            {
                m.Node("Transpose", [$"Y{l}"], [$"Y{l}_btdh"], new OnnxModelWriter.IntsAttr("perm", [2, 0, 1, 3]));
                m.Node("Reshape", [$"Y{l}_btdh", "shape_tb"], ["y"]);
            }
        }
        return m.Build();
    }

    private InferenceSession Session(int threads)
    {
        if (!_sessions.TryGetValue(threads, out var session))
        {
            using var options = new SessionOptions
            {
                IntraOpNumThreads = threads,
                InterOpNumThreads = 1,
                ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
                GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            };
            session = new InferenceSession(_model, options);
            _sessions.Add(threads, session);
        }
        return session;
    }

    /// <summary>One inference into the preallocated output buffer.</summary>
    public void Infer(int threads) => Session(threads).Run(_runOptions, _inputNames, _inputs, _outputNames, _outputs);

    public void Dispose()
    {
        foreach (var s in _sessions.Values) s.Dispose();
        _input.Dispose();
        _output.Dispose();
        _runOptions.Dispose();
    }
}
