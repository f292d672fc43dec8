using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Recurrent.Kernels;

/// <summary>
/// AVX-512 micro-kernel: one 8 × 48 tile of C from a packed A panel [kc × 8] and a packed B panel [kc × 48].
/// 24 zmm accumulators + 3 B vectors + 1 broadcast fit Zen 4/5's 32 zmm registers with no spills; each k step is
/// 3 loads, 8 broadcasts and 24 independent FMAs, enough to cover FMA latency on two pipes.
/// </summary>
internal static unsafe class SgemmKernelAvx512
{
    /// <summary>Rows of C per micro-tile.</summary>
    public const int MR = 8;

    /// <summary>Whether this kernel can run on the current CPU.</summary>
    public static bool IsSupported => Avx512F.IsSupported;

    /// <summary>
    /// Effectively computes <c>C[r, j] = (accumulate ? C[r, j] : 0) + Σ_p a[p·MR + r] · b[p·48 + j]</c> for r &lt; MR, j &lt; 48.
    /// </summary>
    /// <param name="kc">Depth of this k block.</param>
    /// <param name="a">Packed A panel, [kc × MR].</param>
    /// <param name="b">Packed B panel, [kc × 48].</param>
    /// <param name="c">Top-left of the C tile; rows are <paramref name="ldc"/> floats apart.</param>
    /// <param name="ldc">Row stride of C.</param>
    /// <param name="accumulate">Add to C instead of overwriting it.</param>
    public static void Run(int kc, float* a, float* b, float* c, nint ldc, bool accumulate)
    {
        Vector512<float> c00, c01, c02, c10, c11, c12, c20, c21, c22, c30, c31, c32, c40, c41, c42, c50, c51, c52, c60, c61, c62, c70, c71, c72;
        c00 = default; c01 = default; c02 = default; c10 = default; c11 = default; c12 = default; c20 = default; c21 = default; c22 = default; c30 = default; c31 = default; c32 = default; c40 = default; c41 = default; c42 = default; c50 = default; c51 = default; c52 = default; c60 = default; c61 = default; c62 = default; c70 = default; c71 = default; c72 = default;

        for (int p = 0; p < kc; p++)
        {
            // a: op(A)[0..MR, p]; b: op(B)[p, 0..48].
            Vector512<float> b0 = Vector512.Load(b);
            Vector512<float> b1 = Vector512.Load(b + 16);
            Vector512<float> b2 = Vector512.Load(b + 32);
                Vector512<float> a0 = Vector512.Create(a[0]);
                c00 = Avx512F.FusedMultiplyAdd(a0, b0, c00);
                c01 = Avx512F.FusedMultiplyAdd(a0, b1, c01);
                c02 = Avx512F.FusedMultiplyAdd(a0, b2, c02);
                Vector512<float> a1 = Vector512.Create(a[1]);
                c10 = Avx512F.FusedMultiplyAdd(a1, b0, c10);
                c11 = Avx512F.FusedMultiplyAdd(a1, b1, c11);
                c12 = Avx512F.FusedMultiplyAdd(a1, b2, c12);
                Vector512<float> a2 = Vector512.Create(a[2]);
                c20 = Avx512F.FusedMultiplyAdd(a2, b0, c20);
                c21 = Avx512F.FusedMultiplyAdd(a2, b1, c21);
                c22 = Avx512F.FusedMultiplyAdd(a2, b2, c22);
                Vector512<float> a3 = Vector512.Create(a[3]);
                c30 = Avx512F.FusedMultiplyAdd(a3, b0, c30);
                c31 = Avx512F.FusedMultiplyAdd(a3, b1, c31);
                c32 = Avx512F.FusedMultiplyAdd(a3, b2, c32);
                Vector512<float> a4 = Vector512.Create(a[4]);
                c40 = Avx512F.FusedMultiplyAdd(a4, b0, c40);
                c41 = Avx512F.FusedMultiplyAdd(a4, b1, c41);
                c42 = Avx512F.FusedMultiplyAdd(a4, b2, c42);
                Vector512<float> a5 = Vector512.Create(a[5]);
                c50 = Avx512F.FusedMultiplyAdd(a5, b0, c50);
                c51 = Avx512F.FusedMultiplyAdd(a5, b1, c51);
                c52 = Avx512F.FusedMultiplyAdd(a5, b2, c52);
                Vector512<float> a6 = Vector512.Create(a[6]);
                c60 = Avx512F.FusedMultiplyAdd(a6, b0, c60);
                c61 = Avx512F.FusedMultiplyAdd(a6, b1, c61);
                c62 = Avx512F.FusedMultiplyAdd(a6, b2, c62);
                Vector512<float> a7 = Vector512.Create(a[7]);
                c70 = Avx512F.FusedMultiplyAdd(a7, b0, c70);
                c71 = Avx512F.FusedMultiplyAdd(a7, b1, c71);
                c72 = Avx512F.FusedMultiplyAdd(a7, b2, c72);
            a += MR;
            b += SgemmPacking.NR;
        }

        Store(c, c00, c01, c02, accumulate);
        Store(c + 1 * ldc, c10, c11, c12, accumulate);
        Store(c + 2 * ldc, c20, c21, c22, accumulate);
        Store(c + 3 * ldc, c30, c31, c32, accumulate);
        Store(c + 4 * ldc, c40, c41, c42, accumulate);
        Store(c + 5 * ldc, c50, c51, c52, accumulate);
        Store(c + 6 * ldc, c60, c61, c62, accumulate);
        Store(c + 7 * ldc, c70, c71, c72, accumulate);
    }

