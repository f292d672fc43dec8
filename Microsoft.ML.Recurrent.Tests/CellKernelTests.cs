using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Kernels;
using Microsoft.ML.Recurrent.Layers;
using Microsoft.ML.Recurrent.Layers.Cells;

namespace Microsoft.ML.Recurrent.Tests;

/// <summary>
/// The fused cell kernels on every vector path against their scalar references, at every hidden size from 1 to past
/// two AVX-512 vectors, so each width's whole vectors and every tail length are hit. A path this CPU does not
/// accelerate is reported Inconclusive with the reason (see <see cref="KernelPaths"/>).
/// </summary>
[TestClass]
public sealed class CellKernelTests
{
    /// <summary>H = 1 … 35: below one vector, exactly one, between, two, and past two, for 16-, 8- and 4-lane vectors.</summary>
    private const int MaxHidden = 2 * 16 + 3;

    private static readonly RecurrentCellKind[] Kinds = [RecurrentCellKind.Lstm, RecurrentCellKind.Gru, RecurrentCellKind.RnnTanh, RecurrentCellKind.RnnRelu];

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [DataRow(KernelPaths.Avx512)]
    [DataRow(KernelPaths.Avx2)]
    [DataRow(KernelPaths.Portable)]
    [DataRow(KernelPaths.Avx512InSoftware)]
    public void VectorMathIsAccurateEverywhere(string path)
    {
        using var scope = KernelPaths.Force(path, sgemmToo: false);
        switch (FusedKernels.Current())
        {
            case KernelPath.Avx512: CheckVectorMath<Simd512>(); break;
            case KernelPath.Avx2: CheckVectorMath<Simd256>(); break;
            default: CheckVectorMath<Simd128>(); break;
        }
    }

    /// <summary>exp, σ and tanh at width <typeparamref name="TV"/> against double precision, and lane for lane bitwise equal to the scalar tail (<see cref="Simd1"/>).</summary>
    private void CheckVectorMath<TV>() where TV : struct, ISimd<TV>
    {
        int w = TV.Count;
        float[] x = new float[w], e = new float[w], s = new float[w], t = new float[w];
        double worstExp = 0, worstSigmoid = 0, worstTanh = 0;
        for (int i = -200_000; i <= 200_000; i += w)
        {
            // x from −100 to 100, denser near 0.
            for (int j = 0; j < w; j++) x[j] = (float)Math.Sinh((i + j) / 40_000.0) * 0.9f;
            TV xv = TV.Load(in x[0], 0);
            TV.Store(VectorMath.Exp(xv), ref e[0], 0);
            TV.Store(VectorMath.Sigmoid(xv), ref s[0], 0);
            TV.Store(VectorMath.Tanh(xv), ref t[0], 0);
            for (int j = 0; j < w; j++)
            {
                double xd = x[j];
                if (xd > -80 && xd < 80) worstExp = Math.Max(worstExp, Math.Abs(e[j] - Math.Exp(xd)) / Math.Exp(xd));
                worstSigmoid = Math.Max(worstSigmoid, Math.Abs(s[j] - 1 / (1 + Math.Exp(-xd))));
                worstTanh = Math.Max(worstTanh, Math.Abs(t[j] - Math.Tanh(xd)));
                if (!float.IsFinite(s[j]) || !float.IsFinite(t[j])) Assert.Fail($"non-finite at {xd}");
                var x1 = Simd1.Create(x[j]);
                if (VectorMath.Exp(x1).Value != e[j] || VectorMath.Sigmoid(x1).Value != s[j] || VectorMath.Tanh(x1).Value != t[j])
                    Assert.Fail($"x = {x[j]:R}: the {w}-lane result differs from the scalar tail's");
            }
        }
        TestContext.WriteLine($"{typeof(TV).Name}: exp relative {worstExp:G3}, sigmoid absolute {worstSigmoid:G3}, tanh absolute {worstTanh:G3}");
        Assert.IsLessThan(5e-7, worstExp, "exp relative error");
        Assert.IsLessThan(5e-7, worstSigmoid, "sigmoid absolute error");
        Assert.IsLessThan(5e-7, worstTanh, "tanh absolute error");
        float Lane0(TV v) { TV.Store(v, ref e[0], 0); return e[0]; }
        Assert.AreEqual(1f, Lane0(VectorMath.Tanh(TV.Create(50f))));
        Assert.AreEqual(-1f, Lane0(VectorMath.Tanh(TV.Create(-50f))));
        Assert.AreEqual(0f, Lane0(VectorMath.Sigmoid(TV.Create(-200f))), 1e-30f);
        Assert.AreEqual(1f, Lane0(VectorMath.Sigmoid(TV.Create(200f))));
    }

