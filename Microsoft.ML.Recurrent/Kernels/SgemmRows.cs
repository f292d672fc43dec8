using System.Runtime.CompilerServices;

namespace Microsoft.ML.Recurrent.Kernels;

/// <summary>
/// C (+)= op(A)·B for fewer rows than a micro-tile holds — the recurrent step of a small batch, one sequence's step —
/// at the vector width <typeparamref name="TV"/>, written once for the Vector256 (AVX2 + FMA) and Vector128 (Arm64
/// AdvSimd, portable) paths. The full micro-kernels would multiply mostly padding rows there (a batch of one is 1 of
/// 6 rows on AVX2, 1 of 4 on the portable path) and a single row across one panel has too few independent FMA chains.
/// </summary>
/// <remarks>
/// <para>B is packed as <see cref="SgemmPacking"/> leaves it: panels of [kc × 48] one after the other. Vector v of a
/// row of C (columns v·W … v·W + W − 1, W = <typeparamref name="TV"/>.Count, which divides 48) lies in panel
/// v·W / 48 at offset v·W mod 48, so any set of vectors can be computed together whichever panels they are in.</para>
/// <para>Each element of C is summed exactly as the path's full micro-kernel sums it — from zero, ascending p, one
/// fused (or, where the CPU has no FMA, the same unfused) multiply-add per p, then added to C when accumulating — so
/// a row's result does not depend on how many rows are computed with it (the tests check it bit for bit).</para>
/// </remarks>
internal static unsafe class SgemmRows<TV> where TV : struct, ISimd<TV>
{
    private const int NR = SgemmPacking.NR;

    /// <summary>
    /// C[r, v·W + j] (+)= Σ_p op(A)[r, p]·B[p, v·W + j] for r &lt; <paramref name="rows"/> and the vectors
    /// v = <paramref name="firstVector"/> … <paramref name="firstVector"/> + <paramref name="vectors"/> − 1, with
    /// op(A)[r, p] = a[r·<paramref name="aRow"/> + p·<paramref name="aStep"/>] (a packed panel: MR and 1; a row-major A: 1 and lda).
    /// </summary>
    /// <param name="rows">Rows of C (any count; they go 4, 2 and 1 at a time).</param>
    /// <param name="firstVector">First vector of the row to compute (column firstVector·W).</param>
    /// <param name="vectors">Number of consecutive vectors.</param>
    /// <param name="kc">Depth of this k block.</param>
    /// <param name="a">op(A)[0, 0] of this k block.</param>
    /// <param name="aStep">Floats between op(A)[r, p] and op(A)[r, p + 1].</param>
    /// <param name="aRow">Floats between op(A)[r, p] and op(A)[r + 1, p].</param>
    /// <param name="b">First panel of the packed B block (column 0).</param>
    /// <param name="c">C[0, firstVector·W]; rows are <paramref name="ldc"/> floats apart.</param>
    /// <param name="ldc">Row stride of C.</param>
    /// <param name="accumulate">Add to C instead of overwriting it.</param>
    public static void Run(int rows, int firstVector, int vectors, int kc, float* a, nint aStep, nint aRow,
        float* b, float* c, nint ldc, bool accumulate)
    {
        int r = 0;
        for (; r + 4 <= rows; r += 4)
            Rows4(firstVector, vectors, kc, a + r * aRow, aStep, aRow, b, c + r * ldc, ldc, accumulate);
        if (r + 2 <= rows)
        {
            Rows2(firstVector, vectors, kc, a + r * aRow, aStep, aRow, b, c + r * ldc, ldc, accumulate);
            r += 2;
        }
        if (r < rows)
            Row1(firstVector, vectors, kc, a + r * aRow, aStep, b, c + r * ldc, accumulate);
    }

    /// <summary>Where vector <paramref name="v"/> of a row starts in a packed B block of depth <paramref name="kc"/> (floats from the block's start, at p = 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static nint Offset(int v, int kc)
    {
        int column = v * TV.Count;
        return (nint)(column / NR) * kc * NR + column % NR;
    }

