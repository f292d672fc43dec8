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
    public void SumOfSquaresIsAccurateOnLongVectors()
    {
        var values = new float[100_003];
        new SeededRandom(2).FillUniform(values, -1, 1);
        double exact = values.Sum(v => (double)v * v);
        Assert.AreEqual(exact, GradientClipping.SumOfSquares(values), exact * 1e-6);
    }
}
