using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.ML.Recurrent.Kernels;

namespace Microsoft.ML.Recurrent.Layers.Cells;

/// <summary>
/// Elman RNN, exactly as PyTorch <c>nn.RNN</c>: h' = act(W_ih x + b_ih + W_hh h + b_hh) with act = tanh or ReLU, summed
/// as ((W_ih x + b_ih) + W_hh h) + b_hh.
/// Backward needs only h' itself (tanh' = 1 − h'², ReLU' = [h' &gt; 0]).
/// </summary>
internal sealed class RnnCell : RecurrentCell
{
    public static readonly RnnCell Tanh = new(relu: false);
    public static readonly RnnCell Relu = new(relu: true);

    private readonly bool _relu;

    private RnnCell(bool relu) => _relu = relu;

    public override int Gates => 1;
    public override bool UsesAux => false;
    public override bool HasDirectStateGradient => false;
    public override bool SeparateRecurrentGradient => false;

    public override void ForwardRow(Span<float> gates, ReadOnlySpan<float> biasIh, ReadOnlySpan<float> gh, ReadOnlySpan<float> biasHh,
        ReadOnlySpan<float> hPrev, ReadOnlySpan<float> auxPrev, Span<float> h, Span<float> aux)
    {
        switch (FusedKernels.Current())
        {
            case KernelPath.Avx512: Forward<Simd512>(gates, biasIh, gh, biasHh, h, _relu); break;
            case KernelPath.Avx2: Forward<Simd256>(gates, biasIh, gh, biasHh, h, _relu); break;
            default: Forward<Simd128>(gates, biasIh, gh, biasHh, h, _relu); break;
        }
    }

    private static void Forward<TV>(ReadOnlySpan<float> gates, ReadOnlySpan<float> biasIh, ReadOnlySpan<float> gh, ReadOnlySpan<float> biasHh,
        Span<float> h, bool relu) where TV : struct, ISimd<TV>
    {
        int n = h.Length; // H
        // Every unchecked access below stays inside these lengths: gates, b_ih, gh, b_hh [H].
        FusedKernels.RequireLength(gates.Length, n, nameof(gates));
        FusedKernels.RequireLength(biasIh.Length, n, nameof(biasIh));
        FusedKernels.RequireLength(gh.Length, n, nameof(gh));
        FusedKernels.RequireLength(biasHh.Length, n, nameof(biasHh));
        ref readonly float gx = ref MemoryMarshal.GetReference(gates);
        ref readonly float bi = ref MemoryMarshal.GetReference(biasIh);
        ref readonly float r = ref MemoryMarshal.GetReference(gh);
        ref readonly float b = ref MemoryMarshal.GetReference(biasHh);
        ref float hv = ref MemoryMarshal.GetReference(h);
        int k = ForwardRange<TV>(in gx, in bi, in r, in b, ref hv, n, 0, relu);
        if (k < n)
            ForwardRange<Simd1>(in gx, in bi, in r, in b, ref hv, n, k, relu);
    }

    /// <summary>Whole <typeparamref name="TV"/> vectors of hidden units from <paramref name="k"/>; returns the first unit left.</summary>
    /// <remarks>Not inlined: each width's loop gets the JIT's whole inlining budget for the dozens of vector operations its body expands to.</remarks>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int ForwardRange<TV>(ref readonly float gx, ref readonly float bi, ref readonly float r, ref readonly float b, ref float hv,
        int n, int k, bool relu) where TV : struct, ISimd<TV>
    {
        for (; k + TV.Count <= n; k += TV.Count)
            ForwardAt<TV>(in gx, in bi, in r, in b, ref hv, (nuint)k, relu);
        return k;
    }

    /// <summary>Hidden units k … k + width − 1: h = act(((gates + b_ih) + gh) + b_hh).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ForwardAt<TV>(ref readonly float gx, ref readonly float bi, ref readonly float r, ref readonly float b, ref float hv,
        nuint k, bool relu) where TV : struct, ISimd<TV>
    {
        TV pre = TV.Load(in gx, k) + TV.Load(in bi, k) + TV.Load(in r, k) + TV.Load(in b, k);
        TV.Store(relu ? TV.Max(pre, TV.Create(0f)) : VectorMath.Tanh(pre), ref hv, k);
    }

    public override void ForwardRowReference(Span<float> gates, ReadOnlySpan<float> biasIh, ReadOnlySpan<float> gh, ReadOnlySpan<float> biasHh,
        ReadOnlySpan<float> hPrev, ReadOnlySpan<float> auxPrev, Span<float> h, Span<float> aux)
    {
        for (int k = 0; k < h.Length; k++)
        {
            float pre = gates[k] + biasIh[k] + gh[k] + biasHh[k];
            h[k] = _relu ? MathF.Max(pre, 0f) : MathF.Tanh(pre);
        }
    }

    public override void BackwardRow(ReadOnlySpan<float> gates, ReadOnlySpan<float> aux, ReadOnlySpan<float> hPrev,
        ReadOnlySpan<float> auxPrev, ReadOnlySpan<float> h, Span<float> dh, Span<float> dAux, Span<float> dGx, Span<float> dGh)
    {
        // Checked indexing below; the guards make a short buffer an ArgumentException before anything is written.
        FusedKernels.RequireLength(dh.Length, h.Length, nameof(dh));
        FusedKernels.RequireLength(dGx.Length, h.Length, nameof(dGx));
        BackwardRowReference(gates, aux, hPrev, auxPrev, h, dh, dAux, dGx, dGh);
    }

    /// <remarks>Plain already (no transcendental function, nothing to fuse): the reference is also the kernel.</remarks>
    public override void BackwardRowReference(ReadOnlySpan<float> gates, ReadOnlySpan<float> aux, ReadOnlySpan<float> hPrev,
        ReadOnlySpan<float> auxPrev, ReadOnlySpan<float> h, Span<float> dh, Span<float> dAux, Span<float> dGx, Span<float> dGh)
    {
        for (int k = 0; k < h.Length; k++)
        {
            float hv = h[k];
            dGx[k] = _relu ? (hv > 0 ? dh[k] : 0f) : dh[k] * (1 - hv * hv);
        }
    }
}
