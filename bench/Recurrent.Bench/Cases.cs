using System.Globalization;
using Microsoft.ML.Recurrent.Core;

namespace Recurrent.Bench;

/// <summary>The benchmark cases: set-up, numerical cross-checks (before any timing), and timing per thread count.</summary>
internal static class Cases
{
    public const float Tolerance = 1e-4f;
    public const int GemmSize = 1024;

    public static LstmShape ShapeOf(string c, bool smoke) => (c, smoke) switch
    {
        ("a-infer" or "b-train", false) => new LstmShape(32, 64, 128, 256, 2, true),
        ("c-latency", false) => new LstmShape(1, 32, 64, 128, 1, true),
        ("d-train" or "d-infer", false) => new LstmShape(64, 128, 300, 512, 2, true),
        ("e-train", false) => new LstmShape(32, 64, 128, 256, 2, false),
        ("e-train", true) => new LstmShape(4, 8, 24, 32, 2, false),
        ("c-latency", true) => new LstmShape(1, 8, 16, 16, 1, true),
        (_, true) => new LstmShape(4, 8, 24, 32, 2, true),
        _ => throw new ArgumentException(c),
    };

    private static Budget BudgetOf(string c, Options o)
    {
        var b = c switch
        {
            "a-infer" => new Budget(3, 10, 100, 4.0),
            "b-train" => new Budget(2, 5, 50, 5.0),
            "c-latency" => new Budget(200, 500, 20_000, 2.0),
            "d-infer" => new Budget(1, 3, 10, 8.0),
            "d-train" => new Budget(1, 3, 5, 0.0),
            "e-train" => new Budget(2, 5, 50, 5.0),
            "gemm-1024" => new Budget(3, 10, 200, 3.0),
            _ => throw new ArgumentException(c),
        };
        if (o.Smoke) return new Budget(1, 3, 3, 0);
        return o.Quick ? b.Quick() : b;
    }

    public static List<Record> Run(string c, Options o) => c switch
    {
        "gemm-1024" => Gemm(o),
        "a-infer" or "c-latency" or "d-infer" => Inference(c, o),
        "b-train" => Training(o),
        "d-train" or "e-train" => ForwardBackward(c, o),
        _ => throw new ArgumentException(c),
    };

    // ---------------------------------------------------------------- gemm-1024

    private static List<Record> Gemm(Options o)
    {
        int n = o.Smoke ? 128 : GemmSize;
        var rng = new SeededRandom(77);
        var a = new float[n * n];
        var b = new float[n * n];
        float bound = MathF.Sqrt(3f) / MathF.Pow(n, 0.25f); // entries of C have variance ≈ 1
        rng.FillUniform(a, -bound, bound);
        rng.FillUniform(b, -bound, bound);
        var ours = new OursGemm(n, a, b);
        using var torch = new TorchGemm(n, a, b);
        Console.WriteLine($"gemm-1024: C[{n},{n}] = A[{n},{n}]·B[{n},{n}], float32, row-major");
        ours.Run(1);
        TorchRuntime.SetThreads(1);
        Check("gemm-1024", "libtorch", ours.C, torch.RunToArray());

        if (o.CheckOnly) return [];
        var budget = BudgetOf("gemm-1024", o);
        double flop = 2.0 * n * n * n;
        var records = new List<Record>();
        foreach (int t in o.Threads)
        {
            var mo = Harness.Run(() => ours.Run(t), budget);
            TorchRuntime.SetThreads(t);
            var mt = Harness.Run(torch.Run, budget);
            var r = new Record { Case = "gemm-1024", Threads = t, Ours = mo, Peer = "libtorch", PeerM = mt };
            r.Extra["ours_gflops"] = Math.Round(flop / (mo.MedianMs * 1e6), 1);
            r.Extra["peer_gflops"] = Math.Round(flop / (mt.MedianMs * 1e6), 1);
            r.Extra["ours_threads_used"] = t;
            Report(r);
            records.Add(r);
        }
        return records;
    }

    // ---------------------------------------------------------------- inference: a-infer, c-latency, d-infer

