using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Microsoft.ML.Recurrent.Kernels;

/// <summary>
/// Portable micro-kernel: one 4 × 48 tile of C, computed as six 4 × 8 slices with <see cref="Vector128{T}"/>.
/// 8 accumulators + 2 B vectors + 1 broadcast fit even the 16 xmm / 32 NEON registers. Correct on any CPU;
/// <see cref="Vector128.MultiplyAddEstimate(Vector128{float}, Vector128{float}, Vector128{float})"/> fuses where the
/// hardware can and multiplies-then-adds where it cannot, so results are deterministic per machine.
/// </summary>
internal static unsafe class SgemmKernelPortable
{
    /// <summary>Rows of C per micro-tile.</summary>
    public const int MR = 4;

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
        for (int slice = 0; slice < SgemmPacking.NR; slice += 8)
        {
            RunSlice(kc, a, b + slice, c + slice, ldc, accumulate);
        }
    }

    private static void RunSlice(int kc, float* a, float* b, float* cs, nint ldc, bool accumulate)
    {
        Vector128<float> c00, c01, c10, c11, c20, c21, c30, c31;
        c00 = default; c01 = default; c10 = default; c11 = default; c20 = default; c21 = default; c30 = default; c31 = default;

        for (int p = 0; p < kc; p++)
        {
            // a: op(A)[0..MR, p]; b: op(B)[p, slice..slice+8] inside a panel row of 48.
            Vector128<float> b0 = Vector128.Load(b);
            Vector128<float> b1 = Vector128.Load(b + 4);
                Vector128<float> a0 = Vector128.Create(a[0]);
                c00 = Vector128.MultiplyAddEstimate(a0, b0, c00);
                c01 = Vector128.MultiplyAddEstimate(a0, b1, c01);
                Vector128<float> a1 = Vector128.Create(a[1]);
                c10 = Vector128.MultiplyAddEstimate(a1, b0, c10);
                c11 = Vector128.MultiplyAddEstimate(a1, b1, c11);
                Vector128<float> a2 = Vector128.Create(a[2]);
                c20 = Vector128.MultiplyAddEstimate(a2, b0, c20);
                c21 = Vector128.MultiplyAddEstimate(a2, b1, c21);
                Vector128<float> a3 = Vector128.Create(a[3]);
                c30 = Vector128.MultiplyAddEstimate(a3, b0, c30);
                c31 = Vector128.MultiplyAddEstimate(a3, b1, c31);
            a += MR;
            b += SgemmPacking.NR;
        }

        Store(cs + 0 * ldc, c00, c01, accumulate);
        Store(cs + 1 * ldc, c10, c11, accumulate);
        Store(cs + 2 * ldc, c20, c21, accumulate);
        Store(cs + 3 * ldc, c30, c31, accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, Vector128<float> v0, Vector128<float> v1, bool accumulate)
    {
        if (accumulate)
        {
            v0 += Vector128.Load(c);
            v1 += Vector128.Load(c + 4);
        }

        Vector128.Store(v0, c);
        Vector128.Store(v1, c + 4);
    }
}
