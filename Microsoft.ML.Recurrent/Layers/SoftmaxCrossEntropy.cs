namespace Microsoft.ML.Recurrent.Layers;

/// <summary>
/// Softmax + cross-entropy over logits [B, C], as PyTorch's <c>F.cross_entropy</c> with <c>weight</c> and
/// reduction 'mean': loss = Σ_i w_i·(−log p_i[y_i]) / Σ_i w_i, where w_i = classWeight[y_i] · exampleWeight_i
/// (both optional, default 1).
/// </summary>
internal static class SoftmaxCrossEntropy
{
    /// <summary>
    /// Writes probabilities [B, C] and dLogits [B, C] (gradient of the returned mean loss), returns the loss.
    /// Labels must lie in [0, C).
    /// </summary>
    public static float Forward(int batchSize, int classes, ReadOnlySpan<float> logits, ReadOnlySpan<int> labels,
        ReadOnlySpan<float> classWeights, ReadOnlySpan<float> exampleWeights, Span<float> probabilities, Span<float> dLogits)
    {
        double totalWeight = 0, total = 0;
        for (int i = 0; i < batchSize; i++)
        {
            int y = labels[i];
            if ((uint)y >= (uint)classes)
                throw new ArgumentOutOfRangeException(nameof(labels), y, $"Label {y} of example {i} is outside [0, {classes}).");
            var p = probabilities.Slice(i * classes, classes);
            System.Numerics.Tensors.TensorPrimitives.SoftMax(logits.Slice(i * classes, classes), p);
            float w = (classWeights.IsEmpty ? 1f : classWeights[y]) * (exampleWeights.IsEmpty ? 1f : exampleWeights[i]);
            totalWeight += w;
            // −log p_y computed from the logits (log-sum-exp) so it stays finite when p_y underflows.
            var row = logits.Slice(i * classes, classes);
            float max = System.Numerics.Tensors.TensorPrimitives.Max(row);
            double sum = 0;
            for (int c = 0; c < classes; c++) sum += Math.Exp(row[c] - max);
            total += w * (Math.Log(sum) + max - row[y]);
        }
        float scale = totalWeight > 0 ? (float)(1.0 / totalWeight) : 0f;
        for (int i = 0; i < batchSize; i++)
        {
            int y = labels[i];
            float w = (classWeights.IsEmpty ? 1f : classWeights[y]) * (exampleWeights.IsEmpty ? 1f : exampleWeights[i]);
            var d = dLogits.Slice(i * classes, classes);
            System.Numerics.Tensors.TensorPrimitives.Multiply(probabilities.Slice(i * classes, classes), w * scale, d);
            d[y] -= w * scale;
        }
        return totalWeight > 0 ? (float)(total / totalWeight) : 0f;
    }
}
