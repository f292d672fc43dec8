using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.ML.Recurrent.Kernels;

namespace Microsoft.ML.Recurrent.Layers.Cells;

/// <summary>
/// GRU, exactly as PyTorch <c>nn.GRU</c> (gate blocks r, z, n; b_hn stays inside the reset product):
/// <code>
///   r = σ(W_ir x + b_ir + W_hr h + b_hr)     z = σ(W_iz x + b_iz + W_hz h + b_hz)
///   n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
///   h' = (1 − z) ⊙ n + z ⊙ h
/// </code>
/// r and z are summed as ((W_i· x + b_i·) + W_h· h) + b_h·, n's input part as W_in x + b_in first. gates keep the
/// activated r, z, n; aux keeps W_hn h + b_hn.
/// </summary>
internal sealed class GruCell : RecurrentCell
{
    public static readonly GruCell Instance = new();

    public override int Gates => 3;
    public override bool UsesAux => true;
    public override bool HasDirectStateGradient => true;
    public override bool SeparateRecurrentGradient => true;

    public override void ForwardRow(Span<float> gates, ReadOnlySpan<float> biasIh, ReadOnlySpan<float> gh, ReadOnlySpan<float> biasHh,
        ReadOnlySpan<float> hPrev, ReadOnlySpan<float> auxPrev, Span<float> h, Span<float> hn)
    {
        switch (FusedKernels.Current())
        {
            case KernelPath.Avx512: Forward<Simd512>(gates, biasIh, gh, biasHh, hPrev, h, hn); break;
            case KernelPath.Avx2: Forward<Simd256>(gates, biasIh, gh, biasHh, hPrev, h, hn); break;
            default: Forward<Simd128>(gates, biasIh, gh, biasHh, hPrev, h, hn); break;
        }
    }

    private static void Forward<TV>(Span<float> gates, ReadOnlySpan<float> biasIh, ReadOnlySpan<float> gh, ReadOnlySpan<float> biasHh,
        ReadOnlySpan<float> hPrev, Span<float> h, Span<float> hn) where TV : struct, ISimd<TV>
    {
        int n = h.Length; // H
        // Every unchecked access below stays inside these lengths: gates, b_ih, gh, b_hh [3·H]; h_prev, hn [H].
        FusedKernels.RequireLength(gates.Length, 3L * n, nameof(gates));
        FusedKernels.RequireLength(biasIh.Length, 3L * n, nameof(biasIh));
        FusedKernels.RequireLength(gh.Length, 3L * n, nameof(gh));
        FusedKernels.RequireLength(biasHh.Length, 3L * n, nameof(biasHh));
        FusedKernels.RequireLength(hPrev.Length, n, nameof(hPrev));
        FusedKernels.RequireLength(hn.Length, n, nameof(hn));
        ref float gx = ref MemoryMarshal.GetReference(gates);
        ref readonly float bi = ref MemoryMarshal.GetReference(biasIh);
        ref readonly float r0 = ref MemoryMarshal.GetReference(gh);
        ref readonly float b = ref MemoryMarshal.GetReference(biasHh);
        ref readonly float hp = ref MemoryMarshal.GetReference(hPrev);
        ref float hv = ref MemoryMarshal.GetReference(h);
        ref float hnv = ref MemoryMarshal.GetReference(hn);
        int k = ForwardRange<TV>(ref gx, in bi, in r0, in b, in hp, ref hv, ref hnv, n, 0);
        if (k < n)
            ForwardRange<Simd1>(ref gx, in bi, in r0, in b, in hp, ref hv, ref hnv, n, k);
    }

