using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Kernels;
using Microsoft.ML.Recurrent.Optimizers;

namespace Microsoft.ML.Recurrent.Tests;

[TestClass]
public sealed class OptimizerTests
{
    /// <summary>
    /// Adam on one vector path is bitwise equal to its scalar reference at every length from 1 to past two AVX-512
    /// vectors (whole vectors and every tail), with L2 and decoupled weight decay. Inconclusive, with the reason, when
    /// this CPU does not accelerate the path.
    /// </summary>
    [TestMethod]
    [DataRow(KernelPaths.Avx512, false)]
    [DataRow(KernelPaths.Avx512, true)]
    [DataRow(KernelPaths.Avx2, false)]
    [DataRow(KernelPaths.Avx2, true)]
    [DataRow(KernelPaths.Portable, false)]
    [DataRow(KernelPaths.Portable, true)]
    [DataRow(KernelPaths.Avx512InSoftware, false)]
    [DataRow(KernelPaths.Avx512InSoftware, true)]
    public void VectorizedAdamEqualsScalarReference(string path, bool decoupled)
    {
        using var scope = KernelPaths.Force(path, sgemmToo: false);
        for (int length = 1; length <= 2 * 16 + 3; length++)
        {
            var random = new SeededRandom(4 + length);
            var p = new float[length];
            random.FillUniform(p, -1, 1);
            var reference = p.ToArray();
            var onPath = new Adam(length, 0.01f, weightDecay: 0.1f, decoupled: decoupled);
            var scalar = new Adam(length, 0.01f, weightDecay: 0.1f, decoupled: decoupled);
            var g = new float[length];
            for (int step = 0; step < 5; step++)
            {
                random.FillUniform(g, -1, 1);
                onPath.Step(p, g);
                scalar.StepReference(reference, g);
            }
            CollectionAssert.AreEqual(reference, p, $"length {length} on {path} (resolved {FusedKernels.Current()})");
        }
    }

