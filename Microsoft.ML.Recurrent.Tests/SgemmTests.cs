using System.Runtime.InteropServices;
using Microsoft.ML.Recurrent.Kernels;

namespace Microsoft.ML.Recurrent.Tests;

/// <summary>
/// SGEMM against the naive reference at awkward sizes, on every kernel path, all four transposition forms,
/// padded strides, accumulate on/off, one and two threads, and the pre-packed B route.
/// </summary>
[TestClass]
public sealed class SgemmTests
{
    private static readonly Transpose[] Forms = [Transpose.No, Transpose.Yes];

    /// <summary>(m, n, k) triples: tile edges on both sides of MR (4/6/8) and NR (48), several k blocks (KC = 256), MC blocking (> 128 rows), row chunks (> 512 rows), NC blocking (> 480 columns).</summary>
    private static readonly (int M, int N, int K)[] Shapes =
    [
        (1, 1, 1), (2, 7, 13), (7, 2, 1), (13, 31, 33), (31, 33, 7), (33, 13, 64), (1, 65, 31), (64, 64, 64),
        (65, 1, 65), (127, 49, 2), (8, 48, 257), (9, 97, 300), (2, 257, 13), (257, 33, 31), (130, 47, 65), (6, 96, 513), (3, 530, 20),
        (1100, 50, 300), // several row chunks (RowChunkBlocks × MC) and k blocks
    ];

    [TestMethod]
    [DataRow("Avx512")]
    [DataRow("Avx2")]
    [DataRow("Portable")]
    [DataRow("Auto")]
    public void MatchesReferenceOnAwkwardShapes(string pathName)
    {
        KernelPath path = Enum.Parse<KernelPath>(pathName);
        RequirePath(path);
        int seed = 1;
        foreach ((int m, int n, int k) in Shapes)
        {
            foreach (Transpose ta in Forms)
            {
                foreach (Transpose tb in Forms)
                {
                    // Alternate accumulate and stride padding so every form sees both.
                    bool accumulate = (seed & 1) == 0;
                    int pad = seed % 3;
                    CheckAgainstReference(path, ta, tb, m, n, k, pad, accumulate, maxThreads: 1, seed++);
                }
            }
        }
    }

    [TestMethod]
    [DataRow("Avx512")]
    [DataRow("Avx2")]
    [DataRow("Portable")]
    public void WideMatrixCrossesColumnBlocks(string pathName)
    {
        KernelPath path = Enum.Parse<KernelPath>(pathName);
        RequirePath(path);
        // n > NC (480) several times over exercises the jc loop and a partial last column block; 1070 = 480 + a block of
        // 590 that took in the short tail (MaxNC), its last panel partial.
        CheckAgainstReference(path, Transpose.No, Transpose.Yes, 9, 1601, 20, pad: 3, accumulate: true, maxThreads: 1, seed: 7);
        CheckAgainstReference(path, Transpose.No, Transpose.No, 13, 1070, 300, pad: 1, accumulate: false, maxThreads: 1, seed: 9);
        CheckAgainstReference(path, Transpose.Yes, Transpose.No, 3, 1700, 5, pad: 0, accumulate: false, maxThreads: 2, seed: 8);
    }

