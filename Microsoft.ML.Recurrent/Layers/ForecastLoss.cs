using Microsoft.ML.Recurrent.Core;

namespace Microsoft.ML.Recurrent.Layers;

/// <summary>
/// The loss of a batch of multi-horizon forecasts [B, (1 + Q)·H] — for each sample the H point forecasts, then H per
/// quantile level — against targets [B, H]:
/// <code>
///   loss = mean over B·H of (ŷ − y)²  +  Σ_q mean over B·H of pinball_q(ŷ_q, y)
/// </code>
/// The point forecast is fitted to the conditional mean (what MSE scores), each quantile output to its quantile.
/// </summary>
internal sealed class ForecastLoss(int horizon, float[] quantiles)
{
    private float[] _part = [], _dPart = [];

    /// <summary>Outputs per sample, (1 + Q)·H.</summary>
    public int OutputSize => horizon * (1 + quantiles.Length);

    /// <summary>Returns the loss of <paramref name="outputs"/> [B, O] and writes its gradient into <paramref name="dOutputs"/> [B, O].</summary>
    public float Forward(int batchSize, ReadOnlySpan<float> outputs, ReadOnlySpan<float> targets, Span<float> dOutputs)
    {
        int h = horizon, o = OutputSize, b = batchSize;
        if (targets.Length != b * h) throw new ArgumentException($"Expected {b * h} targets, got {targets.Length}.", nameof(targets));
        if (quantiles.Length == 0)
            return SquaredLoss.Forward(outputs[..(b * h)], targets, default, dOutputs[..(b * h)]);
        // Gather each part into [B, H], score it, scatter its gradient back.
        var part = Workspace.Ensure(ref _part, b * h);
        var dPart = Workspace.Ensure(ref _dPart, b * h);
        double loss = 0;
        for (int k = 0; k <= quantiles.Length; k++)
        {
            for (int i = 0; i < b; i++)
                outputs.Slice(i * o + k * h, h).CopyTo(part.Slice(i * h, h));
            loss += k == 0 ? SquaredLoss.Forward(part, targets, default, dPart) : PinballLoss.Forward(quantiles[k - 1], part, targets, dPart);
            for (int i = 0; i < b; i++)
                dPart.Slice(i * h, h).CopyTo(dOutputs.Slice(i * o + k * h, h));
        }
        return (float)loss;
    }
}