    /// <summary>
    /// Forward of every cell at H = 1 … 35 on one path: within 2e−6 (relative above 1) of the scalar reference, and
    /// bitwise equal to the portable path (the widths may not drift apart; tails and lanes do the same operations).
    /// </summary>
    [TestMethod]
    [DataRow(KernelPaths.Avx512)]
    [DataRow(KernelPaths.Avx2)]
    [DataRow(KernelPaths.Portable)]
    [DataRow(KernelPaths.Avx512InSoftware)]
    public void ForwardMatchesScalarReference(string path)
    {
        using var scope = KernelPaths.Force(path, sgemmToo: false);
        double worst = 0;
        foreach (var kind in Kinds)
        {
            var cell = RecurrentCell.Create(kind);
            for (int h = 1; h <= MaxHidden; h++)
            {
                var random = new SeededRandom(h * 10 + (int)kind);
                var inputs = new ForwardBuffers(cell, h, random);
                var onPath = inputs.Clone();
                var reference = inputs.Clone();
                var portable = inputs.Clone();
                onPath.Run(cell.ForwardRow);
                reference.Run(cell.ForwardRowReference);
                using (KernelPaths.Force(KernelPaths.Portable, sgemmToo: false))
                    portable.Run(cell.ForwardRow);
                string where = $"{kind} H={h} on {path}";
                worst = Math.Max(worst, AssertClose(reference.Gates, onPath.Gates, $"{where}: gates"));
                worst = Math.Max(worst, AssertClose(reference.H, onPath.H, $"{where}: h"));
                worst = Math.Max(worst, AssertClose(reference.Aux, onPath.Aux, $"{where}: aux"));
                AssertBitwise(portable.Gates, onPath.Gates, $"{where}: gates vs portable");
                AssertBitwise(portable.H, onPath.H, $"{where}: h vs portable");
                AssertBitwise(portable.Aux, onPath.Aux, $"{where}: aux vs portable");
            }
        }
        TestContext.WriteLine($"{path} (resolved {FusedKernels.Current()}): max difference from the scalar reference {worst:G3}");
    }

    /// <summary>
    /// The cells add b_ih themselves, first: a row gives exactly (bitwise) what it gave when b_ih was added to the
    /// projection in a pass of its own before the cell ran with no b_ih — ((W_ih·x + b_ih) + W_hh·h) + b_hh, in that order.
    /// </summary>
    [TestMethod]
    [DataRow(KernelPaths.Avx512)]
    [DataRow(KernelPaths.Avx2)]
    [DataRow(KernelPaths.Portable)]
    public void InputBiasIsAddedFirstAsASeparatePassDid(string path)
    {
        using var scope = KernelPaths.Force(path, sgemmToo: false);
        foreach (var kind in Kinds)
        {
            var cell = RecurrentCell.Create(kind);
            foreach (int h in new[] { 1, 7, 16, 35 })
            {
                var inside = new ForwardBuffers(cell, h, new SeededRandom(500 + h * 10 + (int)kind));
                var separate = inside.Clone();
                System.Numerics.Tensors.TensorPrimitives.Add(separate.Gates, separate.BiasIh, separate.Gates);
                Array.Clear(separate.BiasIh);
                inside.Run(cell.ForwardRow);
                separate.Run(cell.ForwardRow);
                string where = $"{kind} H={h} on {path}";
                if (cell is not RnnCell) // an RNN leaves its gates as they came (its backward needs only h')
                    AssertBitwise(separate.Gates, inside.Gates, $"{where}: gates");
                AssertBitwise(separate.H, inside.H, $"{where}: h");
                AssertBitwise(separate.Aux, inside.Aux, $"{where}: aux");
            }
        }
    }