    [TestMethod]
    [DataRow("Avx512", 150, 250, 100, true)]  // n > m: column split (each part packs A, the smaller operand)
    [DataRow("Avx512", 530, 40, 130, false)]  // narrow n: row split
    [DataRow("Avx512", 260, 200, 64, false)]  // n ≤ m: row split (each part packs B, the smaller operand)
    [DataRow("Avx2", 150, 250, 100, true)]
    [DataRow("Avx2", 530, 40, 130, false)]
    [DataRow("Avx2", 260, 200, 64, false)]
    [DataRow("Portable", 150, 250, 100, true)]
    [DataRow("Portable", 530, 40, 130, false)]
    [DataRow("Portable", 260, 200, 64, false)]
    public void TwoThreadsAreBitwiseIdenticalToOne(string pathName, int m, int n, int k, bool splitsColumns)
    {
        KernelPath path = Enum.Parse<KernelPath>(pathName);
        RequirePath(path);
        Assert.IsGreaterThanOrEqualTo(1L << 21, (long)m * n * k, "shape must be large enough to actually go parallel");
        var split = Sgemm.ChooseSplit(m, n, k, Sgemm.MicroRows(path), packedB: false, maxThreads: 2);
        Assert.AreEqual((2, splitsColumns), split, "the split this row is meant to exercise");
        foreach (Transpose ta in Forms)
        {
            foreach (Transpose tb in Forms)
            {
                var (a, lda, b, ldb, c, ldc) = MakeOperands(ta, tb, m, n, k, pad: 1, seed: m + n);
                float[] one = (float[])c.Clone(), two = (float[])c.Clone();
                Sgemm.Multiply(path, ta, tb, m, n, k, a, lda, b, ldb, one, ldc, accumulate: true, maxThreads: 1);
                Sgemm.Multiply(path, ta, tb, m, n, k, a, lda, b, ldb, two, ldc, accumulate: true, maxThreads: 2);
                AssertBitwiseEqual(one, two, $"{ta}{tb}");
            }
        }

        CheckAgainstReference(path, Transpose.No, Transpose.No, m, n, k, pad: 0, accumulate: false, maxThreads: 2, seed: 3);
    }

    /// <summary>
    /// Which way two threads share a product: rows when each gets four row panels or more and B is pre-packed or no
    /// larger than A (each part then packs only what is its own, or less than the columns' way would); columns otherwise;
    /// one thread below the parallel threshold or when C is too small to share.
    /// </summary>
    [TestMethod]
    public void ThreadsSplitRowsWhenThatRepacksLess()
    {
        int mr = Sgemm.MicroRows(KernelPath.Avx512); // 8 rows per micro-tile
        Assert.AreEqual((2, false), Sgemm.ChooseSplit(1024, 1024, 1024, mr, packedB: false, maxThreads: 2), "square: B repacked per part is no larger than A");
        Assert.AreEqual((2, true), Sgemm.ChooseSplit(512, 2048, 1024, mr, packedB: false, maxThreads: 2), "wide: A is the smaller operand to repack");
        Assert.AreEqual((2, false), Sgemm.ChooseSplit(512, 2048, 1024, mr, packedB: true, maxThreads: 2), "pre-packed B: nothing of B is packed");
        Assert.AreEqual((2, false), Sgemm.ChooseSplit(1024, 512, 2048, mr, packedB: false, maxThreads: 2), "weight gradient: n ≤ m");
        Assert.AreEqual((2, false), Sgemm.ChooseSplit(64, 2048, 512, mr, packedB: true, maxThreads: 2), "a recurrent step of 64 rows: four row panels each");
        Assert.AreEqual((2, true), Sgemm.ChooseSplit(32, 1024, 256, mr, packedB: true, maxThreads: 2), "a recurrent step of 32 rows: too few row panels to share");
        Assert.AreEqual((1, true), Sgemm.ChooseSplit(32, 64, 64, mr, packedB: false, maxThreads: 2), "below the parallel threshold");
        Assert.AreEqual((3, false), Sgemm.ChooseSplit(3000, 8, 300, mr, packedB: false, maxThreads: 3), "one column panel: rows");
        Assert.AreEqual((2, true), Sgemm.ChooseSplit(1, 2048, 2048, mr, packedB: true, maxThreads: 2), "one row: the columns' way is the only one");
    }

