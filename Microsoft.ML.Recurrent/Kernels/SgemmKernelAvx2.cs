using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Recurrent.Kernels;

/// <summary>
/// AVX2 + FMA micro-kernel: one 6 × 48 tile of C, computed as three 6 × 16 slices of the shared 48-wide B panel.
/// 12 ymm accumulators + 2 B vectors + 1 broadcast fit the 16 ymm registers.
/// </summary>
internal static unsafe class SgemmKernelAvx2
{
    /// <summary>Rows of C per micro-tile.</summary>
    public const int MR = 6;

    /// <summary>Whether this kernel can run on the current CPU.</summary>
    public static bool IsSupported => Avx2.IsSupported && Fma.IsSupported;

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
        for (int slice = 0; slice < SgemmPacking.NR; slice += 16)
        {
            RunSlice(kc, a, b + slice, c + slice, ldc, accumulate);
        }
    }

    private static void RunSlice(int kc, float* a, float* b, float* cs, nint ldc, bool accumulate)
    {
        Vector256<float> c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
        c00 = default; c01 = default; c10 = default; c11 = default; c20 = default; c21 = default; c30 = default; c31 = default; c40 = default; c41 = default; c50 = default; c51 = default;

        for (int p = 0; p < kc; p++)
        {
            // a: op(A)[0..MR, p]; b: op(B)[p, slice..slice+16] inside a panel row of 48.
            Vector256<float> b0 = Vector256.Load(b);
            Vector256<float> b1 = Vector256.Load(b + 8);
                Vector256<float> a0 = Vector256.Create(a[0]);
                c00 = Fma.MultiplyAdd(a0, b0, c00);
                c01 = Fma.MultiplyAdd(a0, b1, c01);
                Vector256<float> a1 = Vector256.Create(a[1]);
                c10 = Fma.MultiplyAdd(a1, b0, c10);
                c11 = Fma.MultiplyAdd(a1, b1, c11);
                Vector256<float> a2 = Vector256.Create(a[2]);
                c20 = Fma.MultiplyAdd(a2, b0, c20);
                c21 = Fma.MultiplyAdd(a2, b1, c21);
                Vector256<float> a3 = Vector256.Create(a[3]);
                c30 = Fma.MultiplyAdd(a3, b0, c30);
                c31 = Fma.MultiplyAdd(a3, b1, c31);
                Vector256<float> a4 = Vector256.Create(a[4]);
                c40 = Fma.MultiplyAdd(a4, b0, c40);
                c41 = Fma.MultiplyAdd(a4, b1, c41);
                Vector256<float> a5 = Vector256.Create(a[5]);
                c50 = Fma.MultiplyAdd(a5, b0, c50);
                c51 = Fma.MultiplyAdd(a5, b1, c51);
            a += MR;
            b += SgemmPacking.NR;
        }

        Store(cs + 0 * ldc, c00, c01, accumulate);
        Store(cs + 1 * ldc, c10, c11, accumulate);
        Store(cs + 2 * ldc, c20, c21, accumulate);
        Store(cs + 3 * ldc, c30, c31, accumulate);
        Store(cs + 4 * ldc, c40, c41, accumulate);
        Store(cs + 5 * ldc, c50, c51, accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, Vector256<float> v0, Vector256<float> v1, bool accumulate)
    {
        if (accumulate)
        {
            v0 += Vector256.Load(c);
            v1 += Vector256.Load(c + 8);
        }

        Vector256.Store(v0, c);
        Vector256.Store(v1, c + 8);
    }
}
