using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Kernels;
using Microsoft.ML.Recurrent.Layers.Cells;

namespace Recurrent.Bench;

/// <summary>
/// Where our time goes (<c>--breakdown</c>): replays the pieces of our LSTM stack's forward (and backward) with the
/// same kernel calls and shapes as RecurrentDirection — the input-projection GEMM, the per-step recurrent GEMMs and
/// the element-wise cell rows — timing each kind separately, and compares their sum with the real end-to-end call.
/// </summary>
internal static class Breakdown
{
    public static void Run(string c, Options o)
    {
        var s = Cases.ShapeOf(c, o.Smoke);
        bool backward = c is "d-train" or "b-train" or "e-train";
        int n = s.B * s.T, h = s.H, gw = 4 * h, ldy = s.OutputWidth;
        var rng = new SeededRandom(5);
        float[] Rand(int len) { var a = new float[len]; rng.FillUniform(a, -0.1f, 0.1f); return a; }
        int maxIn = Math.Max(s.E, s.OutputWidth);
        var x = Rand(n * maxIn);
        var wIh = Rand(gw * maxIn);
        var wHh = Rand(gw * h);
        var bias = Rand(gw);
        var gates = Rand(n * gw);
        var gh = Rand(s.B * gw);
        var y = Rand(n * ldy);
        var aux = Rand(n * h);
        var dG = Rand(n * gw);
        var dh = Rand(s.B * h);
        var dc = Rand(s.B * h);
        var dW = new float[gw * maxIn];
        var dX = new float[n * maxIn];
        var cell = LstmCell.Instance;

        var parts = new List<(string Name, double Ms, double Flop)>();
        void Time(string name, double flop, Action body)
        {
            body(); // warm-up
            var times = new List<double>();
            for (int i = 0; i < 3; i++)
            {
                long t0 = Stopwatch.GetTimestamp();
                body();
                times.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            }
            times.Sort();
            parts.Add((name, times[1], flop));
        }

        int dirs = s.L * s.D;
        // Pre-packed weights, as the layers use them (packed once per pass, once per model for an inference copy).
        var packIh = new Dictionary<int, PackedMatrix>();
        PackedMatrix Ih(int inSize) => packIh.TryGetValue(inSize, out var p) ? p : packIh[inSize] = Sgemm.PackB(Transpose.Yes, inSize, gw, wIh, inSize);
        PackedMatrix packHh = Sgemm.PackB(Transpose.Yes, h, gw, wHh, h);
        double inFlop = 0;
        for (int l = 0; l < s.L; l++) inFlop += 2.0 * n * gw * (l == 0 ? s.E : s.OutputWidth) * s.D;
        Time("forward: input projection GEMMs (N×4H×I)", inFlop, () =>
        {
            for (int l = 0; l < s.L; l++)
                for (int d = 0; d < s.D; d++)
                {
                    int inSize = l == 0 ? s.E : s.OutputWidth;
                    Sgemm.Multiply(Transpose.No, n, x, inSize, Ih(inSize), gates, gw, accumulate: false);
                }
        });
        Time("forward: recurrent GEMMs (T per direction, B×4H×H)", 2.0 * (s.T - 1) * s.B * gw * h * dirs, () =>
        {
            for (int k = 0; k < dirs; k++)
                for (int t = 1; t < s.T; t++)
                    Sgemm.Multiply(Transpose.No, s.B, y.AsSpan((t - 1) * s.B * ldy), ldy, packHh, gh, gw, accumulate: false);
        });
        Time("forward: LSTM cell rows (element-wise, with both biases)", 0, () =>
        {
            for (int k = 0; k < dirs; k++)
                for (int r = 0; r < n; r++)
                {
                    int j = r % s.B, prev = Math.Max(0, r - s.B);
                    cell.ForwardRow(gates.AsSpan(r * gw, gw), bias, gh.AsSpan(j * gw, gw), bias, y.AsSpan(prev * ldy, h), aux.AsSpan(prev * h, h),
                        y.AsSpan(r * ldy, h), aux.AsSpan(r * h, h));
                }
        });
        if (backward)
        {
            Time("backward: LSTM cell rows (element-wise)", 0, () =>
            {
                for (int k = 0; k < dirs; k++)
                    for (int r = 0; r < n; r++)
                    {
                        int j = r % s.B, prev = Math.Max(0, r - s.B);
                        cell.BackwardRow(gates.AsSpan(r * gw, gw), aux.AsSpan(r * h, h), y.AsSpan(prev * ldy, h), aux.AsSpan(prev * h, h),
                            y.AsSpan(r * ldy, h), dh.AsSpan(j * h, h), dc.AsSpan(j * h, h), dG.AsSpan(r * gw, gw), default);
                    }
            });
            Time("backward: recurrent GEMMs (T per direction, B×H×4H)", 2.0 * (s.T - 1) * s.B * gw * h * dirs, () =>
            {
                for (int k = 0; k < dirs; k++)
                    for (int t = 1; t < s.T; t++)
                        Sgemm.Multiply(Transpose.No, Transpose.No, s.B, h, gw, dG.AsSpan(t * s.B * gw), gw, wHh, h, dh, h, accumulate: false);
            });
            double wFlop = 0;
            for (int l = 0; l < s.L; l++)
            {
                int inSize = l == 0 ? s.E : s.OutputWidth;
                wFlop += s.D * (2.0 * gw * inSize * n + 2.0 * gw * h * n + (l > 0 ? 2.0 * n * inSize * gw : 0));
            }
            Time("backward: weight-gradient GEMMs (dW_ih, dW_hh) + dX GEMM", wFlop, () =>
            {
                for (int l = 0; l < s.L; l++)
                    for (int d = 0; d < s.D; d++)
                    {
                        int inSize = l == 0 ? s.E : s.OutputWidth;
                        Sgemm.Multiply(Transpose.Yes, Transpose.No, gw, inSize, n, dG, gw, x, inSize, dW, inSize, accumulate: true);
                        Sgemm.Multiply(Transpose.Yes, Transpose.No, gw, h, n, dG, gw, aux, h, dW, h, accumulate: true);
                        if (l > 0)
                            Sgemm.Multiply(Transpose.No, Transpose.No, n, inSize, gw, dG, gw, wIh, inSize, dX, inSize, accumulate: true);
                    }
            });
        }

        // The real thing, for comparison.
        var f = new Fixture(s, seed: 9, withOutputGradient: backward);
        var ours = new OursLstm(f);
        Action real = backward ? ours.ForwardBackward : ours.Infer;
        real();
        var m = Harness.Run(real, new Budget(0, 3, 3, 0));

        double sum = parts.Sum(p => p.Ms);
        Console.WriteLine($"breakdown of our {c} ({s}), {(backward ? "forward + backward" : "forward")}, 1 thread:");
        foreach (var (name, ms, flop) in parts)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {name,-58} {ms,9:F1} ms  {100 * ms / m.MedianMs,5:F1}%{(flop > 0 ? $"  {flop / (ms * 1e6),6:F1} GFLOP/s" : "")}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {"sum of the parts",-58} {sum,9:F1} ms  {100 * sum / m.MedianMs,5:F1}%"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {"measured end to end (median of 3)",-58} {m.MedianMs,9:F1} ms"));
    }
}
