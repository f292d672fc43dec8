using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Microsoft.ML.Recurrent.Kernels;

namespace Microsoft.ML.Recurrent.Layers.Cells;

/// <summary>
/// GRU, exactly as PyTorch <c>nn.GRU</c> (gate blocks r, z, n; b_hn stays inside the reset product):
/// <code>
///   r = σ(W_ir x + b_ir + W_hr h + b_hr)     z = σ(W_iz x + b_iz + W_hz h + b_hz)
///   n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
///   h' = (1 − z) ⊙ n + z ⊙ h
/// </code>
/// gates keep the activated r, z, n; aux keeps W_hn h + b_hn.
/// </summary>
internal sealed class GruCell : RecurrentCell
{
    public static readonly GruCell Instance = new();

    public override int Gates => 3;
    public override bool UsesAux => true;
    public override bool HasDirectStateGradient => true;
    public override bool SeparateRecurrentGradient => true;

    public override void ForwardRow(Span<float> gates, ReadOnlySpan<float> gh, ReadOnlySpan<float> biasHh,
        ReadOnlySpan<float> hPrev, ReadOnlySpan<float> auxPrev, Span<float> h, Span<float> hn, Span<float> scratch)
    {
        if (!Vector512.IsHardwareAccelerated)
        {
            ForwardRowReference(gates, gh, biasHh, hPrev, auxPrev, h, hn, scratch);
            return;
        }
        int n = h.Length; // H
        ref float gx = ref MemoryMarshal.GetReference(gates);
        ref readonly float r0 = ref MemoryMarshal.GetReference(gh);
        ref readonly float b = ref MemoryMarshal.GetReference(biasHh);
        ref readonly float hp = ref MemoryMarshal.GetReference(hPrev);
        ref float hv = ref MemoryMarshal.GetReference(h);
        ref float hnv = ref MemoryMarshal.GetReference(hn);
        int k = 0;
        for (; k + 16 <= n; k += 16)
        {
            nuint kr = (nuint)k, kz = (nuint)(n + k), kn = (nuint)(2 * n + k);
            var r = VectorMath.Sigmoid(Vector512.LoadUnsafe(ref gx, kr) + Vector512.LoadUnsafe(in r0, kr) + Vector512.LoadUnsafe(in b, kr));
            var z = VectorMath.Sigmoid(Vector512.LoadUnsafe(ref gx, kz) + Vector512.LoadUnsafe(in r0, kz) + Vector512.LoadUnsafe(in b, kz));
            var hidden = Vector512.LoadUnsafe(in r0, kn) + Vector512.LoadUnsafe(in b, kn);
            var nn = VectorMath.Tanh(Vector512.FusedMultiplyAdd(r, hidden, Vector512.LoadUnsafe(ref gx, kn)));
            r.StoreUnsafe(ref gx, kr);
            z.StoreUnsafe(ref gx, kz);
            nn.StoreUnsafe(ref gx, kn);
            hidden.StoreUnsafe(ref hnv, kr);
            Vector512.FusedMultiplyAdd(z, Vector512.LoadUnsafe(in hp, kr) - nn, nn).StoreUnsafe(ref hv, kr);
        }
        for (; k < n; k++)
        {
            float r = VectorMath.Sigmoid(gates[k] + gh[k] + biasHh[k]);
            float z = VectorMath.Sigmoid(gates[n + k] + gh[n + k] + biasHh[n + k]);
            float hidden = gh[2 * n + k] + biasHh[2 * n + k];
            float nn = MathF.Tanh(MathF.FusedMultiplyAdd(r, hidden, gates[2 * n + k]));
            gates[k] = r; gates[n + k] = z; gates[2 * n + k] = nn;
            hn[k] = hidden;
            h[k] = MathF.FusedMultiplyAdd(z, hPrev[k] - nn, nn);
        }
    }

