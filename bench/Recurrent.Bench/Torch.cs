using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Recurrent.Bench;

/// <summary>Loading libtorch (through TorchSharp) once, with the GLIBCXX patch applied first on Linux.</summary>
internal static class TorchRuntime
{
    private static bool _loaded;

    public static string Version { get; private set; } = "";

    public static void EnsureLoaded()
    {
        if (_loaded) return;
        // Must run before anything touches TorchSharp.torch (its static constructor loads libLibTorchSharp.so).
        string native = Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so");
        if (OperatingSystem.IsLinux() && File.Exists(native))
            foreach (string note in TorchParity.ElfVersionPatcher.PatchIfNeeded(native))
                Console.Error.WriteLine("elf-patch: " + note);
        Version = torch.__version__;
        set_default_dtype(float32);
        try { set_num_interop_threads(1); } catch (Exception) { /* only settable before first parallel work */ }
        _loaded = true;
    }

    public static void SetThreads(int n) => set_num_threads(n);

    public static Tensor FromArray(float[] data, params long[] shape) => tensor(data, shape);
}

/// <summary>libtorch nn.LSTM (batch_first) + nn.Linear head, holding copies of our parameters.</summary>
internal sealed class TorchLstm : IDisposable
{
    private readonly Fixture _f;
    private readonly LSTM _lstm;
    private readonly Linear _head;
    private readonly Tensor _x, _dy, _labels;
    private optim.Optimizer? _adam;

    public TorchLstm(Fixture f)
    {
        TorchRuntime.EnsureLoaded();
        _f = f;
        var s = f.Shape;
        _lstm = nn.LSTM(s.E, s.H, s.L, bias: true, batchFirst: true, dropout: 0, bidirectional: s.Bidirectional);
        _head = nn.Linear(s.OutputWidth, Fixture.Classes);
        using (no_grad())
        {
            int copied = 0;
            foreach (var (name, p) in _lstm.named_parameters())
            {
                CopyInto(p, f.Values("rnn." + name), name);
                copied++;
            }
            foreach (var (name, p) in _head.named_parameters())
            {
                CopyInto(p, f.Values("head." + name), name);
                copied++;
            }
            int expected = f.Network.Parameters.Parameters.Count;
            if (copied != expected)
                throw new InvalidOperationException($"copied {copied} parameters into libtorch, ours has {expected}");
        }
        _x = tensor(f.X, new long[] { s.B, s.T, s.E });
        _dy = f.OutputGradient.Length > 0 ? tensor(f.OutputGradient, new long[] { s.B, s.T, s.OutputWidth }) : zeros(1);
        _labels = tensor(f.Labels.Select(v => (long)v).ToArray(), new long[] { s.B });
    }

    private static void CopyInto(Tensor p, float[] values, string name)
    {
        if (p.numel() != values.Length)
            throw new InvalidOperationException($"{name}: libtorch has {p.numel()} elements, ours {values.Length}");
        p.copy_(tensor(values, p.shape));
    }

    /// <summary>Named parameters with the same names as ours (<c>rnn.*</c>, <c>head.*</c>).</summary>
    public IEnumerable<(string Name, Tensor P)> Parameters =>
        _lstm.named_parameters().Select(p => ("rnn." + p.name, (Tensor)p.parameter))
            .Concat(_head.named_parameters().Select(p => ("head." + p.name, (Tensor)p.parameter)));

    /// <summary>Inference: output [B,T,D·H] stays in libtorch (disposed at the end of the call).</summary>
    public void Infer()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (y, _, _) = _lstm.call(_x);
    }

    public float[] InferToArray()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (y, _, _) = _lstm.call(_x);
        return y.contiguous().data<float>().ToArray();
    }

    /// <summary>Forward + backward from the fixed upstream gradient (parameter gradients only).</summary>
    public void ForwardBackward()
    {
        using var scope = NewDisposeScope();
        _lstm.zero_grad();
        var (y, _, _) = _lstm.call(_x);
        y.backward(new[] { _dy });
    }

    /// <summary>Forward, head on cat(final fwd, final reverse state of the top layer), cross-entropy, backward. Returns (loss, logits).</summary>
    public (float Loss, float[] Logits) ClassifierForwardBackward(bool read)
    {
        using var scope = NewDisposeScope();
        _lstm.zero_grad();
        _head.zero_grad();
        var loss = ClassifierLoss(out var logits);
        loss.backward();
        return read ? (loss.item<float>(), logits.data<float>().ToArray()) : (0f, []);
    }

    private Tensor ClassifierLoss(out Tensor logits)
    {
        var s = _f.Shape;
        var (_, hN, _) = _lstm.call(_x);
        int top = (s.L - 1) * s.D;
        var features = s.Bidirectional ? cat(new[] { hN[top], hN[top + 1] }, 1) : hN[top];
        logits = _head.call(features);
        return nn.functional.cross_entropy(logits, _labels);
    }

    private optim.Optimizer Adam => _adam ??= optim.Adam(_lstm.parameters().Concat(_head.parameters()), lr: 1e-3);

    public void AdamStep() => Adam.step();

    /// <summary>A whole training step: zero_grad, forward, loss, backward, Adam step.</summary>
    public void TrainStep()
    {
        using var scope = NewDisposeScope();
        Adam.zero_grad();
        var loss = ClassifierLoss(out _);
        loss.backward();
        Adam.step();
    }

    public void Dispose()
    {
        _adam?.Dispose();
        _lstm.Dispose();
        _head.Dispose();
        _x.Dispose();
        _dy.Dispose();
        _labels.Dispose();
    }
}

/// <summary>torch.matmul on two square matrices.</summary>
internal sealed class TorchGemm : IDisposable
{
    private readonly Tensor _a, _b;

    public TorchGemm(int n, float[] a, float[] b)
    {
        TorchRuntime.EnsureLoaded();
        _a = tensor(a, new long[] { n, n });
        _b = tensor(b, new long[] { n, n });
    }

    public void Run()
    {
        using var scope = NewDisposeScope();
        matmul(_a, _b);
    }

    public float[] RunToArray()
    {
        using var scope = NewDisposeScope();
        return matmul(_a, _b).data<float>().ToArray();
    }

    public void Dispose()
    {
        _a.Dispose();
        _b.Dispose();
    }
}
