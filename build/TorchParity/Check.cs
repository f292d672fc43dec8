using static TorchSharp.torch;

namespace TorchParity;

/// <summary>Self-checks; any failure throws so that no inconsistent fixture is ever written.</summary>
internal static class Check
{
    public static int Count { get; private set; }

    public static void That(bool condition, string what)
    {
        Count++;
        if (!condition)
        {
            throw new InvalidOperationException("SANITY CHECK FAILED: " + what);
        }
    }

    public static void Shape(Tensor t, long[] expected, string what) =>
        That(t.shape.SequenceEqual(expected), $"{what}: shape [{string.Join(",", t.shape)}], expected [{string.Join(",", expected)}]");

    /// <summary>Batch-first [B, T, ...] tensor must be exactly zero at every t ≥ lengths[b].</summary>
    public static void PaddedZero(Tensor batchFirst, int[] lengths, string what)
    {
        for (int b = 0; b < lengths.Length; b++)
        {
            long pad = batchFirst.shape[1] - lengths[b];
            if (pad > 0)
            {
                float maxAbs = batchFirst.select(0, b).narrow(0, lengths[b], pad).abs().max().item<float>();
                That(maxAbs == 0f, $"{what}: sequence {b} has |value| {maxAbs} at padded steps");
            }

            float realAbs = batchFirst.select(0, b).narrow(0, 0, lengths[b]).abs().max().item<float>();
            That(realAbs > 0f, $"{what}: sequence {b} is all zero at its real steps");
        }
    }

    /// <summary>The last layer's h_n (forward) equals the output at the last real step; (reverse) equals the output at step 0.</summary>
    public static void LastStepMatchesHN(Tensor output, Tensor hn, int[] lengths, int layers, int directions, int hidden, string what)
    {
        for (int b = 0; b < lengths.Length; b++)
        {
            Tensor fwdOut = output[b, lengths[b] - 1].narrow(0, 0, hidden);
            Tensor fwdH = hn[((layers - 1) * directions) + 0, b];
            Check.That(Check.Same(fwdOut, fwdH), $"{what}: h_n forward of sequence {b} != output at its last real step");
            if (directions == 2)
            {
                Tensor revOut = output[b, 0].narrow(0, hidden, hidden);
                Tensor revH = hn[((layers - 1) * directions) + 1, b];
                Check.That(Check.Same(revOut, revH), $"{what}: h_n reverse of sequence {b} != output at step 0");
            }
        }
    }

    /// <summary>
    /// |a - b| ≤ atol·max(1, max|b|) + rtol·|b| elementwise (float32 vs an independently ordered float32 computation).
    /// The absolute term scales with the tensor: a gradient summed over many steps and units carries rounding in
    /// proportion to its largest entries, which lands on its small entries too.
    /// </summary>
    public static void Close(Tensor a, Tensor b, string what, double atol = 2e-6, double rtol = 2e-5)
    {
        Shape(a, b.shape, what);
        using Tensor ad = a.detach().to_type(ScalarType.Float64), bd = b.detach().to_type(ScalarType.Float64);
        double scale = Math.Max(1, bd.numel() == 0 ? 0 : bd.abs().max().item<double>());
        using Tensor excess = (ad - bd).abs() - ((atol * scale) + (rtol * bd.abs()));
        double worst = excess.max().item<double>();
        double maxDiff = (ad - bd).abs().max().item<double>();
        That(worst <= 0, $"{what}: max |diff| {maxDiff:G6} exceeds tolerance (max |value| {scale:G4})");
        MaxDiffSeen = Math.Max(MaxDiffSeen, maxDiff);
    }

    /// <summary>Same shape and bitwise-equal values (no NaNs expected).</summary>
    public static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && (a.detach() == b.detach()).all().item<bool>();

    public static double MaxDiffSeen { get; private set; }
}