    /// <summary>The same step with one TensorPrimitives call per operation: the reference the fused path is tested against, and the path without AVX-512.</summary>
    internal static void ForwardRowReference(Span<float> gates, ReadOnlySpan<float> gh, ReadOnlySpan<float> biasHh,
        ReadOnlySpan<float> hPrev, ReadOnlySpan<float> auxPrev, Span<float> h, Span<float> hn, Span<float> scratch)
    {
        int n = h.Length; // H
        var rz = gates.Slice(0, 2 * n);
        TensorPrimitives.Add(rz, gh.Slice(0, 2 * n), rz);
        TensorPrimitives.Add(rz, biasHh.Slice(0, 2 * n), rz);
        TensorPrimitives.Sigmoid(rz, rz);
        TensorPrimitives.Add(gh.Slice(2 * n, n), biasHh.Slice(2 * n, n), hn);
        var r = gates.Slice(0, n);
        var z = gates.Slice(n, n);
        var nn = gates.Slice(2 * n, n);
        TensorPrimitives.FusedMultiplyAdd(r, hn, nn, nn);
        TensorPrimitives.Tanh(nn, nn);
        // h' = n + z ⊙ (h − n)
        TensorPrimitives.Subtract(hPrev, nn, scratch);
        TensorPrimitives.FusedMultiplyAdd(z, scratch, nn, h);
    }

    public override void BackwardRow(ReadOnlySpan<float> gates, ReadOnlySpan<float> hn, ReadOnlySpan<float> hPrev,
        ReadOnlySpan<float> auxPrev, ReadOnlySpan<float> h, Span<float> dh, Span<float> dAux, Span<float> dGx, Span<float> dGh)
    {
        int n = h.Length; // H
        int k = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            // The scalar loop below, 16 hidden units at a time, same operations in the same order.
            ref readonly float gt = ref MemoryMarshal.GetReference(gates);
            ref readonly float hnv = ref MemoryMarshal.GetReference(hn);
            ref readonly float hp = ref MemoryMarshal.GetReference(hPrev);
            ref float dhv = ref MemoryMarshal.GetReference(dh);
            ref float dx = ref MemoryMarshal.GetReference(dGx);
            ref float dr = ref MemoryMarshal.GetReference(dGh);
            var one = Vector512<float>.One;
            for (; k + 16 <= n; k += 16)
            {
                nuint kr = (nuint)k, kz = (nuint)(n + k), kn = (nuint)(2 * n + k);
                var r = Vector512.LoadUnsafe(in gt, kr);
                var z = Vector512.LoadUnsafe(in gt, kz);
                var nv = Vector512.LoadUnsafe(in gt, kn);
                var g = Vector512.LoadUnsafe(ref dhv, kr);
                var dnPre = g * (one - z) * (one - nv * nv);
                var drPre = dnPre * Vector512.LoadUnsafe(in hnv, kr) * r * (one - r);
                var dzPre = g * (Vector512.LoadUnsafe(in hp, kr) - nv) * z * (one - z);
                drPre.StoreUnsafe(ref dx, kr); drPre.StoreUnsafe(ref dr, kr);
                dzPre.StoreUnsafe(ref dx, kz); dzPre.StoreUnsafe(ref dr, kz);
                dnPre.StoreUnsafe(ref dx, kn); (dnPre * r).StoreUnsafe(ref dr, kn);
                (g * z).StoreUnsafe(ref dhv, kr);
            }
        }
        for (; k < n; k++)
        {
            float r = gates[k], z = gates[n + k], nv = gates[2 * n + k];
            float g = dh[k];
            float dnPre = g * (1 - z) * (1 - nv * nv);
            float drPre = dnPre * hn[k] * r * (1 - r);
            float dzPre = g * (hPrev[k] - nv) * z * (1 - z);
            dGx[k] = drPre; dGh[k] = drPre;
            dGx[n + k] = dzPre; dGh[n + k] = dzPre;
            dGx[2 * n + k] = dnPre; dGh[2 * n + k] = dnPre * r;
            dh[k] = g * z;
        }
    }
}
