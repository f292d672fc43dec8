using Microsoft.ML.Recurrent.Core;

namespace Microsoft.ML.Recurrent.Layers;

/// <summary>
/// Inverted dropout: during training each element is zeroed with probability p and the rest are scaled by
/// 1/(1 − p), so inference needs no rescaling. The mask of the last training forward is kept for backward.
/// </summary>
internal sealed class Dropout
{
    private float[] _mask = [];
    private bool _active;

    /// <summary>Drop probability p in [0, 1).</summary>
    public float Probability { get; }

    public Dropout(float probability)
    {
        if (!(probability >= 0 && probability < 1))
            throw new ArgumentOutOfRangeException(nameof(probability), probability, "Dropout must be in [0, 1).");
        Probability = probability;
    }

    /// <summary>y = x ⊙ mask (training, <paramref name="random"/> non-null) or y = x. x and y may be the same span.</summary>
    public void Forward(ReadOnlySpan<float> x, Span<float> y, SeededRandom? random)
    {
        _active = random is not null && Probability > 0;
        if (!_active)
        {
            if (!x.Overlaps(y)) x.CopyTo(y);
            return;
        }
        var mask = Workspace.Ensure(ref _mask, x.Length);
        float scale = 1f / (1f - Probability);
        for (int i = 0; i < mask.Length; i++)
            mask[i] = random!.NextSingle() < Probability ? 0f : scale;
        System.Numerics.Tensors.TensorPrimitives.Multiply(x, mask, y);
    }

    /// <summary>dx = dy ⊙ mask of the last forward (dy and dx may be the same span).</summary>
    public void Backward(ReadOnlySpan<float> dy, Span<float> dx)
    {
        if (!_active)
        {
            if (!dy.Overlaps(dx)) dy.CopyTo(dx);
            return;
        }
        System.Numerics.Tensors.TensorPrimitives.Multiply(dy, _mask.AsSpan(0, dy.Length), dx);
    }
}