    private static List<Record> Inference(string c, Options o)
    {
        var s = ShapeOf(c, o.Smoke);
        bool withOnnx = c == "d-infer" || c == "a-infer" || c == "c-latency";
        Console.WriteLine($"{c}: LSTM {s}, inference, output = top-layer outputs [B,T,D·H]");
        var f = new Fixture(s, seed: 1000 + c.Length);
        var ours = new OursLstm(f);
        using var torch = new TorchLstm(f);
        using var onnx = withOnnx ? new OnnxLstm(f) : null;

        ours.Infer();
        TorchRuntime.SetThreads(1);
        Check(c, "libtorch", ours.Output, torch.InferToArray());
        if (onnx is not null)
        {
            onnx.Infer(1);
            Check(c, "onnxruntime", ours.Output, onnx.Output);
        }

        if (o.CheckOnly) return [];
        var budget = BudgetOf(c, o);
        var records = new List<Record>();
        foreach (int t in o.Threads)
        {
            ours.Threads = t;
            var mo = Harness.Run(ours.Infer, budget);
            TorchRuntime.SetThreads(t);
            var mt = Harness.Run(torch.Infer, budget);
            records.Add(Report(Make(c, t, mo, "libtorch", mt)));
            if (onnx is not null)
            {
                onnx.Infer(t); // creates the session for this thread count outside the timing
                var mx = Harness.Run(() => onnx.Infer(t), budget);
                records.Add(Report(Make(c, t, mo, "onnxruntime", mx)));
            }
        }
        return records;
    }

    // ---------------------------------------------------------------- b-train

    private static List<Record> Training(Options o)
    {
        const string c = "b-train";
        var s = ShapeOf(c, o.Smoke);
        Console.WriteLine($"{c}: LSTM {s} → Linear({s.OutputWidth}, {Fixture.Classes}) on cat(final fwd, final reverse state of the top layer)"
            + " → cross-entropy (mean) → backward → Adam(lr 1e-3)");
        var f = new Fixture(s, seed: 2000);
        var ours = new OursLstm(f);
        using var torch = new TorchLstm(f);
        TorchRuntime.SetThreads(1);

        ours.ClassifierForwardBackward();
        var (torchLoss, torchLogits) = torch.ClassifierForwardBackward(read: true);
        Check(c + " logits", "libtorch", ours.Logits, torchLogits);
        Check(c + " loss", "libtorch", [ours.LastLoss], [torchLoss]);
        CheckGradients(c, f, torch);
        ours.AdamStep();
        torch.AdamStep();
        CheckParameters(c + " after one Adam step", f, torch);

        if (o.CheckOnly) return [];
        var budget = BudgetOf(c, o);
        var records = new List<Record>();
        foreach (int t in o.Threads)
        {
            ours.Threads = t;
            var mo = Harness.Run(ours.TrainStep, budget);
            TorchRuntime.SetThreads(t);
            var mt = Harness.Run(torch.TrainStep, budget);
            records.Add(Report(Make(c, t, mo, "libtorch", mt)));
        }
        return records;
    }

    // ---------------------------------------------------------------- d-train

    // e-train: the same on a unidirectional stack (the language models' and forecasters' shape), where the two threads
    // cannot take a direction each.
    private static List<Record> ForwardBackward(string c, Options o)
    {
        var s = ShapeOf(c, o.Smoke);
        Console.WriteLine($"{c}: LSTM {s}, forward + backward from a fixed random gradient on the top-layer outputs (parameter gradients)");
        var f = new Fixture(s, seed: c == "d-train" ? 3000 : 5000, withOutputGradient: true);
        var ours = new OursLstm(f);
        using var torch = new TorchLstm(f);
        TorchRuntime.SetThreads(1);

        ours.ForwardBackward();
        torch.ForwardBackward();
        CheckGradients(c, f, torch);

        if (o.CheckOnly) return [];
        var budget = BudgetOf(c, o);
        var records = new List<Record>();
        foreach (int t in o.Threads)
        {
            ours.Threads = t;
            var mo = Harness.Run(ours.ForwardBackward, budget);
            TorchRuntime.SetThreads(t);
            var mt = Harness.Run(torch.ForwardBackward, budget);
            records.Add(Report(Make(c, t, mo, "libtorch", mt)));
        }
        return records;
    }

    // ---------------------------------------------------------------- helpers

