using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.ML.Recurrent.Kernels;

namespace Microsoft.ML.Recurrent.Layers.Cells;

/// <summary>
/// LSTM, exactly as PyTorch <c>nn.LSTM</c> (gate blocks in the order i, f, g, o):
/// <code>
///   i = σ(W_ii x + b_ii + W_hi h + b_hi)     f = σ(W_if x + b_if + W_hf h + b_hf)
///   g = tanh(W_ig x + b_ig + W_hg h + b_hg)  o = σ(W_io x + b_io + W_ho h + b_ho)
///   c' = f ⊙ c + i ⊙ g                       h' = o ⊙ tanh(c')
/// </code>
/// Each pre-activation is summed as ((W_i· x + b_i·) + W_h· h) + b_h·. gates keep the activated i, f, g, o; aux keeps c'.
/// </summary>
internal sealed class LstmCell : RecurrentCell
{
    public static readonly LstmCell Instance = new();

    public override int Gates => 4;
    public override bool UsesAux => true;
    public override bool HasDirectStateGradient => false;
    public override bool SeparateRecurrentGradient => false;

    public override void ForwardRow(Span<float> gates, ReadOnlySpan<float> biasIh, ReadOnlySpan<float> gh, ReadOnlySpan<float> biasHh,
        ReadOnlySpan<float> hPrev, ReadOnlySpan<float> cPrev, Span<float> h, Span<float> c)
    {
        switch (FusedKernels.Current())
        {
            case KernelPath.Avx512: Forward<Simd512>(gates, biasIh, gh, biasHh, cPrev, h, c); break;
            case KernelPath.Avx2: Forward<Simd256>(gates, biasIh, gh, biasHh, cPrev, h, c); break;
            default: Forward<Simd128>(gates, biasIh, gh, biasHh, cPrev, h, c); break;
        }
    }

    /// <summary>One pass over the hidden units, <typeparamref name="TV"/>'s width at a time, then the tail one at a time: all four gates, the cell and the output together.</summary>
    private static void Forward<TV>(Span<float> gates, ReadOnlySpan<float> biasIh, ReadOnlySpan<float> gh, ReadOnlySpan<float> biasHh,
        ReadOnlySpan<float> cPrev, Span<float> h, Span<float> c) where TV : struct, ISimd<TV>
    {
        int n = h.Length; // H
        // Every unchecked access below stays inside these lengths: gates, b_ih, gh, b_hh [4·H]; c_prev, c [H].
        FusedKernels.RequireLength(gates.Length, 4L * n, nameof(gates));
        FusedKernels.RequireLength(biasIh.Length, 4L * n, nameof(biasIh));
        FusedKernels.RequireLength(gh.Length, 4L * n, nameof(gh));
        FusedKernels.RequireLength(biasHh.Length, 4L * n, nameof(biasHh));
        FusedKernels.RequireLength(cPrev.Length, n, nameof(cPrev));
        FusedKernels.RequireLength(c.Length, n, nameof(c));
        ref float gx = ref MemoryMarshal.GetReference(gates);
        ref readonly float bi = ref MemoryMarshal.GetReference(biasIh);
        ref readonly float r = ref MemoryMarshal.GetReference(gh);
        ref readonly float b = ref MemoryMarshal.GetReference(biasHh);
        ref readonly float cp = ref MemoryMarshal.GetReference(cPrev);
        ref float hv = ref MemoryMarshal.GetReference(h);
        ref float cv = ref MemoryMarshal.GetReference(c);
        int k = ForwardRange<TV>(ref gx, in bi, in r, in b, in cp, ref hv, ref cv, n, 0);
        if (k < n)
            ForwardRange<Simd1>(ref gx, in bi, in r, in b, in cp, ref hv, ref cv, n, k);
    }

