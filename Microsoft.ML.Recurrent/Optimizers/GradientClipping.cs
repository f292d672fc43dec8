namespace Microsoft.ML.Recurrent.Optimizers;

/// <summary>Global gradient-norm clipping, as <c>torch.nn.utils.clip_grad_norm_</c> with the 2-norm.</summary>
internal static class GradientClipping
{
    /// <summary>
    /// Computes the 2-norm of all gradients; when it exceeds <paramref name="maxNorm"/>, scales them by
    /// maxNorm / (norm + 1e−6). Returns the norm before clipping (∞ or NaN when a gradient is not finite; then nothing is scaled).
    /// </summary>
    public static float ClipByGlobalNorm(Span<float> gradients, float maxNorm)
    {
        if (!(maxNorm > 0)) throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "The maximum norm must be positive.");
        float norm = (float)Math.Sqrt(SumOfSquares(gradients));
        if (!float.IsFinite(norm)) return norm;
        float coefficient = maxNorm / (norm + 1e-6f);
        if (coefficient < 1f)
            System.Numerics.Tensors.TensorPrimitives.Multiply(gradients, coefficient, gradients);
        return norm;
    }

    /// <summary>Σ g² in double precision: float sums of 4,096-element blocks (vectorized) added in double.</summary>
    public static double SumOfSquares(ReadOnlySpan<float> values)
    {
        double sum = 0;
        for (int start = 0; start < values.Length; start += 4096)
            sum += System.Numerics.Tensors.TensorPrimitives.SumOfSquares(values.Slice(start, Math.Min(4096, values.Length - start)));
        return sum;
    }
}
