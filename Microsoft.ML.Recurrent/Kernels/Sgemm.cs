using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Microsoft.ML.Recurrent.Kernels;

/// <summary>
/// Single-precision general matrix multiply, row-major: <c>C[m×n] (=, or +=) op(A)[m×k] · op(B)[k×n]</c>.
/// </summary>
/// <remarks>
/// <para>
/// BLIS/GotoBLAS structure: jc (NC columns) → pc (KC depth, ascending) → pack op(B) block into NR-wide panels →
/// ic (MC rows) → pack op(A) block into MR-row panels → MR × NR micro-kernel over kc. Packing absorbs the
/// transpositions and zero-pads edges; partial tiles go through a small scratch tile, so the micro-kernels only
/// ever see full tiles.
/// </para>
/// <para>
/// Determinism: every C element is produced the same way whatever the blocking in m and n, the thread count, or
/// whether B was pre-packed: within a k block the kernel accumulates from zero in ascending k, and the k blocks
/// (boundaries at multiples of <see cref="KC"/>) are added to C in ascending order. Results are therefore bitwise
/// identical across runs, thread counts and the packed/unpacked routes for a given <see cref="KernelPath"/>.
/// </para>
/// <para>Not here: alpha/beta scaling other than 0/1, column-major inputs, other element types.</para>
/// </remarks>
internal static unsafe class Sgemm
{
    /// <summary>Depth of a k block. Fixed for every path because it is baked into <see cref="PackedMatrix"/>'s layout and into the summation order.</summary>
    /// <remarks>A packed A panel (KC × 8 floats = 8 KB) stays in L1 while the KC × 48 B panels (48 KB each) stream from L2.</remarks>
    public const int KC = 256;

    /// <summary>Rows of op(A) packed at a time (rounded down to a multiple of the kernel's MR); [MC × KC] = 128 KB.</summary>
    private const int MC = 128;

    /// <summary>
    /// Columns of op(B) per block (multiple of NR): the [KC × NC] = 480 KB packed B block stays in a 1 MB L2 while
    /// every A panel of the block streams past it. Measured on Zen 4: 480–1536 all within noise; the smallest keeps headroom.
    /// </summary>
    private const int NC = 480;

    /// <summary>
    /// MC blocks per row chunk when B is pre-packed (see RunRange): 512 rows on the AVX-512 and portable paths, 504 on
    /// AVX2. Chunks of 256–512 rows measured alike (Zen 5: 177–180 GFLOP/s at 8192 × 2048 × 1024, AVX-512 path).
    /// </summary>
    private const int RowChunkBlocks = 4;

    /// <summary>
    /// Widest column block: NC plus a short tail that would otherwise be a block of its own (1024 columns went 480 + 480 +
    /// 64, packing A three times; now 480 + 544).
    /// </summary>
    private const int MaxNC = NC + NC / 4;

    /// <summary>
    /// Most k blocks of a chunk of A that is packed once for all column blocks (see RunRange): 4 × KC = 1,024 deep, a
    /// buffer of at most 4 MC blocks × 4 k blocks ≈ 2.2 MB per thread; deeper products pack per column block as before.
    /// </summary>
    private const int MaxKBlocksPackedOnce = 4;

    /// <summary>Below this many multiply-adds (m·n·k) a call stays on one thread: the hand-off costs more than it saves.</summary>
    private const long ParallelThreshold = 1L << 21;

    [ThreadStatic]
    private static KernelPath t_path;

    [ThreadStatic]
    private static AlignedBuffer? t_packA;

    [ThreadStatic]
    private static AlignedBuffer? t_packB;

    [ThreadStatic]
    private static AlignedBuffer? t_tile;

    [ThreadStatic]
    private static Action<int>? t_partStarting;

    /// <summary>
    /// Test seam: when set, each part of a parallel call made from this thread calls it with the part's index (0 is the
    /// caller's own part) just before computing, on whichever thread runs the part; an exception it throws fails that
    /// part. Read once per parallel call, never per tile; null outside tests.
    /// </summary>
    internal static Action<int>? PartStartingForTests
    {
        get => t_partStarting;
        set => t_partStarting = value;
    }

    /// <summary>
    /// Which micro-kernel the calling thread uses; <see cref="KernelPath.Auto"/> (the default) picks the widest the CPU
    /// supports. Thread-static so tests running in parallel can force different paths.
    /// </summary>
    public static KernelPath Path
    {
        get => t_path;
        set => t_path = value;
    }

