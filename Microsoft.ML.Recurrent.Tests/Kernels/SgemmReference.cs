namespace Microsoft.ML.Recurrent.Kernels;

/// <summary>
/// Naive triple-loop SGEMM, the ground truth of the SGEMM tests (test code: not in the shipped assembly). Deliberately simple: no blocking, no vectors,
/// float accumulation in ascending k order.
/// </summary>
internal static class SgemmReference
{
    /// <summary>
    /// Effectively computes <c>C[i, j] = (accumulate ? C[i, j] : 0) + Σ_p op(A)[i, p] · op(B)[p, j]</c>, with the same
    /// argument conventions as <see cref="Sgemm.Multiply(Transpose, Transpose, int, int, int, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, Span{float}, int, bool, int)"/>.
    /// </summary>
    public static void Multiply(Transpose transA, Transpose transB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc, bool accumulate)
    {
        Sgemm.ValidateArguments(transA, transB, m, n, k, a, lda, b, ldb, c, ldc);
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                float sum = 0;
                for (int p = 0; p < k; p++)
                {
                    // op(A)[i, p]: A stored m×k (a[i*lda + p]) or k×m (a[p*lda + i]); op(B)[p, j] likewise.
                    float av = transA == Transpose.No ? a[i * lda + p] : a[p * lda + i];
                    float bv = transB == Transpose.No ? b[p * ldb + j] : b[j * ldb + p];
                    sum += av * bv;
                }

                c[i * ldc + j] = accumulate ? c[i * ldc + j] + sum : sum;
            }
        }
    }
}