    /// <summary>
    /// Parameter groups (discriminative fine-tuning): on every vector path, a grouped Adam equals the scalar reference
    /// bitwise, and each group moves exactly as a separate Adam at learning rate × its scale on that slice would
    /// (group boundaries off the vector width, an empty group included). SGD likewise.
    /// </summary>
    [TestMethod]
    [DataRow(KernelPaths.Avx512)]
    [DataRow(KernelPaths.Avx2)]
    [DataRow(KernelPaths.Portable)]
    [DataRow(KernelPaths.Avx512InSoftware)]
    public void GroupedLearningRatesEqualSeparateOptimizersPerGroup(string path)
    {
        using var scope = KernelPaths.Force(path, sgemmToo: false);
        int[] starts = [0, 7, 7, 30];
        float[] scales = [0.25f, 3f, 0.5f, 1f];
        const int n = 41;
        var random = new SeededRandom(12);
        var p = new float[n];
        random.FillUniform(p, -1, 1);
        var reference = p.ToArray();
        var separate = p.ToArray();
        var grouped = new Adam(n, 0.01f, weightDecay: 0.1f);
        var scalar = new Adam(n, 0.01f, weightDecay: 0.1f);
        grouped.SetGroups(starts, scales);
        scalar.SetGroups(starts, scales);
        var parts = new (int From, int To, Adam Adam)[] { (0, 7, new Adam(7, 0.0025f, weightDecay: 0.1f)), (7, 30, new Adam(23, 0.005f, weightDecay: 0.1f)), (30, 41, new Adam(11, 0.01f, weightDecay: 0.1f)) };
        var sgd = new Sgd(n, 0.1f, momentum: 0.9f);
        sgd.SetGroups(starts, scales);
        var sgdParts = new (int From, int To, Sgd Sgd)[] { (0, 7, new Sgd(7, 0.025f, 0.9f)), (7, 30, new Sgd(23, 0.05f, 0.9f)), (30, 41, new Sgd(11, 0.1f, 0.9f)) };
        var sgdP = p.ToArray();
        var sgdSeparate = p.ToArray();
        var g = new float[n];
        for (int step = 0; step < 4; step++)
        {
            random.FillUniform(g, -1, 1);
            grouped.Step(p, g);
            scalar.StepReference(reference, g);
            foreach (var (from, to, adam) in parts) adam.StepReference(separate.AsSpan(from, to - from), g.AsSpan(from, to - from));
            sgd.Step(sgdP, g);
            foreach (var (from, to, part) in sgdParts) part.Step(sgdSeparate.AsSpan(from, to - from), g.AsSpan(from, to - from));
        }
        CollectionAssert.AreEqual(reference, p, $"grouped Adam on {path} (resolved {FusedKernels.Current()}) vs its scalar reference");
        for (int i = 0; i < n; i++)
            Assert.AreEqual(separate[i], p[i], 1e-7f, $"Adam parameter {i}");
        for (int i = 0; i < n; i++)
            Assert.AreEqual(sgdSeparate[i], sgdP[i], 1e-7f, $"SGD parameter {i}");
        Assert.ThrowsExactly<ArgumentException>(() => grouped.SetGroups([1, 5], [1f, 1f]));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => grouped.SetGroups([0, 5], [1f, 0f]));
    }

    [TestMethod]
    public void AdamRejectsMismatchedBuffersBeforeAnyUpdate()
    {
        var adam = new Adam(40, 0.01f);
        var p = new float[40];
        new SeededRandom(1).FillUniform(p, -1, 1);
        var before = p.ToArray();
        var e = Assert.ThrowsExactly<ArgumentException>(() => adam.Step(p, new float[39]));
        Assert.AreEqual("gradients", e.ParamName);
        StringAssert.Contains(e.Message, "gradients holds 39 floats but parameters holds 40");
        e = Assert.ThrowsExactly<ArgumentException>(() => adam.Step(p.AsSpan(0, 39), new float[39]));
        Assert.AreEqual("parameters", e.ParamName);
        StringAssert.Contains(e.Message, "parameters holds 39 floats but this optimizer was created for 40");
        e = Assert.ThrowsExactly<ArgumentException>(() => adam.Step(new float[41], new float[41]));
        Assert.AreEqual("parameters", e.ParamName);
        StringAssert.Contains(e.Message, "parameters holds 41 floats but this optimizer was created for 40");
        Assert.ThrowsExactly<ArgumentException>(() => adam.StepReference(p, new float[39]));
        CollectionAssert.AreEqual(before, p, "nothing may be updated before the check");
        Assert.AreEqual(0, adam.StepCount, "a rejected call is not a step");
        adam.Step(p, new float[40]);
        Assert.AreEqual(1, adam.StepCount);
    }

    [TestMethod]
    public void SgdRejectsMismatchedBuffersBeforeAnyUpdate()
    {
        var sgd = new Sgd(40, 0.1f, momentum: 0.9f);
        var p = new float[40];
        new SeededRandom(2).FillUniform(p, -1, 1);
        var before = p.ToArray();
        var e = Assert.ThrowsExactly<ArgumentException>(() => sgd.Step(p, new float[39]));
        Assert.AreEqual("gradients", e.ParamName);
        StringAssert.Contains(e.Message, "gradients holds 39 floats but parameters holds 40");
        e = Assert.ThrowsExactly<ArgumentException>(() => sgd.Step(new float[41], new float[41]));
        Assert.AreEqual("parameters", e.ParamName);
        StringAssert.Contains(e.Message, "parameters holds 41 floats but this optimizer was created for 40");
        CollectionAssert.AreEqual(before, p, "nothing may be updated before the check");
        Assert.AreEqual(0, sgd.StepCount, "a rejected call is not a step");
    }

    [TestMethod]
    public void SumOfSquaresIsAccurateOnLongVectors()
    {
        var values = new float[100_003];
        new SeededRandom(2).FillUniform(values, -1, 1);
        double exact = values.Sum(v => (double)v * v);
        Assert.AreEqual(exact, GradientClipping.SumOfSquares(values), exact * 1e-6);
    }
}