    /// <summary>Whole <typeparamref name="TV"/> vectors of hidden units from <paramref name="k"/>; returns the first unit left.</summary>
    /// <remarks>Not inlined: each width's loop gets the JIT's whole inlining budget for the dozens of vector operations its body expands to.</remarks>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int ForwardRange<TV>(ref float gx, ref readonly float bi, ref readonly float r0, ref readonly float b, ref readonly float hp,
        ref float hv, ref float hnv, int n, int k) where TV : struct, ISimd<TV>
    {
        for (; k + TV.Count <= n; k += TV.Count)
            ForwardAt<TV>(ref gx, in bi, in r0, in b, in hp, ref hv, ref hnv, (nuint)n, (nuint)k);
        return k;
    }

    /// <summary>Hidden units k … k + width − 1; gate block j of unit k is at j·H + k.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ForwardAt<TV>(ref float gx, ref readonly float bi, ref readonly float r0, ref readonly float b, ref readonly float hp,
        ref float hv, ref float hnv, nuint n, nuint k) where TV : struct, ISimd<TV>
    {
        nuint kr = k, kz = n + k, kn = 2 * n + k;
        TV r = VectorMath.Sigmoid(TV.Load(in gx, kr) + TV.Load(in bi, kr) + TV.Load(in r0, kr) + TV.Load(in b, kr));
        TV z = VectorMath.Sigmoid(TV.Load(in gx, kz) + TV.Load(in bi, kz) + TV.Load(in r0, kz) + TV.Load(in b, kz));
        TV hidden = TV.Load(in r0, kn) + TV.Load(in b, kn);
        TV nn = VectorMath.Tanh(TV.MultiplyAdd(r, hidden, TV.Load(in gx, kn) + TV.Load(in bi, kn)));
        TV.Store(r, ref gx, kr);
        TV.Store(z, ref gx, kz);
        TV.Store(nn, ref gx, kn);
        TV.Store(hidden, ref hnv, kr);
        // h' = n + z ⊙ (h − n)
        TV.Store(TV.MultiplyAdd(z, TV.Load(in hp, kr) - nn, nn), ref hv, kr);
    }

    public override void ForwardRowReference(Span<float> gates, ReadOnlySpan<float> biasIh, ReadOnlySpan<float> gh, ReadOnlySpan<float> biasHh,
        ReadOnlySpan<float> hPrev, ReadOnlySpan<float> auxPrev, Span<float> h, Span<float> hn)
    {
        int n = h.Length; // H
        for (int k = 0; k < n; k++)
        {
            float r = Sigmoid(gates[k] + biasIh[k] + gh[k] + biasHh[k]);
            float z = Sigmoid(gates[n + k] + biasIh[n + k] + gh[n + k] + biasHh[n + k]);
            hn[k] = gh[2 * n + k] + biasHh[2 * n + k];
            float nn = MathF.Tanh(gates[2 * n + k] + biasIh[2 * n + k] + r * hn[k]);
            gates[k] = r; gates[n + k] = z; gates[2 * n + k] = nn;
            h[k] = (1 - z) * nn + z * hPrev[k];
        }
    }

    public override void BackwardRow(ReadOnlySpan<float> gates, ReadOnlySpan<float> hn, ReadOnlySpan<float> hPrev,
        ReadOnlySpan<float> auxPrev, ReadOnlySpan<float> h, Span<float> dh, Span<float> dAux, Span<float> dGx, Span<float> dGh)
    {
        switch (FusedKernels.Current())
        {
            case KernelPath.Avx512: Backward<Simd512>(gates, hn, hPrev, h.Length, dh, dGx, dGh); break;
            case KernelPath.Avx2: Backward<Simd256>(gates, hn, hPrev, h.Length, dh, dGx, dGh); break;
            default: Backward<Simd128>(gates, hn, hPrev, h.Length, dh, dGx, dGh); break;
        }
    }

    private static void Backward<TV>(ReadOnlySpan<float> gates, ReadOnlySpan<float> hn, ReadOnlySpan<float> hPrev, int n,
        Span<float> dh, Span<float> dGx, Span<float> dGh) where TV : struct, ISimd<TV>
    {
        // Every unchecked access below stays inside these lengths: gates, dGx, dGh [3·H]; hn, h_prev, dh [H].
        FusedKernels.RequireLength(gates.Length, 3L * n, nameof(gates));
        FusedKernels.RequireLength(hn.Length, n, nameof(hn));
        FusedKernels.RequireLength(hPrev.Length, n, nameof(hPrev));
        FusedKernels.RequireLength(dh.Length, n, nameof(dh));
        FusedKernels.RequireLength(dGx.Length, 3L * n, nameof(dGx));
        FusedKernels.RequireLength(dGh.Length, 3L * n, nameof(dGh));
        ref readonly float gt = ref MemoryMarshal.GetReference(gates);
        ref readonly float hnv = ref MemoryMarshal.GetReference(hn);
        ref readonly float hp = ref MemoryMarshal.GetReference(hPrev);
        ref float dhv = ref MemoryMarshal.GetReference(dh);
        ref float dx = ref MemoryMarshal.GetReference(dGx);
        ref float dr = ref MemoryMarshal.GetReference(dGh);
        int k = BackwardRange<TV>(in gt, in hnv, in hp, ref dhv, ref dx, ref dr, n, 0);
        if (k < n)
            BackwardRange<Simd1>(in gt, in hnv, in hp, ref dhv, ref dx, ref dr, n, k);
    }

    /// <summary>Whole <typeparamref name="TV"/> vectors of hidden units from <paramref name="k"/>; returns the first unit left.</summary>
    /// <remarks>Not inlined: each width's loop gets the JIT's whole inlining budget for the dozens of vector operations its body expands to.</remarks>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int BackwardRange<TV>(ref readonly float gt, ref readonly float hnv, ref readonly float hp,
        ref float dhv, ref float dx, ref float dr, int n, int k) where TV : struct, ISimd<TV>
    {
        for (; k + TV.Count <= n; k += TV.Count)
            BackwardAt<TV>(in gt, in hnv, in hp, ref dhv, ref dx, ref dr, (nuint)n, (nuint)k);
        return k;
    }

    /// <summary>Hidden units k … k + width − 1, the reference's loop body lane-wise; gate block j of unit k is at j·H + k.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void BackwardAt<TV>(ref readonly float gt, ref readonly float hnv, ref readonly float hp,
        ref float dhv, ref float dx, ref float dr, nuint n, nuint k) where TV : struct, ISimd<TV>
    {
        nuint kr = k, kz = n + k, kn = 2 * n + k;
        TV one = TV.Create(1f);
        TV r = TV.Load(in gt, kr), z = TV.Load(in gt, kz), nv = TV.Load(in gt, kn);
        TV g = TV.Load(in dhv, kr);
        TV dnPre = g * (one - z) * (one - nv * nv);
        TV drPre = dnPre * TV.Load(in hnv, kr) * r * (one - r);
        TV dzPre = g * (TV.Load(in hp, kr) - nv) * z * (one - z);
        TV.Store(drPre, ref dx, kr); TV.Store(drPre, ref dr, kr);
        TV.Store(dzPre, ref dx, kz); TV.Store(dzPre, ref dr, kz);
        TV.Store(dnPre, ref dx, kn); TV.Store(dnPre * r, ref dr, kn);
        TV.Store(g * z, ref dhv, kr);
    }

    public override void BackwardRowReference(ReadOnlySpan<float> gates, ReadOnlySpan<float> hn, ReadOnlySpan<float> hPrev,
        ReadOnlySpan<float> auxPrev, ReadOnlySpan<float> h, Span<float> dh, Span<float> dAux, Span<float> dGx, Span<float> dGh)
    {
        int n = h.Length; // H
        for (int k = 0; k < n; k++)
        {
            float r = gates[k], z = gates[n + k], nv = gates[2 * n + k];
            float g = dh[k];
            float dnPre = g * (1 - z) * (1 - nv * nv);                  // through n = tanh(·)
            float drPre = dnPre * hn[k] * r * (1 - r);                  // n's pre-activation holds r ⊙ hn
            float dzPre = g * (hPrev[k] - nv) * z * (1 - z);            // h' = (1 − z) n + z h
            dGx[k] = drPre; dGh[k] = drPre;
            dGx[n + k] = dzPre; dGh[n + k] = dzPre;
            dGx[2 * n + k] = dnPre; dGh[2 * n + k] = dnPre * r;          // W_hn h + b_hn is scaled by r
            dh[k] = g * z;                                              // direct part of dL/dh_prev
        }
    }
}