    [TestMethod]
    [DataRow("Avx512")]
    [DataRow("Avx2")]
    [DataRow("Portable")]
    public void PackedBMatchesPlainBitwiseAndSurvivesRepack(string pathName)
    {
        KernelPath path = Enum.Parse<KernelPath>(pathName);
        RequirePath(path);
        // From (32, 620, 256) on: several column blocks against a pre-packed B, where A is packed once per row chunk for
        // all of them — one MC block with 1 and 3 k blocks; 128 rows (one MC block on AVX-512 and Vector128, two on AVX2);
        // 5 k blocks, deeper than that reuse goes (A packed per column block as before); several MC blocks and 2 k blocks;
        // two row chunks (512 rows and a partial one) with a partial MC block.
        (int M, int N, int K)[] shapes = [(1, 1, 1), (7, 13, 31), (32, 100, 64), (33, 257, 65), (5, 49, 300), (20, 50, 520), (3, 1000, 270), (1030, 70, 300),
            (32, 620, 256), (24, 620, 700), (128, 610, 40), (17, 610, 1100), (140, 610, 260), (530, 610, 9)];
        int seed = 100;
        foreach ((int m, int n, int k) in shapes)
        {
            foreach (Transpose ta in Forms)
            {
                foreach (Transpose tb in Forms)
                {
                    foreach (int threads in new[] { 1, 2 })
                    {
                        bool accumulate = (seed & 1) == 1;
                        var (a, lda, b, ldb, c, ldc) = MakeOperands(ta, tb, m, n, k, pad: seed % 2, seed: seed++);
                        PackedMatrix packed = Sgemm.PackB(tb, k, n, b, ldb);
                        Assert.AreEqual(k, packed.Rows);
                        Assert.AreEqual(n, packed.Columns);
                        CheckPacked(path, ta, tb, m, n, k, a, lda, b, ldb, c, ldc, packed, accumulate, threads);

                        // New weights, same shape: refresh in place and check again.
                        Fill(b, new Random(seed * 31));
                        Sgemm.RepackB(packed, tb, b, ldb);
                        CheckPacked(path, ta, tb, m, n, k, a, lda, b, ldb, c, ldc, packed, accumulate, threads);
                    }
                }
            }
        }
    }

    /// <summary>
    /// A few rows alone (the recurrent step of a small batch or of one sequence, which takes the small-row kernels)
    /// give bit for bit what the same rows give inside a batch of 24 (a multiple of every path's MR, so the full
    /// micro-kernels compute it): a sequence's scores do not depend on how many sequences are scored with it. Packed and
    /// plain B, accumulate on and off, widths with vector tails (n mod 4, 8, 16, 48 ≠ 0) and k across KC blocks.
    /// </summary>
    [TestMethod]
    [DataRow("Avx512")]
    [DataRow("Avx2")]
    [DataRow("Portable")]
    public void FewRowsAloneEqualTheSameRowsInAFullBatch(string pathName)
    {
        KernelPath path = Enum.Parse<KernelPath>(pathName);
        RequirePath(path);
        const int batch = 24;
        (int N, int K)[] shapes = [(1, 1), (5, 3), (13, 70), (47, 128), (48, 256), (100, 257), (388, 300), (512, 128), (1030, 520)];
        int seed = 900;
        foreach ((int n, int k) in shapes)
        {
            foreach (bool accumulate in new[] { false, true })
            {
                var (a, lda, b, ldb, c, ldc) = MakeOperands(Transpose.No, Transpose.Yes, batch, n, k, pad: seed % 2, seed: seed++);
                PackedMatrix packed = Sgemm.PackB(Transpose.Yes, k, n, b, ldb);
                float[] full = (float[])c.Clone();
                Sgemm.Multiply(path, Transpose.No, batch, a, lda, packed, full, ldc, accumulate);
                foreach (int rows in new[] { 1, 2, 3, 4, 5, 6, 7, 9, 11 })
                {
                    float[] alone = (float[])c.Clone(), plain = (float[])c.Clone();
                    Sgemm.Multiply(path, Transpose.No, rows, a, lda, packed, alone, ldc, accumulate);
                    Sgemm.Multiply(path, Transpose.No, Transpose.Yes, rows, n, k, a, lda, b, ldb, plain, ldc, accumulate);
                    int used = rows * ldc;
                    string what = $"{path} rows={rows} n={n} k={k} accumulate={accumulate}";
                    AssertBitwiseEqual(full[..used], alone[..used], what + " (packed B)");
                    AssertBitwiseEqual(full[..used], plain[..used], what + " (plain B)");
                    AssertBitwiseEqual(c[used..], alone[used..], what + ": rows below the call were written");
                }
            }
        }
    }