    /// <summary>Backward of every cell at H = 1 … 35 on one path, as <see cref="ForwardMatchesScalarReference"/>.</summary>
    [TestMethod]
    [DataRow(KernelPaths.Avx512)]
    [DataRow(KernelPaths.Avx2)]
    [DataRow(KernelPaths.Portable)]
    [DataRow(KernelPaths.Avx512InSoftware)]
    public void BackwardMatchesScalarReference(string path)
    {
        using var scope = KernelPaths.Force(path, sgemmToo: false);
        double worst = 0;
        foreach (var kind in Kinds)
        {
            var cell = RecurrentCell.Create(kind);
            for (int h = 1; h <= MaxHidden; h++)
            {
                var random = new SeededRandom(1000 + h * 10 + (int)kind);
                var inputs = new BackwardBuffers(cell, h, random);
                var onPath = inputs.Clone();
                var reference = inputs.Clone();
                var portable = inputs.Clone();
                onPath.Run(cell.BackwardRow);
                reference.Run(cell.BackwardRowReference);
                using (KernelPaths.Force(KernelPaths.Portable, sgemmToo: false))
                    portable.Run(cell.BackwardRow);
                string where = $"{kind} H={h} on {path}";
                worst = Math.Max(worst, AssertClose(reference.DGx, onPath.DGx, $"{where}: dGx"));
                worst = Math.Max(worst, AssertClose(reference.DGh, onPath.DGh, $"{where}: dGh"));
                worst = Math.Max(worst, AssertClose(reference.Dh, onPath.Dh, $"{where}: dh"));
                worst = Math.Max(worst, AssertClose(reference.DAux, onPath.DAux, $"{where}: dAux"));
                AssertBitwise(portable.DGx, onPath.DGx, $"{where}: dGx vs portable");
                AssertBitwise(portable.DGh, onPath.DGh, $"{where}: dGh vs portable");
                AssertBitwise(portable.Dh, onPath.Dh, $"{where}: dh vs portable");
                AssertBitwise(portable.DAux, onPath.DAux, $"{where}: dAux vs portable");
            }
        }
        TestContext.WriteLine($"{path} (resolved {FusedKernels.Current()}): max difference from the scalar reference {worst:G3}");
    }