    private static Record Make(string c, int t, Measurement ours, string peer, Measurement m)
    {
        var r = new Record { Case = c, Threads = t, Ours = ours, Peer = peer, PeerM = m };
        r.Extra["ours_threads_used"] = t;
        return r;
    }

    private static Record Report(Record r)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  threads {r.Threads}: ours {Program.Ms(r.Ours.MedianMs)} ms (min {Program.Ms(r.Ours.MinMs)}, n={r.Ours.Iterations}, alloc {r.Ours.AllocatedBytesPerCall} B/call)"
            + $" | {r.Peer} {Program.Ms(r.PeerM.MedianMs)} ms (min {Program.Ms(r.PeerM.MinMs)}, n={r.PeerM.Iterations}) | ratio {r.Ratio:F2}"));
        return r;
    }

    /// <summary>Element-wise agreement within <see cref="Tolerance"/> (absolute); throws otherwise.</summary>
    private static void Check(string what, string peer, ReadOnlySpan<float> ours, ReadOnlySpan<float> reference)
    {
        if (ours.Length != reference.Length)
            throw new CheckFailedException($"{what}: ours has {ours.Length} values, {peer} {reference.Length}");
        var (diff, at) = MaxDiff(ours, reference);
        string msg = string.Create(CultureInfo.InvariantCulture, $"  check {what} vs {peer}: max |Δ| = {diff:E2} over {ours.Length} values");
        if (!(diff <= Tolerance))
            throw new CheckFailedException($"{msg} (at {at}: ours {ours[at]}, {peer} {reference[at]}) exceeds {Tolerance:E0}");
        Console.WriteLine(msg + " ✓");
    }

    private static (float Diff, int At) MaxDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        float max = 0;
        int at = 0;
        for (int i = 0; i < a.Length; i++)
        {
            float d = MathF.Abs(a[i] - b[i]);
            if (!(d <= max)) { max = d; at = i; } // NaN counts as a failure
        }
        return (max, at);
    }

    /// <summary>
    /// Parameter gradients: max |Δ| ≤ 1e-4 · max(1, max |g|) per tensor. Gradients are sums over all B·T steps, so the
    /// tolerance is relative to the tensor's scale once that exceeds 1.
    /// </summary>
    private static void CheckGradients(string what, Fixture f, TorchLstm torch)
    {
        float worst = 0;
        string worstName = "";
        foreach (var (name, p) in torch.Parameters)
        {
            if (name.StartsWith("head.", StringComparison.Ordinal) && what is "d-train" or "e-train") continue; // head unused there
            using var g = p.grad ?? throw new CheckFailedException($"{what}: libtorch has no gradient for {name}");
            var reference = g.data<float>().ToArray();
            var ours = f.Network.Parameters.Gradient(f.Network.Parameters[name]);
            var (diff, at) = MaxDiff(ours, reference);
            float scale = MathF.Max(1f, reference.Max(MathF.Abs));
            if (!(diff <= Tolerance * scale))
                throw new CheckFailedException(string.Create(CultureInfo.InvariantCulture,
                    $"{what}: gradient of {name}: max |Δ| = {diff:E2} (at {at}: ours {ours[at]}, libtorch {reference[at]}), scale {scale:G3}"));
            if (diff / scale > worst) { worst = diff / scale; worstName = name; }
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  check {what} parameter gradients vs libtorch: worst max |Δ|/max(1,max|g|) = {worst:E2} ({worstName}) ✓"));
    }

    /// <summary>Parameters after an optimizer step, within <see cref="Tolerance"/> (absolute).</summary>
    private static void CheckParameters(string what, Fixture f, TorchLstm torch)
    {
        float worst = 0;
        foreach (var (name, p) in torch.Parameters)
        {
            var reference = p.data<float>().ToArray();
            var ours = f.Network.Parameters.Value(f.Network.Parameters[name]);
            var (diff, at) = MaxDiff(ours, reference);
            if (!(diff <= Tolerance))
                throw new CheckFailedException(string.Create(CultureInfo.InvariantCulture,
                    $"{what}: {name}: max |Δ| = {diff:E2} (at {at}: ours {ours[at]}, libtorch {reference[at]})"));
            worst = MathF.Max(worst, diff);
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  check {what} vs libtorch: max |Δ| = {worst:E2} ✓"));
    }
}
