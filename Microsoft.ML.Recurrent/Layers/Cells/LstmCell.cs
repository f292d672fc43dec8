using System.Numerics.Tensors;

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
        for (int k = 0; k < n; k++)
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