    /// <summary>
    /// A column of C does not depend on how many columns come with it: the last panel of a narrow product (its whole
    /// vectors computed on their own, the rest through the scratch tile) gives bit for bit what the same columns give
    /// inside full panels of a wider one — packed and plain B, every row count up to two tiles.
    /// </summary>
    [TestMethod]
    [DataRow("Avx512")]
    [DataRow("Avx2")]
    [DataRow("Portable")]
    public void EdgeColumnsEqualTheSameColumnsInFullPanels(string pathName)
    {
        KernelPath path = Enum.Parse<KernelPath>(pathName);
        RequirePath(path);
        const int wide = 144, k = 300; // three full panels
        int seed = 700;
        foreach (int n in new[] { 16, 32, 40, 64, 68, 96 + 8, 96 + 17 })
        {
            foreach (int m in new[] { 1, 3, 6, 8, 13, 16 })
            {
                foreach (bool accumulate in new[] { false, true })
                {
                    var random = new Random(seed++);
                    float[] a = new float[m * k], b = new float[k * wide], c0 = new float[m * wide];
                    Fill(a, random); Fill(b, random); Fill(c0, random);
                    float[] full = (float[])c0.Clone(), narrow = (float[])c0.Clone(), narrowPacked = (float[])c0.Clone();
                    Sgemm.Multiply(path, Transpose.No, Transpose.No, m, wide, k, a, k, b, wide, full, wide, accumulate);
                    Sgemm.Multiply(path, Transpose.No, Transpose.No, m, n, k, a, k, b, wide, narrow, wide, accumulate);
                    Sgemm.Multiply(path, Transpose.No, m, a, k, Sgemm.PackB(Transpose.No, k, n, b, wide), narrowPacked, wide, accumulate);
                    for (int r = 0; r < m; r++)
                    {
                        string what = $"{path} n={n} m={m} accumulate={accumulate} row {r}";
                        AssertBitwiseEqual(full[(r * wide)..(r * wide + n)], narrow[(r * wide)..(r * wide + n)], what + " (plain B)");
                        AssertBitwiseEqual(full[(r * wide)..(r * wide + n)], narrowPacked[(r * wide)..(r * wide + n)], what + " (packed B)");
                        AssertBitwiseEqual(c0[(r * wide + n)..((r + 1) * wide)], narrow[(r * wide + n)..((r + 1) * wide)], what + ": columns beyond n were written");
                    }
                }
            }
        }
    }

    [TestMethod]
    public void RecurrentStepShapeWithPackedWeights()
    {
        // The hot path of a time step: batch 32 × hidden 256 → 4 gates × 256, weights packed once.
        const int m = 32, k = 256, n = 1024;
        var (a, lda, b, ldb, c, ldc) = MakeOperands(Transpose.No, Transpose.Yes, m, n, k, pad: 0, seed: 5);
        PackedMatrix packed = Sgemm.PackB(Transpose.Yes, k, n, b, ldb);
        float[] expected = (float[])c.Clone();
        SgemmReference.Multiply(Transpose.No, Transpose.Yes, m, n, k, a, lda, b, ldb, expected, ldc, accumulate: false);
        for (int threads = 1; threads <= 2; threads++)
        {
            float[] actual = (float[])c.Clone();
            Sgemm.Multiply(Transpose.No, m, a, lda, packed, actual, ldc, accumulate: false, maxThreads: threads);
            AssertClose(Transpose.No, Transpose.Yes, m, n, k, a, lda, b, ldb, c, expected, actual, ldc, accumulate: false);
        }
    }