    /// <summary>Whether <paramref name="path"/> can run on the current CPU.</summary>
    public static bool IsSupported(KernelPath path) => path switch
    {
        KernelPath.Auto or KernelPath.Portable => true,
        KernelPath.Avx512 => SgemmKernelAvx512.IsSupported,
        KernelPath.Avx2 => SgemmKernelAvx2.IsSupported,
        _ => false,
    };

    /// <summary>Resolves <see cref="KernelPath.Auto"/> to a concrete path and checks that a concrete one is supported.</summary>
    public static KernelPath Resolve(KernelPath path)
    {
        if (path == KernelPath.Auto)
        {
            return SgemmKernelAvx512.IsSupported ? KernelPath.Avx512
                : SgemmKernelAvx2.IsSupported ? KernelPath.Avx2
                : KernelPath.Portable;
        }

        if (!Enum.IsDefined(path))
        {
            throw new ArgumentOutOfRangeException(nameof(path));
        }

        if (!IsSupported(path))
        {
            throw new PlatformNotSupportedException($"SGEMM kernel path {path} is not supported on this CPU.");
        }

        return path;
    }

    /// <summary>
    /// Effectively computes <c>C[i, j] = (accumulate ? C[i, j] : 0) + Σ_p op(A)[i, p] · op(B)[p, j]</c>
    /// for i &lt; m, j &lt; n, p &lt; k, using the calling thread's <see cref="Path"/>.
    /// </summary>
    /// <param name="transA">op(A) = A, stored m×k with row stride <paramref name="lda"/>; or Aᵀ, A stored k×m.</param>
    /// <param name="transB">op(B) = B, stored k×n with row stride <paramref name="ldb"/>; or Bᵀ, B stored n×k.</param>
    /// <param name="m">Rows of C.</param>
    /// <param name="n">Columns of C.</param>
    /// <param name="k">Inner dimension. With k = 0 and no accumulation, C is zeroed.</param>
    /// <param name="a">Storage of A (may be longer than needed).</param>
    /// <param name="lda">Row stride of the stored A.</param>
    /// <param name="b">Storage of B (may be longer than needed).</param>
    /// <param name="ldb">Row stride of the stored B.</param>
    /// <param name="c">Storage of C (may be longer than needed).</param>
    /// <param name="ldc">Row stride of C.</param>
    /// <param name="accumulate">Add into C instead of overwriting it.</param>
    /// <param name="maxThreads">Upper bound on threads; large products are split over row or column blocks of C.</param>
    public static void Multiply(Transpose transA, Transpose transB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc,
        bool accumulate, int maxThreads = 1)
        => Multiply(t_path, transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate, maxThreads);

