namespace Microsoft.ML.Recurrent.Interop;

/// <summary>
/// One tensor of a safetensors file (see <see cref="SafetensorsReader"/>), held as float32 values in row-major order
/// whatever its stored element type.
/// </summary>
/// <param name="Name">The tensor's name, e.g. <c>rnn.weight_ih_l0</c>.</param>
/// <param name="Shape">Row-major shape; the product of the dimensions is <c>Values.Length</c> (1 for a scalar, rank 0).</param>
/// <param name="Values">The values, converted to float32 when the file stores F16, BF16 or F64.</param>
/// <param name="DType">The element type as the file names it (<c>F32</c>, <c>F16</c>, <c>BF16</c> or <c>F64</c>).</param>
internal sealed record SafetensorsTensor(string Name, int[] Shape, float[] Values, string DType = "F32")
{
    /// <summary>The shape as PyTorch prints it, e.g. <c>[16, 5]</c>.</summary>
    public string ShapeText => FormatShape(Shape);

    /// <summary><paramref name="shape"/> as <c>[d0, d1, …]</c>.</summary>
    public static string FormatShape(ReadOnlySpan<int> shape)
    {
        var text = new System.Text.StringBuilder("[");
        for (int i = 0; i < shape.Length; i++)
        {
            if (i > 0) text.Append(", ");
            text.Append(shape[i]);
        }
        return text.Append(']').ToString();
    }
}
