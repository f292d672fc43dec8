using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Microsoft.ML.Recurrent.Kernels;

/// <summary>
/// Matrix-vector product y = W·x (+ b) for a row-major W [rows, cols]: what one sequence's step needs (generation and
/// single-row scoring), where a GEMM would pad the one row to a full register tile. Memory-bound: W is read once,
/// four rows at a time against the same x, at the vector width of <see cref="FusedKernels.Current"/>.
/// </summary>
internal static class Gemv
{
    /// <summary>y[r] = Σ_c W[r, c]·x[c] (+ bias[r] when <paramref name="bias"/> is not empty), r &lt; rows = y.Length.</summary>
    /// <exception cref="ArgumentException">A buffer is shorter than the shapes need.</exception>
    public static void Multiply(ReadOnlySpan<float> w, ReadOnlySpan<float> x, ReadOnlySpan<float> bias, Span<float> y)
    {
        int rows = y.Length, cols = x.Length;
        FusedKernels.RequireLength(w.Length, (long)rows * cols, nameof(w));
        if (!bias.IsEmpty) FusedKernels.RequireLength(bias.Length, rows, nameof(bias));
        switch (FusedKernels.Current())
        {
            case KernelPath.Avx512: Run<Simd512>(w, x, bias, y); break;
            case KernelPath.Avx2: Run<Simd256>(w, x, bias, y); break;
            default: Run<Simd128>(w, x, bias, y); break;
        }
    }

    private static void Run<TV>(ReadOnlySpan<float> w, ReadOnlySpan<float> x, ReadOnlySpan<float> bias, Span<float> y)
        where TV : struct, ISimd<TV>
    {
        int rows = y.Length, cols = x.Length, width = TV.Count;
        ref float pw = ref MemoryMarshal.GetReference(w);
        ref float px = ref MemoryMarshal.GetReference(x);
        int r = 0;
        for (; r + 4 <= rows; r += 4)
        {
            nuint r0 = (nuint)r * (nuint)cols, r1 = r0 + (nuint)cols, r2 = r1 + (nuint)cols, r3 = r2 + (nuint)cols;
            TV a0 = TV.Create(0), a1 = a0, a2 = a0, a3 = a0;
            int c = 0;
            for (; c + width <= cols; c += width)
            {
                var xv = TV.Load(in px, (nuint)c);
                a0 = TV.MultiplyAdd(TV.Load(in pw, r0 + (nuint)c), xv, a0);
                a1 = TV.MultiplyAdd(TV.Load(in pw, r1 + (nuint)c), xv, a1);
                a2 = TV.MultiplyAdd(TV.Load(in pw, r2 + (nuint)c), xv, a2);
                a3 = TV.MultiplyAdd(TV.Load(in pw, r3 + (nuint)c), xv, a3);
            }
            float s0 = TV.Sum(a0), s1 = TV.Sum(a1), s2 = TV.Sum(a2), s3 = TV.Sum(a3);
            for (; c < cols; c++)
            {
                float xc = Unsafe.Add(ref px, c);
                s0 += Unsafe.Add(ref pw, r0 + (nuint)c) * xc;
                s1 += Unsafe.Add(ref pw, r1 + (nuint)c) * xc;
                s2 += Unsafe.Add(ref pw, r2 + (nuint)c) * xc;
                s3 += Unsafe.Add(ref pw, r3 + (nuint)c) * xc;
            }
            if (!bias.IsEmpty)
            {
                s0 += bias[r]; s1 += bias[r + 1]; s2 += bias[r + 2]; s3 += bias[r + 3];
            }
            y[r] = s0; y[r + 1] = s1; y[r + 2] = s2; y[r + 3] = s3;
        }
        for (; r < rows; r++)
        {
            nuint r0 = (nuint)r * (nuint)cols;
            TV a0 = TV.Create(0);
            int c = 0;
            for (; c + width <= cols; c += width)
                a0 = TV.MultiplyAdd(TV.Load(in pw, r0 + (nuint)c), TV.Load(in px, (nuint)c), a0);
            float s0 = TV.Sum(a0);
            for (; c < cols; c++)
                s0 += Unsafe.Add(ref pw, r0 + (nuint)c) * Unsafe.Add(ref px, c);
            y[r] = bias.IsEmpty ? s0 : s0 + bias[r];
        }
    }
}