    /// <summary>
    /// A buffer one element shorter than the shapes require throws an ArgumentException naming it and both lengths,
    /// before anything is written, on every path.
    /// </summary>
    [TestMethod]
    [DataRow(KernelPaths.Avx512)]
    [DataRow(KernelPaths.Avx2)]
    [DataRow(KernelPaths.Portable)]
    public void ShortBuffersAreRejectedBeforeAnyWrite(string path)
    {
        using var scope = KernelPaths.Force(path, sgemmToo: false);
        const int h = 19;
        // Which argument (by position) each cell checks, and the name it reports.
        var forwardChecks = new Dictionary<RecurrentCellKind, (int Slot, string Name)[]>
        {
            [RecurrentCellKind.Lstm] = [(0, "gates"), (1, "biasIh"), (2, "gh"), (3, "biasHh"), (5, "cPrev"), (7, "c")],
            [RecurrentCellKind.Gru] = [(0, "gates"), (1, "biasIh"), (2, "gh"), (3, "biasHh"), (4, "hPrev"), (7, "hn")],
            [RecurrentCellKind.RnnTanh] = [(0, "gates"), (1, "biasIh"), (2, "gh"), (3, "biasHh")],
        };
        var backwardChecks = new Dictionary<RecurrentCellKind, (int Slot, string Name)[]>
        {
            [RecurrentCellKind.Lstm] = [(0, "gates"), (1, "c"), (3, "cPrev"), (5, "dh"), (6, "dc"), (7, "dGx")],
            [RecurrentCellKind.Gru] = [(0, "gates"), (1, "hn"), (2, "hPrev"), (5, "dh"), (7, "dGx"), (8, "dGh")],
            [RecurrentCellKind.RnnTanh] = [(5, "dh"), (7, "dGx")],
        };
        foreach (var (kind, checks) in forwardChecks)
        {
            var cell = RecurrentCell.Create(kind);
            var full = new ForwardBuffers(cell, h, new SeededRandom(3)).All;
            foreach (var (slot, name) in checks)
            {
                float[][] args = full.Select(a => a.ToArray()).ToArray();
                args[slot] = new float[full[slot].Length - 1];
                float[][] before = args.Select(a => a.ToArray()).ToArray();
                var e = Assert.ThrowsExactly<ArgumentException>(() => cell.ForwardRow(args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7]),
                    $"{kind} forward, {name} one short");
                AssertRejected(e, name, args[slot].Length, full[slot].Length, $"{kind} forward");
                for (int i = 0; i < args.Length; i++)
                    CollectionAssert.AreEqual(before[i], args[i], $"{kind} forward wrote argument {i} before rejecting {name}");
            }
        }
        foreach (var (kind, checks) in backwardChecks)
        {
            var cell = RecurrentCell.Create(kind);
            var full = new BackwardBuffers(cell, h, new SeededRandom(4)).All;
            foreach (var (slot, name) in checks)
            {
                float[][] args = full.Select(a => a.ToArray()).ToArray();
                args[slot] = new float[full[slot].Length - 1];
                float[][] before = args.Select(a => a.ToArray()).ToArray();
                var e = Assert.ThrowsExactly<ArgumentException>(
                    () => cell.BackwardRow(args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8]),
                    $"{kind} backward, {name} one short");
                AssertRejected(e, name, args[slot].Length, full[slot].Length, $"{kind} backward");
                for (int i = 0; i < args.Length; i++)
                    CollectionAssert.AreEqual(before[i], args[i], $"{kind} backward wrote argument {i} before rejecting {name}");
            }
        }
    }

    private static void AssertRejected(ArgumentException e, string name, int actual, int required, string what)
    {
        Assert.AreEqual(name, e.ParamName, $"{what}: the exception must name the buffer");
        StringAssert.Contains(e.Message, $"{name} holds {actual} floats", $"{what}: message names the buffer and its length");
        StringAssert.Contains(e.Message, $"require {required}", $"{what}: message gives the required length");
    }

    /// <summary>Finite differences through a whole layer at a width that uses the vector path and its tail (H = 17), on each path (SGEMM too).</summary>
    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm, KernelPaths.Avx512)]
    [DataRow(RecurrentCellKind.Gru, KernelPaths.Avx512)]
    [DataRow(RecurrentCellKind.RnnTanh, KernelPaths.Avx512)]
    [DataRow(RecurrentCellKind.Lstm, KernelPaths.Avx2)]
    [DataRow(RecurrentCellKind.Gru, KernelPaths.Avx2)]
    [DataRow(RecurrentCellKind.RnnTanh, KernelPaths.Avx2)]
    [DataRow(RecurrentCellKind.Lstm, KernelPaths.Portable)]
    [DataRow(RecurrentCellKind.Gru, KernelPaths.Portable)]
    [DataRow(RecurrentCellKind.RnnTanh, KernelPaths.Portable)]
    public void WideLayerGradientsMatchFiniteDifferences(RecurrentCellKind cell, string path)
    {
        using var scope = KernelPaths.Force(path);
        var batch = new RaggedBatch([3, 1, 2]);
        var parameters = new ParameterSet();
        var stack = new RecurrentStack(parameters, "", cell, 2, 17, 1, bidirectional: true, dropout: 0f);
        parameters.Allocate();
        var random = new SeededRandom(5);
        random.FillUniform(parameters.Values, -0.5f, 0.5f);
        var x = new float[batch.TotalSteps * 2];
        random.FillUniform(x, -1, 1);
        GradientCheckTests.CheckStackOutputGradients(stack, parameters, batch, x, random, () => null);
    }

    /// <summary>|actual − expected| ≤ 2e−6 · max(1, |expected|) everywhere; returns the largest difference.</summary>
    private static double AssertClose(float[] expected, float[] actual, string what)
    {
        Assert.HasCount(expected.Length, actual, $"{what}: length");
        double worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = Math.Abs((double)expected[i] - actual[i]);
            worst = Math.Max(worst, d);
            if (!(d <= 2e-6 * Math.Max(1, Math.Abs(expected[i]))))
                Assert.Fail($"{what}[{i}]: expected {expected[i]:R}, got {actual[i]:R}");
        }
        return worst;
    }

    private static void AssertBitwise(float[] expected, float[] actual, string what)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                Assert.Fail($"{what}[{i}]: {expected[i]:R} vs {actual[i]:R}");
        }
    }

    private delegate void ForwardRowFn(Span<float> gates, ReadOnlySpan<float> biasIh, ReadOnlySpan<float> gh, ReadOnlySpan<float> biasHh,
        ReadOnlySpan<float> hPrev, ReadOnlySpan<float> auxPrev, Span<float> h, Span<float> aux);

    private delegate void BackwardRowFn(ReadOnlySpan<float> gates, ReadOnlySpan<float> aux, ReadOnlySpan<float> hPrev,
        ReadOnlySpan<float> auxPrev, ReadOnlySpan<float> h, Span<float> dh, Span<float> dAux, Span<float> dGx, Span<float> dGh);

    /// <summary>One forward row's arguments, in ForwardRow's order: gates [G·H], b_ih [G·H], gh [G·H], b_hh [G·H], h_prev [H], aux_prev [H], h [H], aux [H].</summary>
    private sealed class ForwardBuffers
    {
        public float[][] All { get; }
        public float[] Gates => All[0];
        public float[] BiasIh => All[1];
        public float[] H => All[6];
        public float[] Aux => All[7];

        private ForwardBuffers(float[][] all) => All = all;

        public ForwardBuffers(RecurrentCell cell, int h, SeededRandom random)
        {
            int gh = cell.Gates * h;
            float[] Fill(int n, float scale) { var v = new float[n]; random.FillUniform(v, -scale, scale); return v; }
            // Pre-activations up to ±7 reach σ's and tanh's saturation.
            All = [Fill(gh, 4f), Fill(gh, 1f), Fill(gh, 2f), Fill(gh, 1f), Fill(h, 1f), Fill(h, 2f), new float[h], new float[h]];
        }

        public ForwardBuffers Clone() => new(All.Select(a => a.ToArray()).ToArray());

        public void Run(ForwardRowFn f) => f(All[0], All[1], All[2], All[3], All[4], All[5], All[6], All[7]);
    }

    /// <summary>
    /// One backward row's arguments, in BackwardRow's order: gates [G·H] (activated: σ gates in (0, 1), tanh gates in
    /// (−1, 1)), aux [H], h_prev [H], aux_prev [H], h [H], dh [H], dAux [H], dGx [G·H], dGh [G·H].
    /// </summary>
    private sealed class BackwardBuffers
    {
        public float[][] All { get; }
        public float[] Dh => All[5];
        public float[] DAux => All[6];
        public float[] DGx => All[7];
        public float[] DGh => All[8];

        private BackwardBuffers(float[][] all) => All = all;

        public BackwardBuffers(RecurrentCell cell, int h, SeededRandom random)
        {
            int gh = cell.Gates * h;
            float[] Fill(int n, float low, float high) { var v = new float[n]; random.FillUniform(v, low, high); return v; }
            var gates = Fill(gh, 0.01f, 0.99f);
            if (cell is LstmCell) random.FillUniform(gates.AsSpan(2 * h, h), -0.99f, 0.99f);   // g = tanh(·)
            if (cell is GruCell) random.FillUniform(gates.AsSpan(2 * h, h), -0.99f, 0.99f);    // n = tanh(·)
            var hOut = cell is RnnCell ? Fill(h, -0.99f, 0.99f) : Fill(h, -1f, 1f);
            if (ReferenceEquals(cell, RnnCell.Relu)) random.FillUniform(hOut, -1f, 2f);       // ReLU output: zero where negative
            if (ReferenceEquals(cell, RnnCell.Relu)) for (int i = 0; i < h; i++) hOut[i] = Math.Max(0, hOut[i]);
            All = [gates, Fill(h, -3f, 3f), Fill(h, -1f, 1f), Fill(h, -3f, 3f), hOut, Fill(h, -1f, 1f), Fill(h, -1f, 1f),
                Fill(gh, -9f, 9f), Fill(gh, -9f, 9f)];
        }

        public BackwardBuffers Clone() => new(All.Select(a => a.ToArray()).ToArray());

        public void Run(BackwardRowFn f) => f(All[0], All[1], All[2], All[3], All[4], All[5], All[6], All[7], All[8]);
    }
}