    [TestMethod]
    [DataRow("Avx512")]
    [DataRow("Avx2")]
    [DataRow("Portable")]
    public void ZeroSizes(string pathName)
    {
        KernelPath path = Enum.Parse<KernelPath>(pathName);
        RequirePath(path);
        float[] a = [1, 2, 3, 4], b = [5, 6, 7, 8, 9, 10];

        // k = 0: C = 0 without accumulate, unchanged with it; only the m×n window is touched.
        float[] c = [9, 9, 9, 9, 9];
        Sgemm.Multiply(path, Transpose.No, Transpose.No, 2, 2, 0, a, 0, b, 2, c, 2, accumulate: true);
        CollectionAssert.AreEqual(new float[] { 9, 9, 9, 9, 9 }, c);
        Sgemm.Multiply(path, Transpose.No, Transpose.No, 2, 2, 0, a, 0, b, 2, c, 2, accumulate: false);
        CollectionAssert.AreEqual(new float[] { 0, 0, 0, 0, 9 }, c);

        // m = 0 or n = 0: nothing to do, empty spans are fine.
        Sgemm.Multiply(path, Transpose.No, Transpose.No, 0, 3, 2, [], 2, b, 3, [], 3, accumulate: false);
        Sgemm.Multiply(path, Transpose.Yes, Transpose.Yes, 2, 0, 2, a, 2, [], 2, [], 0, accumulate: false);
        Sgemm.Multiply(path, Transpose.No, Transpose.No, 0, 0, 0, [], 0, [], 0, [], 0, accumulate: false);

        // Packed with k = 0 and n = 0.
        PackedMatrix emptyK = Sgemm.PackB(Transpose.No, 0, 2, [], 2);
        float[] c2 = [3, 3, 3, 3];
        Sgemm.Multiply(path, Transpose.No, 2, [], 0, emptyK, c2, 2, accumulate: false);
        CollectionAssert.AreEqual(new float[] { 0, 0, 0, 0 }, c2);
        PackedMatrix emptyN = Sgemm.PackB(Transpose.Yes, 3, 0, [], 3);
        Sgemm.Multiply(path, Transpose.No, 2, new float[6], 3, emptyN, [], 0, accumulate: false);
        Sgemm.Multiply(path, Transpose.No, 0, [], 3, Sgemm.PackB(Transpose.No, 3, 2, [1, 2, 3, 4, 5, 6], 2), [], 2, accumulate: true);
    }