    /// <summary>As <see cref="Multiply(Transpose, Transpose, int, int, int, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, Span{float}, int, bool, int)"/>, with an explicit kernel path.</summary>
    public static void Multiply(KernelPath path, Transpose transA, Transpose transB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc,
        bool accumulate, int maxThreads = 1)
    {
        ValidateArguments(transA, transB, m, n, k, a, lda, b, ldb, c, ldc);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxThreads, 1);
        path = Resolve(path);
        if (m == 0 || n == 0)
        {
            return;
        }

        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            var job = new GemmJob(path, transA, transB, m, n, k, pa, lda, pb, ldb, null, 0, pc, ldc, accumulate);
            Dispatch(in job, maxThreads);
        }
    }

    /// <summary>
    /// Packs op(B) (k × n) once for repeated use with
    /// <see cref="Multiply(Transpose, int, ReadOnlySpan{float}, int, PackedMatrix, Span{float}, int, bool, int)"/>.
    /// </summary>
    /// <param name="transB">op(B) = B, stored k×n; or Bᵀ, B stored n×k.</param>
    /// <param name="k">Rows of op(B).</param>
    /// <param name="n">Columns of op(B).</param>
    /// <param name="b">Storage of B.</param>
    /// <param name="ldb">Row stride of the stored B.</param>
    public static PackedMatrix PackB(Transpose transB, int k, int n, ReadOnlySpan<float> b, int ldb)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        var packed = new PackedMatrix(k, n);
        RepackB(packed, transB, b, ldb);
        return packed;
    }

    /// <summary>Refreshes <paramref name="packed"/> in place from new values of B (same shape and transposition form); allocation-free.</summary>
    public static void RepackB(PackedMatrix packed, Transpose transB, ReadOnlySpan<float> b, int ldb)
    {
        ArgumentNullException.ThrowIfNull(packed);
        int k = packed.Rows, n = packed.Columns;
        // Stored B is k×n (No) or n×k (Yes).
        ValidateOperand(transB == Transpose.No ? k : n, transB == Transpose.No ? n : k, b.Length, ldb, nameof(b), nameof(ldb));
        fixed (float* pb = b)
        {
            float* dst = packed.Data;
            for (int pc = 0; pc < k; pc += KC)
            {
                int kc = Math.Min(KC, k - pc);
                // Block [kc × PaddedColumns] starts at pc·PaddedColumns; see PackedMatrix remarks.
                SgemmPacking.PackB(transB, pb, ldb, pc, kc, 0, n, dst + (nint)pc * packed.PaddedColumns);
            }
        }

        GC.KeepAlive(packed);
    }

    /// <summary>
    /// Effectively computes <c>C[i, j] = (accumulate ? C[i, j] : 0) + Σ_p op(A)[i, p] · B[p, j]</c> with a pre-packed B
    /// (k = <see cref="PackedMatrix.Rows"/>, n = <see cref="PackedMatrix.Columns"/>). Allocation-free in steady state;
    /// bitwise identical to the unpacked overload on the same path.
    /// </summary>
    /// <param name="transA">op(A) = A, stored m×k with row stride <paramref name="lda"/>; or Aᵀ, A stored k×m.</param>
    /// <param name="m">Rows of C.</param>
    /// <param name="a">Storage of A.</param>
    /// <param name="lda">Row stride of the stored A.</param>
    /// <param name="b">Packed op(B).</param>
    /// <param name="c">Storage of C.</param>
    /// <param name="ldc">Row stride of C.</param>
    /// <param name="accumulate">Add into C instead of overwriting it.</param>
    /// <param name="maxThreads">Upper bound on threads.</param>
    public static void Multiply(Transpose transA, int m, ReadOnlySpan<float> a, int lda, PackedMatrix b,
        Span<float> c, int ldc, bool accumulate, int maxThreads = 1)
        => Multiply(t_path, transA, m, a, lda, b, c, ldc, accumulate, maxThreads);

    /// <summary>As <see cref="Multiply(Transpose, int, ReadOnlySpan{float}, int, PackedMatrix, Span{float}, int, bool, int)"/>, with an explicit kernel path.</summary>
    public static void Multiply(KernelPath path, Transpose transA, int m, ReadOnlySpan<float> a, int lda, PackedMatrix b,
        Span<float> c, int ldc, bool accumulate, int maxThreads = 1)
    {
        ArgumentNullException.ThrowIfNull(b);
        int k = b.Rows, n = b.Columns;
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ValidateOperand(transA == Transpose.No ? m : k, transA == Transpose.No ? k : m, a.Length, lda, nameof(a), nameof(lda));
        ValidateOperand(m, n, c.Length, ldc, nameof(c), nameof(ldc));
        ArgumentOutOfRangeException.ThrowIfLessThan(maxThreads, 1);
        path = Resolve(path);
        if (m == 0 || n == 0)
        {
            return;
        }

        fixed (float* pa = a)
        fixed (float* pc = c)
        {
            if (transA == Transpose.No && m < MicroRows(path) && k > 0)
            {
                // Small batches (the recurrent step of a few sequences): read A in place, no packing, no blocking over n.
                if (path == KernelPath.Avx512)
                    SmallRows(m, n, k, pa, lda, b, pc, ldc, accumulate);
                else if (path == KernelPath.Avx2)
                    SmallRows<Simd256>(m, n, k, pa, lda, b, pc, ldc, accumulate);
                else
                    SmallRows<Simd128>(m, n, k, pa, lda, b, pc, ldc, accumulate);
                GC.KeepAlive(b);
                return;
            }

            var job = new GemmJob(path, transA, Transpose.No, m, n, k, pa, lda, null, 0, b.Data, b.PaddedColumns, pc, ldc, accumulate);
            Dispatch(in job, maxThreads);
        }

        GC.KeepAlive(b);
    }

    /// <summary>
    /// C (+)= A·B for m &lt; MR rows of a row-major A and a pre-packed B, on AVX-512, without packing A. Blocks over k
    /// exactly as the general path does (KC, accumulating from the second block), and each element sums over p in the
    /// same order, so the result is bitwise identical to it.
    /// </summary>
    private static void SmallRows(int m, int n, int k, float* a, nint lda, PackedMatrix b, float* c, nint ldc, bool accumulate)
    {
        const int NR = SgemmPacking.NR;
        float* tile = AlignedBuffer.Ensure(ref t_tile, MaxMR * NR);
        int fullPanels = n / NR, edge = n - fullPanels * NR;
        for (int pc = 0; pc < k; pc += KC)
        {
            int kc = Math.Min(KC, k - pc);
            bool acc = accumulate || pc > 0;
            float* bBlock = b.Data + (nint)pc * b.PaddedColumns; // panels of [kc × NR], one after the other
            float* aBlock = a + pc;
            if (m == 1)
            {
                SgemmKernelAvx512.Row1Panels(fullPanels, kc, aBlock, 1, bBlock, c, acc);
            }
            else
            {
                for (int q = 0; q < fullPanels; q++)
                    SgemmKernelAvx512.RunRows(m, kc, aBlock, 1, lda, bBlock + (nint)q * kc * NR, c + q * NR, ldc, acc);
            }
            if (edge > 0)
            {
                SgemmKernelAvx512.RunRows(m, kc, aBlock, 1, lda, bBlock + (nint)fullPanels * kc * NR, tile, NR, accumulate: false);
                AddOrCopy(m, edge, tile, NR, c + fullPanels * NR, ldc, acc);
            }
        }
    }

    /// <summary>
    /// <see cref="SmallRows(int, int, int, float*, nint, PackedMatrix, float*, nint, bool)"/> on the narrower paths, through
    /// the width-generic <see cref="SgemmRows{TV}"/>: whole vectors straight into C, the last partial vector through the
    /// scratch tile (the packed B is zero beyond column n). Bitwise identical to the general path, as there.
    /// </summary>
    private static void SmallRows<TV>(int m, int n, int k, float* a, nint lda, PackedMatrix b, float* c, nint ldc, bool accumulate)
        where TV : struct, ISimd<TV>
    {
        int w = TV.Count, fullVectors = n / w, edge = n - fullVectors * w;
        float* tile = AlignedBuffer.Ensure(ref t_tile, MaxMR * SgemmPacking.NR);
        for (int pc = 0; pc < k; pc += KC)
        {
            int kc = Math.Min(KC, k - pc);
            bool acc = accumulate || pc > 0;
            float* bBlock = b.Data + (nint)pc * b.PaddedColumns;
            float* aBlock = a + pc;
            SgemmRows<TV>.Run(m, 0, fullVectors, kc, aBlock, 1, lda, bBlock, c, ldc, acc);
            if (edge > 0)
            {
                SgemmRows<TV>.Run(m, fullVectors, 1, kc, aBlock, 1, lda, bBlock, tile, w, accumulate: false);
                AddOrCopy(m, edge, tile, w, c + fullVectors * w, ldc, acc);
            }
        }
    }

    /// <summary>C[r, j] (+)= tile[r, j] for r &lt; rows, j &lt; cols: the valid part of an edge tile.</summary>
    private static void AddOrCopy(int rows, int cols, float* tile, nint ldt, float* c, nint ldc, bool accumulate)
    {
        for (int r = 0; r < rows; r++)
        {
            float* src = tile + r * ldt;
            float* dst = c + r * ldc;
            if (accumulate)
                for (int j = 0; j < cols; j++) dst[j] += src[j];
            else
                for (int j = 0; j < cols; j++) dst[j] = src[j];
        }
    }

    /// <summary>Argument checks (also used by the tests' naive reference SGEMM).</summary>
    internal static void ValidateArguments(Transpose transA, Transpose transB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        if (transA is not (Transpose.No or Transpose.Yes))
        {
            throw new ArgumentOutOfRangeException(nameof(transA));
        }

        if (transB is not (Transpose.No or Transpose.Yes))
        {
            throw new ArgumentOutOfRangeException(nameof(transB));
        }

        // Stored A: m×k (No) or k×m (Yes). Stored B: k×n (No) or n×k (Yes). C: m×n.
        ValidateOperand(transA == Transpose.No ? m : k, transA == Transpose.No ? k : m, a.Length, lda, nameof(a), nameof(lda));
        ValidateOperand(transB == Transpose.No ? k : n, transB == Transpose.No ? n : k, b.Length, ldb, nameof(b), nameof(ldb));
        ValidateOperand(m, n, c.Length, ldc, nameof(c), nameof(ldc));
    }

    /// <summary>Checks that a row-major rows×columns matrix with row stride <paramref name="stride"/> fits in <paramref name="length"/> floats.</summary>
    private static void ValidateOperand(int rows, int columns, int length, int stride, string spanName, string strideName)
    {
        if (stride < columns || stride < 0)
        {
            throw new ArgumentOutOfRangeException(strideName, stride, $"Row stride must be at least the row width ({columns}).");
        }

        // Last element used: (rows − 1)·stride + columns − 1.
        long needed = rows == 0 || columns == 0 ? 0 : (long)(rows - 1) * stride + columns;
        if (length < needed)
        {
            throw new ArgumentException($"Span holds {length} elements but a {rows}×{columns} matrix with row stride {stride} needs {needed}.", spanName);
        }
    }

    /// <summary>Everything one call needs, passed by reference to the worker threads.</summary>
    private readonly struct GemmJob
    {
        public readonly KernelPath Path;
        public readonly Transpose TransA, TransB;
        public readonly int M, N, K;
        public readonly float* A, B, PackedB, C;
        public readonly nint Lda, Ldb, PackedStride, Ldc;
        public readonly bool Accumulate;

        public GemmJob(KernelPath path, Transpose transA, Transpose transB, int m, int n, int k,
            float* a, nint lda, float* b, nint ldb, float* packedB, nint packedStride, float* c, nint ldc, bool accumulate)
        {
            Path = path;
            TransA = transA;
            TransB = transB;
            M = m;
            N = n;
            K = k;
            A = a;
            Lda = lda;
            B = b;
            Ldb = ldb;
            PackedB = packedB;
            PackedStride = packedStride;
            C = c;
            Ldc = ldc;
            Accumulate = accumulate;
        }

        public int MR => MicroRows(Path);
    }

    /// <summary>Largest MR of any kernel (sizes the edge-tile scratch).</summary>
    private const int MaxMR = SgemmKernelAvx512.MR > SgemmKernelAvx2.MR ? SgemmKernelAvx512.MR : SgemmKernelAvx2.MR;

    internal static int MicroRows(KernelPath path) => path switch
    {
        KernelPath.Avx512 => SgemmKernelAvx512.MR,
        KernelPath.Avx2 => SgemmKernelAvx2.MR,
        _ => SgemmKernelPortable.MR,
    };

    /// <summary>Splits the job over up to <paramref name="maxThreads"/> threads (see <see cref="ChooseSplit"/>) and runs it.</summary>
    private static void Dispatch(in GemmJob job, int maxThreads)
    {
        var (threads, splitColumns) = ChooseSplit(job.M, job.N, job.K, job.MR, job.PackedB != null, maxThreads);
        if (threads <= 1)
        {
            RunRange(in job, 0, job.M, 0, job.N);
            return;
        }

        SgemmParallel.Run(in job, threads, splitColumns);
    }

    /// <summary>
    /// How a product is shared between threads: how many, and whether each takes a range of C's columns or of its rows.
    /// Each part packs again what it shares with the others — split by columns, every part packs all of A (m × k); by
    /// rows, every part packs all of B (k × n), or nothing when B is pre-packed. So rows are split when every thread gets
    /// at least four row panels and B is pre-packed or no larger than A (n ≤ m); otherwise columns, unless C is too
    /// narrow for them. Zen 5, two threads, rows vs columns (both paths): 1024³ −4 to −16 %, the weight gradient Aᵀ·B at
    /// 1024 × 512 × 2048 −11 to −27 %, the input gradient 6400 × 300 × 2048 −19 to −26 %, a pre-packed projection
    /// 2048 × 1024 × 512 0 to −12 %; within noise elsewhere, except a 32-row step on AVX2 (6 row panels: 18 and 14 rows
    /// per part) that rows made 15–20 % slower — hence four panels per thread, not two.
    /// Either way every element of C is computed by the same kernel over the same k blocks: the bits do not change.
    /// </summary>
    internal static (int Threads, bool SplitColumns) ChooseSplit(int m, int n, int k, int mr, bool packedB, int maxThreads)
    {
        int threads = (long)m * n * k < ParallelThreshold ? 1 : maxThreads;
        int columnPanels = (n + SgemmPacking.NR - 1) / SgemmPacking.NR;
        int rowPanels = (m + mr - 1) / mr;
        bool splitRows = rowPanels >= 4 * threads && (packedB || n <= m);
        bool splitColumns = !splitRows && (columnPanels >= 2 * threads || columnPanels >= rowPanels);
        return (Math.Max(1, Math.Min(threads, splitColumns ? columnPanels : rowPanels)), splitColumns);
    }

    /// <summary>Computes the block C[i0..i1, j0..j1] of the job on the calling thread.</summary>
    private static void RunRange(in GemmJob job, int i0, int i1, int j0, int j1)
    {
        int mr = job.MR;
        int mcBlock = MC / mr * mr;
        nint ldc = job.Ldc;
        float* tile = AlignedBuffer.Ensure(ref t_tile, MaxMR * SgemmPacking.NR); // scratch [MR × NR] for edge tiles
        int k = job.K;
        if (k == 0)
        {
            // Empty sum: C = accumulate ? C : 0.
            if (!job.Accumulate)
            {
                for (int i = i0; i < i1; i++)
                {
                    new Span<float>(job.C + i * ldc + j0, j1 - j0).Clear();
                }
            }

            return;
        }

        // Rows go in chunks of a few MC blocks: the chunk's rows of A and C stay in cache while every column block and k
        // block passes over them; a tall A otherwise streams the whole C column strip (m × NC) through memory once per k
        // block. Zen 5, GFLOP/s before → after: pre-packed 8192 × 2048 × 1024 146 → 184 (AVX-512) and 85 → 95 (AVX2);
        // 1024³ 150 → 167 and 81 → 87. Not for Aᵀ with B packed here (weight gradients): each chunk packs B again, and
        // 2048 × 1024 × 8192 lost 4 % on AVX2. Per element nothing changes (same k blocks, same order).
        int chunk = job.TransA == Transpose.Yes && job.PackedB == null ? i1 - i0 : RowChunkBlocks * mcBlock;

        // Against a pre-packed B with more than one column block (the input projections, and the per-step recurrent
        // product of a batch), a chunk's A is packed once, every MC block and k block of it, and reused by every column
        // block instead of packed again for each. Same packed values, same kernels: nothing changes per element.
        int kBlocks = (k + KC - 1) / KC;
        int chunkBlocks = (Math.Min(chunk, i1 - i0) + mcBlock - 1) / mcBlock;
        bool packOnce = job.PackedB != null && j1 - j0 > MaxNC && kBlocks <= MaxKBlocksPackedOnce;
        nint aBlockStride = (nint)(mcBlock + mr) * KC;
        float* aPack = AlignedBuffer.Ensure(ref t_packA, (int)(aBlockStride * (packOnce ? chunkBlocks * kBlocks : 1)));
        float* bPack = job.PackedB == null ? AlignedBuffer.Ensure(ref t_packB, (MaxNC + SgemmPacking.NR) * KC) : null;

        for (int i0c = i0; i0c < i1; i0c += chunk)
        {
            int i1c = Math.Min(i1, i0c + chunk);
            if (packOnce)
            {
                // Block (b, p) of the chunk: MC block b, k block p, at (b·kBlocks + p)·aBlockStride.
                for (int ic = i0c, blockIndex = 0; ic < i1c; ic += mcBlock, blockIndex++)
                {
                    for (int pc = 0; pc < k; pc += KC)
                        SgemmPacking.PackA(job.TransA, job.A, job.Lda, ic, Math.Min(mcBlock, i1c - ic), pc, Math.Min(KC, k - pc), mr,
                            aPack + (blockIndex * kBlocks + pc / KC) * aBlockStride);
                }
            }

            for (int jc = j0, nc; jc < j1; jc += nc)
            {
                // A short last column block joins this one: it would cost a pass packing A for a few panels of work.
                nc = j1 - jc <= MaxNC ? j1 - jc : NC;
                for (int pc = 0; pc < k; pc += KC)
                {
                    int kc = Math.Min(KC, k - pc);
                    float* bBlock;
                    if (job.PackedB == null)
                    {
                        SgemmPacking.PackB(job.TransB, job.B, job.Ldb, pc, kc, jc, nc, bPack);
                        bBlock = bPack;
                    }
                    else
                    {
                        // Pre-packed: block pc starts at pc·PaddedColumns; column jc (a multiple of NR) is panel jc/NR.
                        bBlock = job.PackedB + (nint)pc * job.PackedStride + (nint)(jc / SgemmPacking.NR) * kc * SgemmPacking.NR;
                    }

                    bool accumulate = job.Accumulate || pc > 0;
                    for (int ic = i0c; ic < i1c; ic += mcBlock)
                    {
                        int mc = Math.Min(mcBlock, i1c - ic);
                        float* aBlock = aPack;
                        if (packOnce)
                            aBlock += ((ic - i0c) / mcBlock * kBlocks + pc / KC) * aBlockStride;
                        else
                            SgemmPacking.PackA(job.TransA, job.A, job.Lda, ic, mc, pc, kc, mr, aPack);
                        MacroKernel(job.Path, mr, mc, nc, kc, aBlock, bBlock, job.C + ic * ldc + jc, ldc, accumulate, tile);
                    }
                }
            }
        }
    }

    /// <summary>
    /// Runs the micro-kernel over an [mc × nc] block of C from packed A (⌈mc/MR⌉ panels of [kc × MR]) and packed B
    /// (⌈nc/NR⌉ panels of [kc × NR]). Each A panel stays in L1 while the B panels stream past it from L2.
    /// </summary>
    private static void MacroKernel(KernelPath path, int mr, int mc, int nc, int kc, float* aPack, float* bPack,
        float* c, nint ldc, bool accumulate, float* tile)
    {
        const int NR = SgemmPacking.NR;
        for (int m0 = 0; m0 < mc; m0 += mr)
        {
            int rows = Math.Min(mr, mc - m0);
            float* aPanel = aPack + (nint)(m0 / mr) * kc * mr;  // panel m0/mr: [kc × mr]
            int start = 0;
            if (rows == 1 && nc >= NR)
            {
                // A single row (batch of one): all full-width panels at once, several FMA chains in flight.
                start = nc / NR * NR;
                if (path == KernelPath.Avx512)
                    SgemmKernelAvx512.Row1Panels(nc / NR, kc, aPanel, bPack, c + m0 * ldc, accumulate);
                else
                    PartialRows(path, 1, start, kc, aPanel, mr, bPack, c + m0 * ldc, ldc, accumulate);
            }
            for (int n0 = start; n0 < nc; n0 += NR)
            {
                int cols = Math.Min(NR, nc - n0);
                float* bPanel = bPack + (nint)(n0 / NR) * kc * NR; // panel n0/NR: [kc × NR]
                float* cTile = c + m0 * ldc + n0;                    // C[m0.., n0..]
                if (rows == mr && cols == NR)
                {
                    RunKernel(path, kc, aPanel, bPanel, cTile, ldc, accumulate);
                }
                else if (cols == NR)
                {
                    // Partial row tile (small batches): only the real rows, straight into C.
                    PartialRows(path, rows, NR, kc, aPanel, mr, bPanel, cTile, ldc, accumulate);
                }
                else if (cols % VectorWidth(path) == 0)
                {
                    // Edge panel of whole vectors (1024 columns end in 16 on every path): only those columns, straight
                    // into C — the full kernel would compute 48 columns into scratch for them.
                    VectorColumns(path, rows, cols, kc, aPanel, mr, bPanel, cTile, ldc, accumulate);
                }
                else
                {
                    // Edge tile: compute the tile into scratch (padding rows/columns are zeros), copy the valid part.
                    if (rows < mr)
                        PartialRows(path, rows, NR, kc, aPanel, mr, bPanel, tile, NR, accumulate: false);
                    else
                        RunKernel(path, kc, aPanel, bPanel, tile, NR, accumulate: false);
                    AddOrCopy(rows, cols, tile, NR, cTile, ldc, accumulate);
                }
            }
        }
    }

    /// <summary>
    /// The first <paramref name="rows"/> rows of a packed A panel (element (r, p) at p·<paramref name="mr"/> + r) times
    /// <paramref name="columns"/> (a multiple of <see cref="SgemmPacking.NR"/>) columns of packed B panels, without the padding rows.
    /// </summary>
    private static void PartialRows(KernelPath path, int rows, int columns, int kc, float* aPanel, int mr, float* b,
        float* c, nint ldc, bool accumulate)
    {
        if (path == KernelPath.Avx512)
        {
            // The hand-written AVX-512 row kernels (a full 48-wide panel per call).
            for (int q = 0; q < columns / SgemmPacking.NR; q++)
                SgemmKernelAvx512.RunRows(rows, kc, aPanel, b + (nint)q * kc * SgemmPacking.NR, c + q * SgemmPacking.NR, ldc, accumulate);
        }
        else
        {
            VectorColumns(path, rows, columns, kc, aPanel, mr, b, c, ldc, accumulate);
        }
    }

    /// <summary>Floats per vector of the path's kernels.</summary>
    private static int VectorWidth(KernelPath path) => path switch
    {
        KernelPath.Avx512 => Simd512.Count,
        KernelPath.Avx2 => Simd256.Count,
        _ => Simd128.Count,
    };

    /// <summary>
    /// The first <paramref name="rows"/> rows of a packed A panel times the first <paramref name="columns"/> (a multiple of
    /// the path's vector width) columns of packed B panels, straight into C, through the width-generic
    /// <see cref="SgemmRows{TV}"/>; same summation order as the micro-kernel.
    /// </summary>
    private static void VectorColumns(KernelPath path, int rows, int columns, int kc, float* aPanel, int mr, float* b,
        float* c, nint ldc, bool accumulate)
    {
        switch (path)
        {
            case KernelPath.Avx512:
                SgemmRows<Simd512>.Run(rows, 0, columns / Simd512.Count, kc, aPanel, mr, 1, b, c, ldc, accumulate);
                break;
            case KernelPath.Avx2:
                SgemmRows<Simd256>.Run(rows, 0, columns / Simd256.Count, kc, aPanel, mr, 1, b, c, ldc, accumulate);
                break;
            default:
                SgemmRows<Simd128>.Run(rows, 0, columns / Simd128.Count, kc, aPanel, mr, 1, b, c, ldc, accumulate);
                break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RunKernel(KernelPath path, int kc, float* a, float* b, float* c, nint ldc, bool accumulate)
    {
        switch (path)
        {
            case KernelPath.Avx512:
                SgemmKernelAvx512.Run(kc, a, b, c, ldc, accumulate);
                break;
            case KernelPath.Avx2:
                SgemmKernelAvx2.Run(kc, a, b, c, ldc, accumulate);
                break;
            default:
                SgemmKernelPortable.Run(kc, a, b, c, ldc, accumulate);
                break;
        }
    }

    /// <summary>
    /// Minimal fork-join over the thread pool without per-call allocation: the caller keeps one reusable work item
    /// per extra thread, queues them, runs its own share, then either claims any item no pool thread has started
    /// (so a saturated pool can never deadlock the call) or waits for it.
    /// </summary>
    private static class SgemmParallel
    {
        [ThreadStatic]
        private static WorkItem[]? t_items;

        public static void Run(in GemmJob job, int threads, bool splitColumns)
        {
            WorkItem[] items = t_items ??= [];
            if (items.Length < threads - 1)
            {
                Array.Resize(ref items, threads - 1);
                t_items = items;
            }

            // Part t covers units [t·units/threads, (t+1)·units/threads); a unit is one NR panel of columns or MR rows.
            int unit = splitColumns ? SgemmPacking.NR : job.MR;
            int extent = splitColumns ? job.N : job.M;
            int units = (extent + unit - 1) / unit;
            Action<int>? partStarting = t_partStarting;
            int prepared = 0;
            Exception? error = null;
            try
            {
                for (int t = 1; t < threads; t++)
                {
                    int start = Math.Min(extent, (int)((long)units * t / threads) * unit);
                    int end = Math.Min(extent, (int)((long)units * (t + 1) / threads) * unit);
                    WorkItem item = items[t - 1] ??= new WorkItem();
                    item.Prepare(in job, t, splitColumns ? 0 : start, splitColumns ? job.M : end, splitColumns ? start : 0, splitColumns ? end : job.N, partStarting);
                    prepared = t;
                    ThreadPool.UnsafeQueueUserWorkItem(item, preferLocal: false);
                }

                int firstEnd = Math.Min(extent, units / threads * unit);
                partStarting?.Invoke(0);
                RunRange(in job, 0, splitColumns ? job.M : firstEnd, 0, splitColumns ? firstEnd : job.N);
            }
            catch (Exception e)
            {
                error = e;
            }

            // Every part reads A and B and writes C through the caller's pinned pointers, which are released when this
            // call returns: wait for each part a pool thread has started, error or not. After an error, parts no thread
            // has started yet are claimed and skipped instead of run.
            for (int t = 1; t <= prepared; t++)
            {
                Exception? partError = items[t - 1].RunOrWait(run: error is null);
                error ??= partError;
            }

            if (error is not null)
            {
                ExceptionDispatchInfoThrow(error);
            }
        }

        private static void ExceptionDispatchInfoThrow(Exception e) => System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e);

        private sealed class WorkItem : IThreadPoolWorkItem
        {
            private readonly ManualResetEventSlim _done = new(false);
            private GemmJob _job;
            private int _part, _i0, _i1, _j0, _j1;
            private Action<int>? _partStarting;
            private int _claimed = 1; // 0 = ready to run, 1 = taken by a pool thread or the caller
            private Exception? _error;

            public void Prepare(in GemmJob job, int part, int i0, int i1, int j0, int j1, Action<int>? partStarting)
            {
                _job = job;
                _part = part;
                (_i0, _i1, _j0, _j1) = (i0, i1, j0, j1);
                _partStarting = partStarting;
                _error = null;
                _done.Reset();
                Volatile.Write(ref _claimed, 0); // publishes the fields above
            }

            /// <summary>Thread-pool entry. A stale queue entry (its job already claimed by the caller) finds the item taken and does nothing.</summary>
            public void Execute()
            {
                if (Interlocked.CompareExchange(ref _claimed, 1, 0) == 0)
                {
                    _error = Run();
                    _done.Set();
                }
            }

            /// <summary>
            /// Runs the part inline if no pool thread has started it (or, when <paramref name="run"/> is false, claims it so
            /// none will and skips it), otherwise waits until the pool thread running it is done; returns its exception, if any.
            /// </summary>
            public Exception? RunOrWait(bool run)
            {
                if (Interlocked.CompareExchange(ref _claimed, 1, 0) == 0)
                {
                    return run ? Run() : null;
                }

                _done.Wait();
                return _error;
            }

            private Exception? Run()
            {
                try
                {
                    _partStarting?.Invoke(_part);
                    RunRange(in _job, _i0, _i1, _j0, _j1);
                    return null;
                }
                catch (Exception e)
                {
                    return e;
                }
            }
        }
    }
}
