using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Microsoft.ML.Recurrent.Kernels;

namespace Microsoft.ML.Recurrent.Layers.Cells;

/// <summary>
/// Elman RNN, exactly as PyTorch <c>nn.RNN</c>: h' = act(W_ih x + b_ih + W_hh h + b_hh) with act = tanh or ReLU.
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

    public override void ForwardRow(Span<float> gates, ReadOnlySpan<float> gh, ReadOnlySpan<float> biasHh,
        ReadOnlySpan<float> hPrev, ReadOnlySpan<float> auxPrev, Span<float> h, Span<float> aux, Span<float> scratch)
    {
        TensorPrimitives.Add(gates, gh, gates);
        TensorPrimitives.Add(gates, biasHh, gates);
        if (_relu)
        {
            TensorPrimitives.Max(gates, 0f, h);
            return;
        }
        int k = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            ref float g = ref MemoryMarshal.GetReference(gates);
            ref float hv = ref MemoryMarshal.GetReference(h);
            for (; k + 16 <= h.Length; k += 16)
                VectorMath.Tanh(Vector512.LoadUnsafe(ref g, (nuint)k)).StoreUnsafe(ref hv, (nuint)k);
        }
        for (; k < h.Length; k++)
            h[k] = MathF.Tanh(gates[k]);
    }

    public override void BackwardRow(ReadOnlySpan<float> gates, ReadOnlySpan<float> aux, ReadOnlySpan<float> hPrev,
        ReadOnlySpan<float> auxPrev, ReadOnlySpan<float> h, Span<float> dh, Span<float> dAux, Span<float> dGx, Span<float> dGh)
    {
        for (int k = 0; k < h.Length; k++)
        {
            float hv = h[k];
            dGx[k] = _relu ? (hv > 0 ? dh[k] : 0f) : dh[k] * (1 - hv * hv);
        }
    }
}