    [TestMethod]
    public void RejectsBadArguments()
    {
        float[] a = new float[6], b = new float[6], c = new float[4];
        void Call(int m, int n, int k, float[] aa, int lda, float[] bb, int ldb, float[] cc, int ldc, Transpose ta = Transpose.No, Transpose tb = Transpose.No)
            => Sgemm.Multiply(ta, tb, m, n, k, aa, lda, bb, ldb, cc, ldc, accumulate: false);

        Call(2, 2, 3, a, 3, b, 2, c, 2); // valid baseline
        Assert.AreEqual("m", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Call(-1, 2, 3, a, 3, b, 2, c, 2)).ParamName);
        Assert.AreEqual("n", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Call(2, -1, 3, a, 3, b, 2, c, 2)).ParamName);
        Assert.AreEqual("k", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Call(2, 2, -3, a, 3, b, 2, c, 2)).ParamName);
        Assert.AreEqual("lda", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Call(2, 2, 3, a, 2, b, 2, c, 2)).ParamName);
        Assert.AreEqual("lda", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Call(2, 2, 3, a, 1, b, 2, c, 2, ta: Transpose.Yes)).ParamName);
        Assert.AreEqual("ldb", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Call(2, 2, 3, a, 3, b, 1, c, 2)).ParamName);
        Assert.AreEqual("ldc", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Call(2, 2, 3, a, 3, b, 2, c, 1)).ParamName);
        Assert.AreEqual("a", Assert.ThrowsExactly<ArgumentException>(() => Call(2, 2, 3, new float[5], 3, b, 2, c, 2)).ParamName);
        Assert.AreEqual("a", Assert.ThrowsExactly<ArgumentException>(() => Call(2, 2, 3, a, 4, b, 2, c, 2)).ParamName);
        Assert.AreEqual("b", Assert.ThrowsExactly<ArgumentException>(() => Call(2, 2, 3, a, 3, new float[5], 2, c, 2)).ParamName);
        Assert.AreEqual("b", Assert.ThrowsExactly<ArgumentException>(() => Call(2, 2, 3, a, 3, b, 4, c, 2, tb: Transpose.Yes)).ParamName);
        Assert.AreEqual("c", Assert.ThrowsExactly<ArgumentException>(() => Call(2, 2, 3, a, 3, b, 2, new float[3], 2)).ParamName);
        Assert.AreEqual("c", Assert.ThrowsExactly<ArgumentException>(() => Call(2, 2, 3, a, 3, b, 2, c, 3)).ParamName);
        Assert.AreEqual("maxThreads", Assert.ThrowsExactly<ArgumentOutOfRangeException>(
            () => Sgemm.Multiply(Transpose.No, Transpose.No, 2, 2, 3, a, 3, b, 2, c, 2, false, maxThreads: 0)).ParamName);
        Assert.AreEqual("a", Assert.ThrowsExactly<ArgumentException>(
            () => SgemmReference.Multiply(Transpose.No, Transpose.No, 2, 2, 3, new float[5], 3, b, 2, c, 2, false)).ParamName);

        PackedMatrix packed = Sgemm.PackB(Transpose.No, 3, 2, b, 2);
        Assert.AreEqual("b", Assert.ThrowsExactly<ArgumentException>(() => Sgemm.PackB(Transpose.No, 3, 2, new float[5], 2)).ParamName);
        Assert.AreEqual("k", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Sgemm.PackB(Transpose.No, -1, 2, b, 2)).ParamName);
        Assert.AreEqual("ldb", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Sgemm.RepackB(packed, Transpose.Yes, b, 2)).ParamName);
        Assert.AreEqual("a", Assert.ThrowsExactly<ArgumentException>(() => Sgemm.Multiply(Transpose.No, 2, new float[5], 3, packed, c, 2, false)).ParamName);
        Assert.AreEqual("c", Assert.ThrowsExactly<ArgumentException>(() => Sgemm.Multiply(Transpose.No, 2, a, 3, packed, new float[3], 2, false)).ParamName);
        Assert.AreEqual("m", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Sgemm.Multiply(Transpose.No, -2, a, 3, packed, c, 2, false)).ParamName);
    }

    [TestMethod]
    public void PathIsPerThreadAndAutoResolves()
    {
        Assert.AreNotEqual(KernelPath.Auto, Sgemm.Resolve(KernelPath.Auto));
        Assert.AreEqual(KernelPath.Portable, Sgemm.Resolve(KernelPath.Portable));
        KernelPath before = Sgemm.Path;
        try
        {
            Sgemm.Path = KernelPath.Portable;
            KernelPath seenElsewhere = KernelPath.Portable;
            var thread = new Thread(() => seenElsewhere = Sgemm.Path);
            thread.Start();
            thread.Join();
            Assert.AreEqual(KernelPath.Auto, seenElsewhere);
            CheckAgainstReference(KernelPath.Auto, Transpose.No, Transpose.No, 13, 50, 9, pad: 1, accumulate: true, maxThreads: 1, seed: 4);
        }
        finally
        {
            Sgemm.Path = before;
        }
    }

    [TestMethod]
    public void RepeatedCallsAreIdentical()
    {
        var (a, lda, b, ldb, c, ldc) = MakeOperands(Transpose.Yes, Transpose.No, 70, 90, 300, pad: 2, seed: 9);
        float[] first = (float[])c.Clone(), second = (float[])c.Clone();
        Sgemm.Multiply(Transpose.Yes, Transpose.No, 70, 90, 300, a, lda, b, ldb, first, ldc, accumulate: true);
        Sgemm.Multiply(Transpose.Yes, Transpose.No, 70, 90, 300, a, lda, b, ldb, second, ldc, accumulate: true);
        AssertBitwiseEqual(first, second, "repeat");
    }

    /// <summary>
    /// A part of a parallel call that fails (the caller's own, or one on a pool thread) must not let the call return
    /// while another part is still computing: every part reads A and B and writes C through pointers that are only
    /// pinned until the call returns. A slow part is held at its start until the failure has happened; after the
    /// exception C must no longer change. A and C are large enough to live on the (non-moving) large object heap, so
    /// even a regression only changes C instead of writing into a moved object.
    /// </summary>
    [TestMethod]
    [DataRow(0)]
    [DataRow(1)]
    public void ParallelCallWaitsForEveryPartWhenOneFails(int failingPart)
    {
        // 64 × 576 × 400 over 3 threads: 12 column panels, split into parts 0 (caller), 1 and 2 (pool).
        const int m = 64, n = 576, k = 400, slowPart = 2;
        var (a, lda, b, ldb, c, ldc) = MakeOperands(Transpose.No, Transpose.No, m, n, k, pad: 0, seed: 11);
        int slowStarted = 0, slowReleased = 0;
        Sgemm.PartStartingForTests = part =>
        {
            if (part == slowPart)
            {
                Volatile.Write(ref slowStarted, 1);
                Thread.Sleep(300);
                Volatile.Write(ref slowReleased, 1);
            }
            else if (part == failingPart)
            {
                // Fail only once the slow part is running on a pool thread (or after 5 s if the pool never starts it).
                var wait = System.Diagnostics.Stopwatch.StartNew();
                while (Volatile.Read(ref slowStarted) == 0 && wait.ElapsedMilliseconds < 5000) Thread.Sleep(1);
                throw new InvalidOperationException($"injected failure in part {part}");
            }
        };
        try
        {
            var e = Assert.ThrowsExactly<InvalidOperationException>(() =>
                Sgemm.Multiply(KernelPath.Portable, Transpose.No, Transpose.No, m, n, k, a, lda, b, ldb, c, ldc, accumulate: false, maxThreads: 3));
            Assert.AreEqual($"injected failure in part {failingPart}", e.Message);
            bool slowRan = Volatile.Read(ref slowStarted) == 1;
            if (slowRan)
                Assert.AreEqual(1, Volatile.Read(ref slowReleased), "the call returned while the slow part was still running");
            float[] atReturn = (float[])c.Clone();
            Thread.Sleep(600);
            AssertBitwiseEqual(atReturn, c, "C changed after the call had returned");
            if (!slowRan)
                Assert.Inconclusive("The thread pool never started the slow part, so no part was running when the failure happened.");
        }
        finally
        {
            Sgemm.PartStartingForTests = null;
        }
        Assert.IsGreaterThanOrEqualTo(85_000, a.Length * sizeof(float), "A must be on the large object heap");
        Assert.IsGreaterThanOrEqualTo(85_000, c.Length * sizeof(float), "C must be on the large object heap");
    }

    /// <summary>After a failed parallel call the same thread's next parallel call (reusing its work items) is correct.</summary>
    [TestMethod]
    public void ParallelCallWorksAfterAFailedOne()
    {
        const int m = 64, n = 576, k = 400;
        Sgemm.PartStartingForTests = part => { if (part == 1) throw new InvalidOperationException("injected"); };
        try
        {
            var (a, lda, b, ldb, c, ldc) = MakeOperands(Transpose.No, Transpose.No, m, n, k, pad: 0, seed: 12);
            Assert.ThrowsExactly<InvalidOperationException>(() =>
                Sgemm.Multiply(Transpose.No, Transpose.No, m, n, k, a, lda, b, ldb, c, ldc, accumulate: false, maxThreads: 3));
        }
        finally
        {
            Sgemm.PartStartingForTests = null;
        }
        CheckAgainstReference(KernelPath.Auto, Transpose.No, Transpose.No, m, n, k, pad: 0, accumulate: true, maxThreads: 3, seed: 13);
    }

    private static void RequirePath(KernelPath path) => KernelPaths.Require(path, sgemm: true, fused: false);

    private static void CheckPacked(KernelPath path, Transpose ta, Transpose tb, int m, int n, int k,
        float[] a, int lda, float[] b, int ldb, float[] c, int ldc, PackedMatrix packed, bool accumulate, int threads)
    {
        float[] plain = (float[])c.Clone(), viaPacked = (float[])c.Clone(), expected = (float[])c.Clone();
        Sgemm.Multiply(path, ta, tb, m, n, k, a, lda, b, ldb, plain, ldc, accumulate, threads);
        Sgemm.Multiply(path, ta, m, a, lda, packed, viaPacked, ldc, accumulate, threads);
        AssertBitwiseEqual(plain, viaPacked, $"{path} {ta}{tb} m={m} n={n} k={k} threads={threads}");
        SgemmReference.Multiply(ta, tb, m, n, k, a, lda, b, ldb, expected, ldc, accumulate);
        AssertClose(ta, tb, m, n, k, a, lda, b, ldb, c, expected, viaPacked, ldc, accumulate);
    }

    private static void CheckAgainstReference(KernelPath path, Transpose ta, Transpose tb, int m, int n, int k,
        int pad, bool accumulate, int maxThreads, int seed)
    {
        var (a, lda, b, ldb, c, ldc) = MakeOperands(ta, tb, m, n, k, pad, seed);
        float[] expected = (float[])c.Clone(), actual = (float[])c.Clone();
        SgemmReference.Multiply(ta, tb, m, n, k, a, lda, b, ldb, expected, ldc, accumulate);
        Sgemm.Multiply(path, ta, tb, m, n, k, a, lda, b, ldb, actual, ldc, accumulate, maxThreads);
        AssertClose(ta, tb, m, n, k, a, lda, b, ldb, c, expected, actual, ldc, accumulate);
    }

    /// <summary>Random operands with row strides padded by <paramref name="pad"/>; C starts random so padding and accumulate are observable.</summary>
    private static (float[] A, int Lda, float[] B, int Ldb, float[] C, int Ldc) MakeOperands(
        Transpose ta, Transpose tb, int m, int n, int k, int pad, int seed)
    {
        var random = new Random(seed);
        // Stored A: m×k (No) or k×m (Yes); stored B: k×n (No) or n×k (Yes).
        int aRows = ta == Transpose.No ? m : k, aCols = ta == Transpose.No ? k : m;
        int bRows = tb == Transpose.No ? k : n, bCols = tb == Transpose.No ? n : k;
        int lda = aCols + pad, ldb = bCols + pad, ldc = n + pad;
        float[] a = new float[aRows * lda], b = new float[bRows * ldb], c = new float[m * ldc];
        Fill(a, random);
        Fill(b, random);
        Fill(c, random);
        return (a, lda, b, ldb, c, ldc);
    }

    private static void Fill(float[] x, Random random)
    {
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = (float)(random.NextDouble() * 2 - 1);
        }
    }

    /// <summary>
    /// Inside the m×n window: |actual − expected| ≤ 1e-5 · (Σ_p |op(A)[i,p] · op(B)[p,j]| + |C₀|) + 1e-6.
    /// Outside it (stride padding): untouched.
    /// </summary>
    private static void AssertClose(Transpose ta, Transpose tb, int m, int n, int k, float[] a, int lda, float[] b, int ldb,
        float[] c0, float[] expected, float[] actual, int ldc, bool accumulate)
    {
        for (int i = 0; i < c0.Length; i++)
        {
            int row = i / ldc, col = i % ldc;
            if (row >= m || col >= n)
            {
                Assert.AreEqual(c0[i], actual[i], $"C[{row},{col}] outside the {m}×{n} window was modified");
                continue;
            }

            double magnitude = accumulate ? Math.Abs(c0[i]) : 0;
            for (int p = 0; p < k; p++)
            {
                float av = ta == Transpose.No ? a[row * lda + p] : a[p * lda + row];
                float bv = tb == Transpose.No ? b[p * ldb + col] : b[col * ldb + p];
                magnitude += Math.Abs((double)av * bv);
            }

            double tolerance = 1e-5 * magnitude + 1e-6;
            double error = Math.Abs((double)actual[i] - expected[i]);
            if (!(error <= tolerance))
            {
                Assert.Fail($"{ta}{tb} m={m} n={n} k={k} C[{row},{col}]: expected {expected[i]}, got {actual[i]} (error {error:g3} > {tolerance:g3})");
            }
        }
    }

    private static void AssertBitwiseEqual(float[] expected, float[] actual, string what)
    {
        ReadOnlySpan<int> e = MemoryMarshal.Cast<float, int>(expected), x = MemoryMarshal.Cast<float, int>(actual);
        for (int i = 0; i < e.Length; i++)
        {
            if (e[i] != x[i])
            {
                Assert.Fail($"{what}: element {i} differs ({expected[i]:R} vs {actual[i]:R})");
            }
        }
    }
}
