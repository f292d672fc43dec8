namespace Microsoft.ML.Recurrent.Kernels;

/// <summary>Whether a GEMM operand is used as stored (row-major) or transposed.</summary>
internal enum Transpose
{
    /// <summary>Use the operand as stored.</summary>
    No,
    /// <summary>Use the transpose of the stored operand.</summary>
    Yes,
}