    /// <summary>One row: eight vectors at a time (eight independent FMA chains, enough to hide the FMA latency on two pipes), then four, then one.</summary>
    private static void Row1(int first, int vectors, int kc, float* a, nint aStep, float* b, float* c, bool accumulate)
    {
        int w = TV.Count, end = first + vectors, v = first;
        for (; v + 8 <= end; v += 8)
        {
            nint o0 = Offset(v, kc), o1 = Offset(v + 1, kc), o2 = Offset(v + 2, kc), o3 = Offset(v + 3, kc);
            nint o4 = Offset(v + 4, kc), o5 = Offset(v + 5, kc), o6 = Offset(v + 6, kc), o7 = Offset(v + 7, kc);
            TV s0 = TV.Create(0), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
            float* ap = a, bp = b;
            for (int p = 0; p < kc; p++)
            {
                TV x = TV.Create(*ap);
                s0 = TV.MultiplyAdd(x, Load(bp + o0), s0);
                s1 = TV.MultiplyAdd(x, Load(bp + o1), s1);
                s2 = TV.MultiplyAdd(x, Load(bp + o2), s2);
                s3 = TV.MultiplyAdd(x, Load(bp + o3), s3);
                s4 = TV.MultiplyAdd(x, Load(bp + o4), s4);
                s5 = TV.MultiplyAdd(x, Load(bp + o5), s5);
                s6 = TV.MultiplyAdd(x, Load(bp + o6), s6);
                s7 = TV.MultiplyAdd(x, Load(bp + o7), s7);
                ap += aStep;
                bp += NR;
            }
            float* cv = c + (v - first) * w;
            Store(s0, cv, accumulate); Store(s1, cv + w, accumulate); Store(s2, cv + 2 * w, accumulate); Store(s3, cv + 3 * w, accumulate);
            Store(s4, cv + 4 * w, accumulate); Store(s5, cv + 5 * w, accumulate); Store(s6, cv + 6 * w, accumulate); Store(s7, cv + 7 * w, accumulate);
        }
        for (; v + 4 <= end; v += 4)
        {
            nint o0 = Offset(v, kc), o1 = Offset(v + 1, kc), o2 = Offset(v + 2, kc), o3 = Offset(v + 3, kc);
            TV s0 = TV.Create(0), s1 = s0, s2 = s0, s3 = s0;
            float* ap = a, bp = b;
            for (int p = 0; p < kc; p++)
            {
                TV x = TV.Create(*ap);
                s0 = TV.MultiplyAdd(x, Load(bp + o0), s0);
                s1 = TV.MultiplyAdd(x, Load(bp + o1), s1);
                s2 = TV.MultiplyAdd(x, Load(bp + o2), s2);
                s3 = TV.MultiplyAdd(x, Load(bp + o3), s3);
                ap += aStep;
                bp += NR;
            }
            float* cv = c + (v - first) * w;
            Store(s0, cv, accumulate); Store(s1, cv + w, accumulate); Store(s2, cv + 2 * w, accumulate); Store(s3, cv + 3 * w, accumulate);
        }
        for (; v < end; v++)
        {
            nint o0 = Offset(v, kc);
            TV s0 = TV.Create(0);
            float* ap = a, bp = b;
            for (int p = 0; p < kc; p++)
            {
                s0 = TV.MultiplyAdd(TV.Create(*ap), Load(bp + o0), s0);
                ap += aStep;
                bp += NR;
            }
            Store(s0, c + (v - first) * w, accumulate);
        }
    }

    /// <summary>Two rows, four vectors at a time (eight chains sharing each B load), then one.</summary>
    private static void Rows2(int first, int vectors, int kc, float* a, nint aStep, nint aRow, float* b, float* c, nint ldc, bool accumulate)
    {
        int w = TV.Count, end = first + vectors, v = first;
        for (; v + 4 <= end; v += 4)
        {
            nint o0 = Offset(v, kc), o1 = Offset(v + 1, kc), o2 = Offset(v + 2, kc), o3 = Offset(v + 3, kc);
            TV s00 = TV.Create(0), s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00, s13 = s00;
            float* ap = a, bp = b;
            for (int p = 0; p < kc; p++)
            {
                TV b0 = Load(bp + o0), b1 = Load(bp + o1), b2 = Load(bp + o2), b3 = Load(bp + o3);
                TV x0 = TV.Create(ap[0]);
                s00 = TV.MultiplyAdd(x0, b0, s00); s01 = TV.MultiplyAdd(x0, b1, s01); s02 = TV.MultiplyAdd(x0, b2, s02); s03 = TV.MultiplyAdd(x0, b3, s03);
                TV x1 = TV.Create(ap[aRow]);
                s10 = TV.MultiplyAdd(x1, b0, s10); s11 = TV.MultiplyAdd(x1, b1, s11); s12 = TV.MultiplyAdd(x1, b2, s12); s13 = TV.MultiplyAdd(x1, b3, s13);
                ap += aStep;
                bp += NR;
            }
            float* cv = c + (v - first) * w;
            Store(s00, cv, accumulate); Store(s01, cv + w, accumulate); Store(s02, cv + 2 * w, accumulate); Store(s03, cv + 3 * w, accumulate);
            cv += ldc;
            Store(s10, cv, accumulate); Store(s11, cv + w, accumulate); Store(s12, cv + 2 * w, accumulate); Store(s13, cv + 3 * w, accumulate);
        }
        for (; v < end; v++)
        {
            nint o0 = Offset(v, kc);
            TV s0 = TV.Create(0), s1 = s0;
            float* ap = a, bp = b;
            for (int p = 0; p < kc; p++)
            {
                TV b0 = Load(bp + o0);
                s0 = TV.MultiplyAdd(TV.Create(ap[0]), b0, s0);
                s1 = TV.MultiplyAdd(TV.Create(ap[aRow]), b0, s1);
                ap += aStep;
                bp += NR;
            }
            float* cv = c + (v - first) * w;
            Store(s0, cv, accumulate);
            Store(s1, cv + ldc, accumulate);
        }
    }

