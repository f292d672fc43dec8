namespace Microsoft.ML.Recurrent.Layers;

/// <summary>
/// Logistic loss on one logit per example, as PyTorch's <c>binary_cross_entropy_with_logits</c> with per-example
/// weights and reduction 'mean' over the weights: loss = Σ w_i·[softplus(s_i) − y_i·s_i] / Σ w_i, y ∈ {0, 1}.
/// </summary>
internal static class BinaryLogisticLoss
{
    /// <summary>Writes probabilities σ(s) and dScores (gradient of the returned mean loss); returns the loss.</summary>
    public static float Forward(ReadOnlySpan<float> scores, ReadOnlySpan<float> targets, ReadOnlySpan<float> weights,
        Span<float> probabilities, Span<float> dScores)
    {
        double total = 0, totalWeight = 0;
        for (int i = 0; i < scores.Length; i++)
        {
            float w = weights.IsEmpty ? 1f : weights[i];
            float s = scores[i], y = targets[i];
            // softplus(s) − y·s, stable for large |s|.
            double softplus = s > 0 ? s + Math.Log(1 + Math.Exp(-s)) : Math.Log(1 + Math.Exp(s));
            total += w * (softplus - y * s);
            totalWeight += w;
            probabilities[i] = 1f / (1f + MathF.Exp(-s));
        }
        float scale = totalWeight > 0 ? (float)(1 / totalWeight) : 0f;
        for (int i = 0; i < scores.Length; i++)
            dScores[i] = (weights.IsEmpty ? 1f : weights[i]) * scale * (probabilities[i] - targets[i]);
        return totalWeight > 0 ? (float)(total / totalWeight) : 0f;
    }
}
