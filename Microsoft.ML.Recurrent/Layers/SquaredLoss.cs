namespace Microsoft.ML.Recurrent.Layers;

/// <summary>Weighted mean squared error over one prediction per example: loss = Σ w_i·(ŷ_i − y_i)² / Σ w_i.</summary>
internal static class SquaredLoss
{
    /// <summary>Writes dPredictions (gradient of the returned mean loss); returns the loss.</summary>
    public static float Forward(ReadOnlySpan<float> predictions, ReadOnlySpan<float> targets, ReadOnlySpan<float> weights, Span<float> dPredictions)
    {
        double total = 0, totalWeight = 0;
        for (int i = 0; i < predictions.Length; i++)
        {
            float w = weights.IsEmpty ? 1f : weights[i];
            double e = predictions[i] - targets[i];
            total += w * e * e;
            totalWeight += w;
        }
        float scale = totalWeight > 0 ? (float)(2 / totalWeight) : 0f;
        for (int i = 0; i < predictions.Length; i++)
            dPredictions[i] = (weights.IsEmpty ? 1f : weights[i]) * scale * (predictions[i] - targets[i]);
        return totalWeight > 0 ? (float)(total / totalWeight) : 0f;
    }
}