    /// <summary>Four rows, three vectors at a time (twelve accumulators, three B loads and four broadcasts per p: what 16 registers hold), then one.</summary>
    private static void Rows4(int first, int vectors, int kc, float* a, nint aStep, nint aRow, float* b, float* c, nint ldc, bool accumulate)
    {
        int w = TV.Count, end = first + vectors, v = first;
        for (; v + 3 <= end; v += 3)
        {
            nint o0 = Offset(v, kc), o1 = Offset(v + 1, kc), o2 = Offset(v + 2, kc);
            TV s00 = TV.Create(0), s01 = s00, s02 = s00, s10 = s00, s11 = s00, s12 = s00;
            TV s20 = s00, s21 = s00, s22 = s00, s30 = s00, s31 = s00, s32 = s00;
            float* ap = a, bp = b;
            for (int p = 0; p < kc; p++)
            {
                TV b0 = Load(bp + o0), b1 = Load(bp + o1), b2 = Load(bp + o2);
                TV x = TV.Create(ap[0]);
                s00 = TV.MultiplyAdd(x, b0, s00); s01 = TV.MultiplyAdd(x, b1, s01); s02 = TV.MultiplyAdd(x, b2, s02);
                x = TV.Create(ap[aRow]);
                s10 = TV.MultiplyAdd(x, b0, s10); s11 = TV.MultiplyAdd(x, b1, s11); s12 = TV.MultiplyAdd(x, b2, s12);
                x = TV.Create(ap[2 * aRow]);
                s20 = TV.MultiplyAdd(x, b0, s20); s21 = TV.MultiplyAdd(x, b1, s21); s22 = TV.MultiplyAdd(x, b2, s22);
                x = TV.Create(ap[3 * aRow]);
                s30 = TV.MultiplyAdd(x, b0, s30); s31 = TV.MultiplyAdd(x, b1, s31); s32 = TV.MultiplyAdd(x, b2, s32);
                ap += aStep;
                bp += NR;
            }
            float* cv = c + (v - first) * w;
            Store(s00, cv, accumulate); Store(s01, cv + w, accumulate); Store(s02, cv + 2 * w, accumulate);
            cv += ldc;
            Store(s10, cv, accumulate); Store(s11, cv + w, accumulate); Store(s12, cv + 2 * w, accumulate);
            cv += ldc;
            Store(s20, cv, accumulate); Store(s21, cv + w, accumulate); Store(s22, cv + 2 * w, accumulate);
            cv += ldc;
            Store(s30, cv, accumulate); Store(s31, cv + w, accumulate); Store(s32, cv + 2 * w, accumulate);
        }
        for (; v < end; v++)
        {
            nint o0 = Offset(v, kc);
            TV s0 = TV.Create(0), s1 = s0, s2 = s0, s3 = s0;
            float* ap = a, bp = b;
            for (int p = 0; p < kc; p++)
            {
                TV b0 = Load(bp + o0);
                s0 = TV.MultiplyAdd(TV.Create(ap[0]), b0, s0);
                s1 = TV.MultiplyAdd(TV.Create(ap[aRow]), b0, s1);
                s2 = TV.MultiplyAdd(TV.Create(ap[2 * aRow]), b0, s2);
                s3 = TV.MultiplyAdd(TV.Create(ap[3 * aRow]), b0, s3);
                ap += aStep;
                bp += NR;
            }
            float* cv = c + (v - first) * w;
            Store(s0, cv, accumulate);
            Store(s1, cv + ldc, accumulate);
            Store(s2, cv + 2 * ldc, accumulate);
            Store(s3, cv + 3 * ldc, accumulate);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV Load(float* p) => TV.Load(in *p, 0);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(TV value, float* c, bool accumulate)
    {
        // Same order as the micro-kernels: the k block's sum first, then the old C added to it.
        if (accumulate)
            value += TV.Load(in *c, 0);
        TV.Store(value, ref *c, 0);
    }
}
