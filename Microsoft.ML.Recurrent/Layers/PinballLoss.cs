namespace Microsoft.ML.Recurrent.Layers;

/// <summary>
/// The quantile (pinball) loss of predictions ŷ of the q-quantile of targets y: with e = y − ŷ,
/// ℓ = max(q·e, (q − 1)·e), averaged over the elements. Its minimizer over a distribution is the distribution's
/// q-quantile, so predictions trained with it at q = 0.1 and 0.9 bound an 80 % interval.
/// </summary>
internal static class PinballLoss
{
    /// <summary>
    /// Returns the mean loss and writes dPredictions = ∂(mean loss)/∂ŷ times <paramref name="gradientScale"/> (−q/n where
    /// y &gt; ŷ, (1 − q)/n where y ≤ ŷ: the subgradient at e = 0 is taken from the right).
    /// </summary>
    public static float Forward(float quantile, ReadOnlySpan<float> predictions, ReadOnlySpan<float> targets, Span<float> dPredictions, float gradientScale = 1f)
    {
        if (!(quantile > 0 && quantile < 1)) throw new ArgumentOutOfRangeException(nameof(quantile), quantile, "A quantile must be in (0, 1).");
        int n = predictions.Length;
        if (targets.Length != n || dPredictions.Length != n) throw new ArgumentException("Predictions, targets and gradients must have the same length.", nameof(targets));
        if (n == 0) return 0f;
        double total = 0;
        float above = -quantile * gradientScale / n, below = (1 - quantile) * gradientScale / n;
        for (int i = 0; i < n; i++)
        {
            float e = targets[i] - predictions[i];
            total += e > 0 ? quantile * e : (quantile - 1) * e;
            dPredictions[i] = e > 0 ? above : below;
        }
        return (float)(total / n);
    }
}
