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
        double sum = 0;
        foreach (float g in gradients) sum += (double)g * g;
        float norm = (float)Math.Sqrt(sum);
        if (!float.IsFinite(norm)) return norm;
        float coefficient = maxNorm / (norm + 1e-6f);
        if (coefficient < 1f)
            System.Numerics.Tensors.TensorPrimitives.Multiply(gradients, coefficient, gradients);
        return norm;
    }
}