    /// <summary>Whole <typeparamref name="TV"/> vectors of hidden units from <paramref name="k"/>; returns the first unit left.</summary>
    /// <remarks>Not inlined: each width's loop gets the JIT's whole inlining budget for the dozens of vector operations its body expands to.</remarks>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int ForwardRange<TV>(ref float gx, ref readonly float bi, ref readonly float r, ref readonly float b, ref readonly float cp,
        ref float hv, ref float cv, int n, int k) where TV : struct, ISimd<TV>
    {
        for (; k + TV.Count <= n; k += TV.Count)
            ForwardAt<TV>(ref gx, in bi, in r, in b, in cp, ref hv, ref cv, (nuint)n, (nuint)k);
        return k;
    }

    /// <summary>Hidden units k … k + width − 1; gate block j of unit k is at j·H + k.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ForwardAt<TV>(ref float gx, ref readonly float bi, ref readonly float r, ref readonly float b, ref readonly float cp,
        ref float hv, ref float cv, nuint n, nuint k) where TV : struct, ISimd<TV>
    {
        nuint ki = k, kf = n + k, kg = 2 * n + k, ko = 3 * n + k;
        TV i = VectorMath.Sigmoid(TV.Load(in gx, ki) + TV.Load(in bi, ki) + TV.Load(in r, ki) + TV.Load(in b, ki));
        TV f = VectorMath.Sigmoid(TV.Load(in gx, kf) + TV.Load(in bi, kf) + TV.Load(in r, kf) + TV.Load(in b, kf));
        TV g = VectorMath.Tanh(TV.Load(in gx, kg) + TV.Load(in bi, kg) + TV.Load(in r, kg) + TV.Load(in b, kg));
        TV o = VectorMath.Sigmoid(TV.Load(in gx, ko) + TV.Load(in bi, ko) + TV.Load(in r, ko) + TV.Load(in b, ko));
        TV cNew = TV.MultiplyAdd(i, g, f * TV.Load(in cp, ki));
        TV.Store(i, ref gx, ki);
        TV.Store(f, ref gx, kf);
        TV.Store(g, ref gx, kg);
        TV.Store(o, ref gx, ko);
        TV.Store(cNew, ref cv, ki);
        TV.Store(o * VectorMath.Tanh(cNew), ref hv, ki);
    }

    public override void ForwardRowReference(Span<float> gates, ReadOnlySpan<float> biasIh, ReadOnlySpan<float> gh, ReadOnlySpan<float> biasHh,
        ReadOnlySpan<float> hPrev, ReadOnlySpan<float> cPrev, Span<float> h, Span<float> c)
    {
        int n = h.Length; // H
        for (int k = 0; k < n; k++)
        {
            float i = Sigmoid(gates[k] + biasIh[k] + gh[k] + biasHh[k]);
            float f = Sigmoid(gates[n + k] + biasIh[n + k] + gh[n + k] + biasHh[n + k]);
            float g = MathF.Tanh(gates[2 * n + k] + biasIh[2 * n + k] + gh[2 * n + k] + biasHh[2 * n + k]);
            float o = Sigmoid(gates[3 * n + k] + biasIh[3 * n + k] + gh[3 * n + k] + biasHh[3 * n + k]);
            gates[k] = i; gates[n + k] = f; gates[2 * n + k] = g; gates[3 * n + k] = o;
            c[k] = f * cPrev[k] + i * g;
            h[k] = o * MathF.Tanh(c[k]);
        }
    }

    public override void BackwardRow(ReadOnlySpan<float> gates, ReadOnlySpan<float> c, ReadOnlySpan<float> hPrev,
        ReadOnlySpan<float> cPrev, ReadOnlySpan<float> h, Span<float> dh, Span<float> dc, Span<float> dGx, Span<float> dGh)
    {
        switch (FusedKernels.Current())
        {
            case KernelPath.Avx512: Backward<Simd512>(gates, c, cPrev, h.Length, dh, dc, dGx); break;
            case KernelPath.Avx2: Backward<Simd256>(gates, c, cPrev, h.Length, dh, dc, dGx); break;
            default: Backward<Simd128>(gates, c, cPrev, h.Length, dh, dc, dGx); break;
        }
    }

    private static void Backward<TV>(ReadOnlySpan<float> gates, ReadOnlySpan<float> c, ReadOnlySpan<float> cPrev, int n,
        Span<float> dh, Span<float> dc, Span<float> dGx) where TV : struct, ISimd<TV>
    {
        // Every unchecked access below stays inside these lengths: gates, dGx [4·H]; c, c_prev, dh, dc [H].
        FusedKernels.RequireLength(gates.Length, 4L * n, nameof(gates));
        FusedKernels.RequireLength(c.Length, n, nameof(c));
        FusedKernels.RequireLength(cPrev.Length, n, nameof(cPrev));
        FusedKernels.RequireLength(dh.Length, n, nameof(dh));
        FusedKernels.RequireLength(dc.Length, n, nameof(dc));
        FusedKernels.RequireLength(dGx.Length, 4L * n, nameof(dGx));
        ref readonly float gt = ref MemoryMarshal.GetReference(gates);
        ref readonly float cv = ref MemoryMarshal.GetReference(c);
        ref readonly float cp = ref MemoryMarshal.GetReference(cPrev);
        ref float dhv = ref MemoryMarshal.GetReference(dh);
        ref float dcv = ref MemoryMarshal.GetReference(dc);
        ref float dg = ref MemoryMarshal.GetReference(dGx);
        int k = BackwardRange<TV>(in gt, in cv, in cp, ref dhv, ref dcv, ref dg, n, 0);
        if (k < n)
            BackwardRange<Simd1>(in gt, in cv, in cp, ref dhv, ref dcv, ref dg, n, k);
    }

    /// <summary>Whole <typeparamref name="TV"/> vectors of hidden units from <paramref name="k"/>; returns the first unit left.</summary>
    /// <remarks>Not inlined: each width's loop gets the JIT's whole inlining budget for the dozens of vector operations its body expands to.</remarks>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int BackwardRange<TV>(ref readonly float gt, ref readonly float cv, ref readonly float cp,
        ref float dhv, ref float dcv, ref float dg, int n, int k) where TV : struct, ISimd<TV>
    {
        for (; k + TV.Count <= n; k += TV.Count)
            BackwardAt<TV>(in gt, in cv, in cp, ref dhv, ref dcv, ref dg, (nuint)n, (nuint)k);
        return k;
    }

    /// <summary>Hidden units k … k + width − 1, the reference's loop body lane-wise; gate block j of unit k is at j·H + k.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void BackwardAt<TV>(ref readonly float gt, ref readonly float cv, ref readonly float cp,
        ref float dhv, ref float dcv, ref float dg, nuint n, nuint k) where TV : struct, ISimd<TV>
    {
        nuint ki = k, kf = n + k, kg = 2 * n + k, ko = 3 * n + k;
        TV one = TV.Create(1f);
        TV i = TV.Load(in gt, ki), f = TV.Load(in gt, kf), g = TV.Load(in gt, kg), o = TV.Load(in gt, ko);
        TV tc = VectorMath.Tanh(TV.Load(in cv, ki));
        TV dhk = TV.Load(in dhv, ki);
        TV dct = TV.Load(in dcv, ki) + dhk * o * (one - tc * tc);
        TV.Store(dct * g * i * (one - i), ref dg, ki);
        TV.Store(dct * TV.Load(in cp, ki) * f * (one - f), ref dg, kf);
        TV.Store(dct * i * (one - g * g), ref dg, kg);
        TV.Store(dhk * tc * o * (one - o), ref dg, ko);
        TV.Store(dct * f, ref dcv, ki);
    }

    public override void BackwardRowReference(ReadOnlySpan<float> gates, ReadOnlySpan<float> c, ReadOnlySpan<float> hPrev,
        ReadOnlySpan<float> cPrev, ReadOnlySpan<float> h, Span<float> dh, Span<float> dc, Span<float> dGx, Span<float> dGh)
    {
        int n = h.Length; // H
        for (int k = 0; k < n; k++)
        {
            float i = gates[k], f = gates[n + k], g = gates[2 * n + k], o = gates[3 * n + k];
            float tc = MathF.Tanh(c[k]);
            float dct = dc[k] + dh[k] * o * (1 - tc * tc);   // dL/dc_t
            dGx[k] = dct * g * i * (1 - i);                  // through i = σ(·)
            dGx[n + k] = dct * cPrev[k] * f * (1 - f);       // through f
            dGx[2 * n + k] = dct * i * (1 - g * g);          // through g = tanh(·)
            dGx[3 * n + k] = dh[k] * tc * o * (1 - o);       // through o
            dc[k] = dct * f;                                 // dL/dc_{t−1}
        }
    }
}
