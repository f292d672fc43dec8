using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Microsoft.ML.Recurrent.Kernels;

namespace Microsoft.ML.Recurrent.Layers.Cells;

/// <summary>
/// LSTM, exactly as PyTorch <c>nn.LSTM</c> (gate blocks in the order i, f, g, o):
/// <code>
///   i = σ(W_ii x + b_ii + W_hi h + b_hi)     f = σ(W_if x + b_if + W_hf h + b_hf)
///   g = tanh(W_ig x + b_ig + W_hg h + b_hg)  o = σ(W_io x + b_io + W_ho h + b_ho)
///   c' = f ⊙ c + i ⊙ g                       h' = o ⊙ tanh(c')
/// </code>
/// gates keep the activated i, f, g, o; aux keeps c'.
/// </summary>
internal sealed class LstmCell : RecurrentCell
{
    public static readonly LstmCell Instance = new();

    public override int Gates => 4;
    public override bool UsesAux => true;
    public override bool HasDirectStateGradient => false;
    public override bool SeparateRecurrentGradient => false;

    public override void ForwardRow(Span<float> gates, ReadOnlySpan<float> gh, ReadOnlySpan<float> biasHh,
        ReadOnlySpan<float> hPrev, ReadOnlySpan<float> cPrev, Span<float> h, Span<float> c, Span<float> scratch)
    {
        if (!Vector512.IsHardwareAccelerated)
        {
            ForwardRowReference(gates, gh, biasHh, hPrev, cPrev, h, c, scratch);
            return;
        }
        // One pass over the hidden units, 16 at a time: all four gates, the cell and the output together.
        int n = h.Length; // H
        ref float gx = ref MemoryMarshal.GetReference(gates);
        ref readonly float r = ref MemoryMarshal.GetReference(gh);
        ref readonly float b = ref MemoryMarshal.GetReference(biasHh);
        ref readonly float cp = ref MemoryMarshal.GetReference(cPrev);
        ref float hv = ref MemoryMarshal.GetReference(h);
        ref float cv = ref MemoryMarshal.GetReference(c);
        int k = 0;
        for (; k + 16 <= n; k += 16)
        {
            nuint ki = (nuint)k, kf = (nuint)(n + k), kg = (nuint)(2 * n + k), ko = (nuint)(3 * n + k);
            var i = VectorMath.Sigmoid(Vector512.LoadUnsafe(ref gx, ki) + Vector512.LoadUnsafe(in r, ki) + Vector512.LoadUnsafe(in b, ki));
            var f = VectorMath.Sigmoid(Vector512.LoadUnsafe(ref gx, kf) + Vector512.LoadUnsafe(in r, kf) + Vector512.LoadUnsafe(in b, kf));
            var g = VectorMath.Tanh(Vector512.LoadUnsafe(ref gx, kg) + Vector512.LoadUnsafe(in r, kg) + Vector512.LoadUnsafe(in b, kg));
            var o = VectorMath.Sigmoid(Vector512.LoadUnsafe(ref gx, ko) + Vector512.LoadUnsafe(in r, ko) + Vector512.LoadUnsafe(in b, ko));
            var cNew = Vector512.FusedMultiplyAdd(i, g, f * Vector512.LoadUnsafe(in cp, ki));
            i.StoreUnsafe(ref gx, ki);
            f.StoreUnsafe(ref gx, kf);
            g.StoreUnsafe(ref gx, kg);
            o.StoreUnsafe(ref gx, ko);
            cNew.StoreUnsafe(ref cv, ki);
            (o * VectorMath.Tanh(cNew)).StoreUnsafe(ref hv, ki);
        }
        for (; k < n; k++)
        {
            float i = VectorMath.Sigmoid(gates[k] + gh[k] + biasHh[k]);
            float f = VectorMath.Sigmoid(gates[n + k] + gh[n + k] + biasHh[n + k]);
            float g = MathF.Tanh(gates[2 * n + k] + gh[2 * n + k] + biasHh[2 * n + k]);
            float o = VectorMath.Sigmoid(gates[3 * n + k] + gh[3 * n + k] + biasHh[3 * n + k]);
            gates[k] = i; gates[n + k] = f; gates[2 * n + k] = g; gates[3 * n + k] = o;
            c[k] = MathF.FusedMultiplyAdd(i, g, f * cPrev[k]);
            h[k] = o * MathF.Tanh(c[k]);
        }
    }

