using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Microsoft.ML.Recurrent.Kernels;

/// <summary>
/// Vectorized exp, sigmoid and tanh for the fused gate kernels, accurate to a few 1e−7 absolute (the recurrent layers'
/// contract with PyTorch is 1e−5). exp uses the textbook reduction x = n·ln2 + r, |r| ≤ ln2/2, with ln2 split in two
/// parts (Cody–Waite) so r is exact, and exp(r) by its Taylor series to degree 7 (truncation below 1e−8 relative);
/// 2ⁿ is built in the exponent bits. Inputs are clamped so nothing overflows: σ and tanh saturate exactly as in float.
/// <para>The scalar versions use <see cref="MathF"/> and serve the tails of vectors that are not a multiple of 16 long.</para>
/// </summary>
internal static class VectorMath
{
    private const float Ln2High = 0.693145751953125f;        // ln 2 rounded to 16 significant bits: n·Ln2High is exact
    private const float Ln2Low = 1.42860682030941723212e-6f; // ln 2 − Ln2High
    private const float Log2E = 1.44269504088896341f;
    private const float MaxInput = 88.0f;                     // exp(88) < float.MaxValue
    private const float MinInput = -87.0f;                    // exp(−87) is still a normal float

    /// <summary>exp(x) for every lane, x clamped to [−87, 88].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        x = Vector512.Min(Vector512.Max(x, Vector512.Create(MinInput)), Vector512.Create(MaxInput));
        Vector512<float> n = Vector512.Round(x * Vector512.Create(Log2E));
        Vector512<float> r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2High), x);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Low), r);
        // exp(r) = Σ_{i≤7} rⁱ/i!, Horner form.
        Vector512<float> p = Vector512.Create(1f / 5040f);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 720f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 120f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 24f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 6f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(0.5f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        // 2ⁿ: n + 127 in the exponent field (n ∈ [−126, 127] after the clamp).
        Vector512<int> bits = (Vector512.ConvertToInt32(n) + Vector512.Create(127)) << 23;
        return p * bits.AsSingle();
    }

    /// <summary>σ(x) = 1 / (1 + exp(−x)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Sigmoid(Vector512<float> x) => Vector512<float>.One / (Vector512<float>.One + Exp(-x));

    /// <summary>tanh(x) = 1 − 2 / (exp(2x) + 1); absolute error a few 1e−7 near 0, exact ±1 saturation.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Tanh(Vector512<float> x) =>
        Vector512<float>.One - Vector512.Create(2f) / (Exp(x + x) + Vector512<float>.One);

    /// <summary>Scalar σ for tails.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sigmoid(float x) => 1f / (1f + MathF.Exp(-x));
}
