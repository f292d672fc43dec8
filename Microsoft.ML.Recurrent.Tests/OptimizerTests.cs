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