    /// <summary>The same step with one TensorPrimitives call per operation: the reference the fused path is tested against, and the path without AVX-512.</summary>
    internal static void ForwardRowReference(Span<float> gates, ReadOnlySpan<float> gh, ReadOnlySpan<float> biasHh,
        ReadOnlySpan<float> hPrev, ReadOnlySpan<float> cPrev, Span<float> h, Span<float> c, Span<float> scratch)
    {
        int n = h.Length; // H
        TensorPrimitives.Add(gates, gh, gates);
        TensorPrimitives.Add(gates, biasHh, gates);
        var i = gates.Slice(0, n);
        var f = gates.Slice(n, n);
        var g = gates.Slice(2 * n, n);
        var o = gates.Slice(3 * n, n);
        TensorPrimitives.Sigmoid(gates.Slice(0, 2 * n), gates.Slice(0, 2 * n));
        TensorPrimitives.Tanh(g, g);
        TensorPrimitives.Sigmoid(o, o);
        TensorPrimitives.Multiply(f, cPrev, c);
        TensorPrimitives.FusedMultiplyAdd(i, g, c, c);
        TensorPrimitives.Tanh(c, scratch);
        TensorPrimitives.Multiply(o, scratch, h);
    }

    public override void BackwardRow(ReadOnlySpan<float> gates, ReadOnlySpan<float> c, ReadOnlySpan<float> hPrev,
        ReadOnlySpan<float> cPrev, ReadOnlySpan<float> h, Span<float> dh, Span<float> dc, Span<float> dGx, Span<float> dGh)
    {
        int n = h.Length; // H
        int k = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            ref readonly float gt = ref MemoryMarshal.GetReference(gates);
            ref readonly float cv = ref MemoryMarshal.GetReference(c);
            ref readonly float cp = ref MemoryMarshal.GetReference(cPrev);
            ref float dhv = ref MemoryMarshal.GetReference(dh);
            ref float dcv = ref MemoryMarshal.GetReference(dc);
            ref float dg = ref MemoryMarshal.GetReference(dGx);
            var one = Vector512<float>.One;
            for (; k + 16 <= n; k += 16)
            {
                nuint ki = (nuint)k, kf = (nuint)(n + k), kg = (nuint)(2 * n + k), ko = (nuint)(3 * n + k);
                var i = Vector512.LoadUnsafe(in gt, ki);
                var f = Vector512.LoadUnsafe(in gt, kf);
                var g = Vector512.LoadUnsafe(in gt, kg);
                var o = Vector512.LoadUnsafe(in gt, ko);
                var tc = VectorMath.Tanh(Vector512.LoadUnsafe(in cv, ki));
                var dhk = Vector512.LoadUnsafe(ref dhv, ki);
                var dct = Vector512.LoadUnsafe(ref dcv, ki) + dhk * o * (one - tc * tc);
                (dct * g * i * (one - i)).StoreUnsafe(ref dg, ki);
                (dct * Vector512.LoadUnsafe(in cp, ki) * f * (one - f)).StoreUnsafe(ref dg, kf);
                (dct * i * (one - g * g)).StoreUnsafe(ref dg, kg);
                (dhk * tc * o * (one - o)).StoreUnsafe(ref dg, ko);
                (dct * f).StoreUnsafe(ref dcv, ki);
            }
        }
        for (; k < n; k++)
        {
            float i = gates[k], f = gates[n + k], g = gates[2 * n + k], o = gates[3 * n + k];
            float tc = MathF.Tanh(c[k]);
            float dhk = dh[k];
            float dct = dc[k] + dhk * o * (1 - tc * tc);
            dGx[k] = dct * g * i * (1 - i);
            dGx[n + k] = dct * cPrev[k] * f * (1 - f);
            dGx[2 * n + k] = dct * i * (1 - g * g);
            dGx[3 * n + k] = dhk * tc * o * (1 - o);
            dc[k] = dct * f;
        }
    }
}
