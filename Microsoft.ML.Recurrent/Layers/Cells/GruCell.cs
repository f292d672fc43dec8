using System.Numerics.Tensors;

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
        for (int k = 0; k < n; k++)
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
