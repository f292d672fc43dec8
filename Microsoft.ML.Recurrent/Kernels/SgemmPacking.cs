using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Recurrent.Kernels;

/// <summary>
/// Copies blocks of op(A) and op(B) into the contiguous, zero-padded panels the micro-kernels stream through.
/// Packing absorbs the transposition, so a single micro-kernel serves NN, NT, TN and TT.
/// </summary>
internal static unsafe class SgemmPacking
{
    /// <summary>Width of a packed B panel (columns of C per micro-tile), shared by every kernel path.</summary>
    /// <remarks>48 = 3 zmm; the AVX2 and portable kernels walk the same panel in 16- and 8-wide slices.</remarks>
    public const int NR = 48;

    /// <summary><paramref name="n"/> rounded up to a multiple of <see cref="NR"/>.</summary>
    public static int PaddedWidth(int n) => checked((n + NR - 1) / NR * NR);

    /// <summary>
    /// Packs rows [i0, i0+mc) × columns [p0, p0+kc) of op(A) into ⌈mc/mr⌉ panels; panel ip is [kc × mr] row-major,
    /// i.e. <c>dst[ip·kc·mr + p·mr + r] = op(A)[i0 + ip·mr + r, p0 + p]</c>, rows past mc zero.
    /// </summary>
    public static void PackA(Transpose transA, float* a, nint lda, int i0, int mc, int p0, int kc, int mr, float* dst)
    {
        for (int m0 = 0; m0 < mc; m0 += mr)
        {
            int rows = Math.Min(mr, mc - m0);
            if (transA == Transpose.No)
            {
                // A stored m×k: op(A)[i, p] = a[i·lda + p]. Read each row contiguously, scatter with stride mr.
                for (int r = 0; r < rows; r++)
                {
                    float* src = a + (i0 + m0 + r) * lda + p0;
                    float* d = dst + r;
                    for (int p = 0; p < kc; p++)
                    {
                        d[p * mr] = src[p];
                    }
                }

                for (int r = rows; r < mr; r++)
                {
                    for (int p = 0; p < kc; p++)
                    {
                        dst[p * mr + r] = 0;
                    }
                }
            }
            else
            {
                // A stored k×m: op(A)[i, p] = a[p·lda + i]. Each packed row of the panel is a contiguous run of A.
                for (int p = 0; p < kc; p++)
                {
                    float* src = a + (nint)(p0 + p) * lda + i0 + m0;
                    float* d = dst + p * mr;
                    int r = 0;
                    for (; r < rows; r++)
                    {
                        d[r] = src[r];
                    }

                    for (; r < mr; r++)
                    {
                        d[r] = 0;
                    }
                }
            }

            dst += (nint)kc * mr;
        }
    }

    /// <summary>
    /// Packs rows [p0, p0+kc) × columns [j0, j0+nc) of op(B) into ⌈nc/NR⌉ panels; panel jp is [kc × NR] row-major,
    /// i.e. <c>dst[jp·kc·NR + p·NR + j] = op(B)[p0 + p, j0 + jp·NR + j]</c>, columns past nc zero.
    /// </summary>
    public static void PackB(Transpose transB, float* b, nint ldb, int p0, int kc, int j0, int nc, float* dst)
    {
        for (int n0 = 0; n0 < nc; n0 += NR)
        {
            int cols = Math.Min(NR, nc - n0);
            if (transB == Transpose.No)
            {
                // B stored k×n: op(B)[p, j] = b[p·ldb + j]; each packed row is a contiguous run of B.
                for (int p = 0; p < kc; p++)
                {
                    float* src = b + (nint)(p0 + p) * ldb + j0 + n0;
                    float* d = dst + p * NR;
                    if (cols == NR)
                    {
                        CopyRow48(src, d);
                    }
                    else
                    {
                        int j = 0;
                        for (; j < cols; j++)
                        {
                            d[j] = src[j];
                        }

                        for (; j < NR; j++)
                        {
                            d[j] = 0;
                        }
                    }
                }
            }
            else
            {
                // B stored n×k: op(B)[p, j] = b[j·ldb + p]. A whole [kc × NR] panel (48 KB at kc = 256) overflows L1,
                // so transpose in strips of 16 packed rows: each strip reads 16 contiguous floats of each stored row
                // and writes 16 × NR floats (3 KB) that stay in L1 until complete.
                const int Strip = 16;
                for (int ps = 0; ps < kc; ps += Strip)
                {
                    int pe = Math.Min(kc, ps + Strip);
                    int j = 0;
                    if (Avx2.IsSupported && ldb <= int.MaxValue / 8)
                    {
                        // Eight stored rows at once: one gather of b[(j + 0..7)·ldb + p] fills eight packed columns of row p.
                        Vector256<int> rowOffsets = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * (int)ldb;
                        for (; j + 8 <= cols; j += 8)
                        {
                            float* src = b + (nint)(j0 + n0 + j) * ldb + p0;
                            float* d = dst + j;
                            for (int p = ps; p < pe; p++)
                            {
                                Vector256.Store(Avx2.GatherVector256(src + p, rowOffsets, 4), d + p * NR);
                            }
                        }
                    }

                    for (; j < cols; j++)
                    {
                        float* src = b + (nint)(j0 + n0 + j) * ldb + p0;
                        float* d = dst + j;
                        for (int p = ps; p < pe; p++)
                        {
                            d[p * NR] = src[p];
                        }
                    }
                }

                for (int j = cols; j < NR; j++)
                {
                    for (int p = 0; p < kc; p++)
                    {
                        dst[p * NR + j] = 0;
                    }
                }
            }

            dst += (nint)kc * NR;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyRow48(float* src, float* dst)
    {
        // 48 floats = 3 × Vector512 = 6 × Vector256 = 12 × Vector128; the JIT picks the widest accelerated form.
        if (Vector256.IsHardwareAccelerated)
        {
            for (int j = 0; j < NR; j += 8)
            {
                Vector256.Store(Vector256.Load(src + j), dst + j);
            }
        }
        else
        {
            for (int j = 0; j < NR; j += 4)
            {
                Vector128.Store(Vector128.Load(src + j), dst + j);
            }
        }
    }
}
