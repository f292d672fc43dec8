using System.Runtime.CompilerServices;

namespace Microsoft.ML.Recurrent.Kernels;

/// <summary>
/// Vectorized exp, sigmoid and tanh for the fused gate kernels, at any width (<see cref="ISimd{TSelf}"/>), accurate to
/// a few 1e−7 absolute (the recurrent layers' contract with PyTorch is 1e−5). exp uses the textbook reduction
/// x = n·ln2 + r, |r| ≤ ln2/2, with ln2 split in two parts (Cody–Waite) so r is exact, and exp(r) by its Taylor series
/// to degree 7 (truncation below 1e−8 relative); 2ⁿ is built in the exponent bits. Inputs are clamped so nothing
/// overflows: σ and tanh saturate exactly as in float.
/// <para>At <see cref="Simd1"/> these are the scalar versions the kernels' tails use, so a tail element gets the same
/// bits as a vector lane. The kernels' scalar references use <see cref="MathF"/> instead and are independent of this file.</para>
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
    public static TV Exp<TV>(TV x) where TV : struct, ISimd<TV>
    {
        x = TV.Min(TV.Max(x, TV.Create(MinInput)), TV.Create(MaxInput));
        TV n = TV.Round(x * TV.Create(Log2E));
        // n·Ln2High is exact (n has at most 8 significant bits, Ln2High 16), so the first step is exact fused or not.
        TV r = TV.MultiplyAdd(n, TV.Create(-Ln2High), x);
        r = TV.MultiplyAdd(n, TV.Create(-Ln2Low), r);
        // exp(r) = Σ_{i≤7} rⁱ/i!, Horner form.
        TV p = TV.Create(1f / 5040f);
        p = TV.MultiplyAdd(p, r, TV.Create(1f / 720f));
        p = TV.MultiplyAdd(p, r, TV.Create(1f / 120f));
        p = TV.MultiplyAdd(p, r, TV.Create(1f / 24f));
        p = TV.MultiplyAdd(p, r, TV.Create(1f / 6f));
        p = TV.MultiplyAdd(p, r, TV.Create(0.5f));
        p = TV.MultiplyAdd(p, r, TV.Create(1f));
        p = TV.MultiplyAdd(p, r, TV.Create(1f));
        // 2ⁿ: n ∈ [−126, 127] after the clamp.
        return p * TV.PowerOfTwo(n);
    }

    /// <summary>σ(x) = 1 / (1 + exp(−x)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Sigmoid<TV>(TV x) where TV : struct, ISimd<TV> => TV.Create(1f) / (TV.Create(1f) + Exp(-x));

    /// <summary>tanh(x) = 1 − 2 / (exp(2x) + 1); absolute error a few 1e−7 near 0, exact ±1 saturation.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Tanh<TV>(TV x) where TV : struct, ISimd<TV> =>
        TV.Create(1f) - TV.Create(2f) / (Exp(x + x) + TV.Create(1f));
}
