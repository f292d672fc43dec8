namespace Microsoft.ML.Recurrent.Layers;

/// <summary>
/// Per-window normalization of one series (see <see cref="WindowNormalization"/>): a shift m and a scale s from the
/// look-back window x [L] (read with a stride, one column of a row-major [T, C] series), the normalized values
/// (x − m) / s, and the inverse y = ŷ·s + m applied to the forecast. The statistics are constants to the gradient:
/// the gradient of a loss on y with respect to ŷ is s times its gradient with respect to y.
/// </summary>
internal static class InstanceNormalization
{
    /// <summary>ε added to the variance of <see cref="WindowNormalization.MeanScale"/> (RevIN's 1e-5), so a constant window has scale √ε, not 0.</summary>
    public const float Epsilon = 1e-5f;

    /// <summary>
    /// The shift and scale of the window <paramref name="values"/>[i·<paramref name="stride"/>], i in [0, <paramref name="length"/>):
    /// (0, 1) for none, (last value, 1), or (mean, √(population variance + ε)).
    /// </summary>
    public static (float Shift, float Scale) Statistics(WindowNormalization kind, ReadOnlySpan<float> values, int length, int stride)
    {
        if (length <= 0) throw new ArgumentOutOfRangeException(nameof(length), length, "A window needs at least one value.");
        switch (kind)
        {
            case WindowNormalization.None:
                return (0f, 1f);
            case WindowNormalization.LastValue:
                return (values[(length - 1) * stride], 1f);
            case WindowNormalization.MeanScale:
            {
                // Two passes in double: windows are short and the mean can be large next to the spread.
                double sum = 0;
                for (int i = 0; i < length; i++) sum += values[i * stride];
                double mean = sum / length, squares = 0;
                for (int i = 0; i < length; i++)
                {
                    double d = values[i * stride] - mean;
                    squares += d * d;
                }
                return ((float)mean, (float)Math.Sqrt(squares / length + Epsilon));
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown window normalization.");
        }
    }

    /// <summary>destination[i] = (values[i·stride] − shift) / scale for i in [0, destination.Length).</summary>
    public static void Normalize(ReadOnlySpan<float> values, int stride, float shift, float scale, Span<float> destination)
    {
        float inverse = 1f / scale;
        for (int i = 0; i < destination.Length; i++)
            destination[i] = (values[i * stride] - shift) * inverse;
    }

    /// <summary>The inverse, in place: values[i] = values[i]·scale + shift.</summary>
    public static void Restore(Span<float> values, float shift, float scale)
    {
        for (int i = 0; i < values.Length; i++)
            values[i] = values[i] * scale + shift;
    }
}