    /// <summary>
    /// The same tile for only the first <paramref name="rows"/> (1 … MR−1) rows of the A panel — the recurrent step of
    /// a small batch, where the full kernel would multiply mostly padding. Rows go 4, 2 and 1 at a time; each C
    /// element sums over p in the same order as <see cref="Run"/>, so the result is bitwise identical to it.
    /// </summary>
    public static void RunRows(int rows, int kc, float* a, float* b, float* c, nint ldc, bool accumulate)
        => RunRows(rows, kc, a, MR, 1, b, c, ldc, accumulate);

    /// <summary>
    /// <see cref="RunRows(int, int, float*, float*, float*, nint, bool)"/> reading A with explicit strides:
    /// op(A)[r, p] = a[r·<paramref name="aRow"/> + p·<paramref name="aStep"/>] (packed panel: MR and 1; a plain row-major A: 1 and lda).
    /// </summary>
    public static void RunRows(int rows, int kc, float* a, nint aStep, nint aRow, float* b, float* c, nint ldc, bool accumulate)
    {
        int r = 0;
        for (; r + 4 <= rows; r += 4)
            Rows4(kc, a + r * aRow, aStep, aRow, b, c + r * ldc, ldc, accumulate);
        if (r + 2 <= rows)
        {
            Rows2(kc, a + r * aRow, aStep, aRow, b, c + r * ldc, ldc, accumulate);
            r += 2;
        }
        if (r < rows)
            Rows1(kc, a + r * aRow, aStep, b, c + r * ldc, accumulate);
    }

    /// <summary>
    /// One row of C across <paramref name="panels"/> consecutive full-width B panels (each [kc × 48], one after the
    /// other). A single row is latency-bound on one panel (3 dependent FMA chains); four panels give 12 independent
    /// chains. Per element the sum runs over p in the same order as <see cref="Run"/>.
    /// </summary>
    public static void Row1Panels(int panels, int kc, float* a, float* b, float* c, bool accumulate)
        => Row1Panels(panels, kc, a, MR, b, c, accumulate);

    /// <summary><see cref="Row1Panels(int, int, float*, float*, float*, bool)"/> with A's elements <paramref name="aStep"/> floats apart.</summary>
    public static void Row1Panels(int panels, int kc, float* a, nint aStep, float* b, float* c, bool accumulate)
    {
        int panelSize = kc * SgemmPacking.NR;
        int q = 0;
        for (; q + 4 <= panels; q += 4)
        {
            float* b0p = b + (nint)q * panelSize, b1p = b0p + panelSize, b2p = b1p + panelSize, b3p = b2p + panelSize;
            Vector512<float> c00 = default, c01 = default, c02 = default, c10 = default, c11 = default, c12 = default;
            Vector512<float> c20 = default, c21 = default, c22 = default, c30 = default, c31 = default, c32 = default;
            float* ap = a;
            for (int p = 0; p < kc; p++)
            {
                Vector512<float> a0 = Vector512.Create(ap[0]);
                nint o = (nint)p * SgemmPacking.NR;
                c00 = Avx512F.FusedMultiplyAdd(a0, Vector512.Load(b0p + o), c00);
                c01 = Avx512F.FusedMultiplyAdd(a0, Vector512.Load(b0p + o + 16), c01);
                c02 = Avx512F.FusedMultiplyAdd(a0, Vector512.Load(b0p + o + 32), c02);
                c10 = Avx512F.FusedMultiplyAdd(a0, Vector512.Load(b1p + o), c10);
                c11 = Avx512F.FusedMultiplyAdd(a0, Vector512.Load(b1p + o + 16), c11);
                c12 = Avx512F.FusedMultiplyAdd(a0, Vector512.Load(b1p + o + 32), c12);
                c20 = Avx512F.FusedMultiplyAdd(a0, Vector512.Load(b2p + o), c20);
                c21 = Avx512F.FusedMultiplyAdd(a0, Vector512.Load(b2p + o + 16), c21);
                c22 = Avx512F.FusedMultiplyAdd(a0, Vector512.Load(b2p + o + 32), c22);
                c30 = Avx512F.FusedMultiplyAdd(a0, Vector512.Load(b3p + o), c30);
                c31 = Avx512F.FusedMultiplyAdd(a0, Vector512.Load(b3p + o + 16), c31);
                c32 = Avx512F.FusedMultiplyAdd(a0, Vector512.Load(b3p + o + 32), c32);
                ap += aStep;
            }
            float* cq = c + q * SgemmPacking.NR;
            Store(cq, c00, c01, c02, accumulate);
            Store(cq + 48, c10, c11, c12, accumulate);
            Store(cq + 96, c20, c21, c22, accumulate);
            Store(cq + 144, c30, c31, c32, accumulate);
        }
        for (; q < panels; q++)
            Rows1(kc, a, aStep, b + (nint)q * panelSize, c + q * SgemmPacking.NR, accumulate);
    }

