namespace Microsoft.ML.Recurrent.Core;

/// <summary>Grow-only scratch buffers: a layer keeps its activations in arrays that are reused from batch to batch.</summary>
internal static class Workspace
{
    /// <summary>Returns <paramref name="buffer"/> as a span of exactly <paramref name="length"/> elements, reallocating only when it is too small.</summary>
    public static Span<float> Ensure(ref float[] buffer, int length)
    {
        if (buffer.Length < length)
            buffer = new float[Math.Max(length, buffer.Length + buffer.Length / 2)];
        return buffer.AsSpan(0, length);
    }

    /// <summary>Same as <see cref="Ensure(ref float[], int)"/> for integer buffers.</summary>
    public static Span<int> Ensure(ref int[] buffer, int length)
    {
        if (buffer.Length < length)
            buffer = new int[Math.Max(length, buffer.Length + buffer.Length / 2)];
        return buffer.AsSpan(0, length);
    }
}