    private static void Rows4(int kc, float* a, nint aStep, nint aRow, float* b, float* c, nint ldc, bool accumulate)
    {
        Vector512<float> c00 = default, c01 = default, c02 = default, c10 = default, c11 = default, c12 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c30 = default, c31 = default, c32 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b), b1 = Vector512.Load(b + 16), b2 = Vector512.Load(b + 32);
            Vector512<float> a0 = Vector512.Create(a[0]);
            c00 = Avx512F.FusedMultiplyAdd(a0, b0, c00); c01 = Avx512F.FusedMultiplyAdd(a0, b1, c01); c02 = Avx512F.FusedMultiplyAdd(a0, b2, c02);
            Vector512<float> a1 = Vector512.Create(a[aRow]);
            c10 = Avx512F.FusedMultiplyAdd(a1, b0, c10); c11 = Avx512F.FusedMultiplyAdd(a1, b1, c11); c12 = Avx512F.FusedMultiplyAdd(a1, b2, c12);
            Vector512<float> a2 = Vector512.Create(a[2 * aRow]);
            c20 = Avx512F.FusedMultiplyAdd(a2, b0, c20); c21 = Avx512F.FusedMultiplyAdd(a2, b1, c21); c22 = Avx512F.FusedMultiplyAdd(a2, b2, c22);
            Vector512<float> a3 = Vector512.Create(a[3 * aRow]);
            c30 = Avx512F.FusedMultiplyAdd(a3, b0, c30); c31 = Avx512F.FusedMultiplyAdd(a3, b1, c31); c32 = Avx512F.FusedMultiplyAdd(a3, b2, c32);
            a += aStep;
            b += SgemmPacking.NR;
        }
        Store(c, c00, c01, c02, accumulate);
        Store(c + ldc, c10, c11, c12, accumulate);
        Store(c + 2 * ldc, c20, c21, c22, accumulate);
        Store(c + 3 * ldc, c30, c31, c32, accumulate);
    }

    private static void Rows2(int kc, float* a, nint aStep, nint aRow, float* b, float* c, nint ldc, bool accumulate)
    {
        Vector512<float> c00 = default, c01 = default, c02 = default, c10 = default, c11 = default, c12 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b), b1 = Vector512.Load(b + 16), b2 = Vector512.Load(b + 32);
            Vector512<float> a0 = Vector512.Create(a[0]);
            c00 = Avx512F.FusedMultiplyAdd(a0, b0, c00); c01 = Avx512F.FusedMultiplyAdd(a0, b1, c01); c02 = Avx512F.FusedMultiplyAdd(a0, b2, c02);
            Vector512<float> a1 = Vector512.Create(a[aRow]);
            c10 = Avx512F.FusedMultiplyAdd(a1, b0, c10); c11 = Avx512F.FusedMultiplyAdd(a1, b1, c11); c12 = Avx512F.FusedMultiplyAdd(a1, b2, c12);
            a += aStep;
            b += SgemmPacking.NR;
        }
        Store(c, c00, c01, c02, accumulate);
        Store(c + ldc, c10, c11, c12, accumulate);
    }

    private static void Rows1(int kc, float* a, nint aStep, float* b, float* c, bool accumulate)
    {
        // Two interleaved partial sums would break bitwise equality with Run; one chain per column block keeps it.
        Vector512<float> c00 = default, c01 = default, c02 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> a0 = Vector512.Create(a[0]);
            c00 = Avx512F.FusedMultiplyAdd(a0, Vector512.Load(b), c00);
            c01 = Avx512F.FusedMultiplyAdd(a0, Vector512.Load(b + 16), c01);
            c02 = Avx512F.FusedMultiplyAdd(a0, Vector512.Load(b + 32), c02);
            a += aStep;
            b += SgemmPacking.NR;
        }
        Store(c, c00, c01, c02, accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, bool accumulate)
    {
        if (accumulate)
        {
            v0 += Vector512.Load(c);
            v1 += Vector512.Load(c + 16);
            v2 += Vector512.Load(c + 32);
        }

        Vector512.Store(v0, c);
        Vector512.Store(v1, c + 16);
        Vector512.Store(v2, c + 32);
    }
}
