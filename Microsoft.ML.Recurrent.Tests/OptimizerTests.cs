using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Optimizers;

namespace Microsoft.ML.Recurrent.Tests;

[TestClass]
public sealed class OptimizerTests
{
    /// <summary>The vectorized Adam loop and its scalar tail compute the same bits (lengths that use both).</summary>
    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void VectorizedAdamEqualsScalarAdam(bool decoupled)
    {
        const int length = 37;
        var random = new SeededRandom(4);
        var p = new float[length];
        random.FillUniform(p, -1, 1);
        var single = p.Select(v => new[] { v }).ToArray();
        var whole = new Adam(length, 0.01f, weightDecay: 0.1f, decoupled: decoupled);
        var separate = Enumerable.Range(0, length).Select(_ => new Adam(1, 0.01f, weightDecay: 0.1f, decoupled: decoupled)).ToArray();
        var g = new float[length];
        for (int step = 0; step < 5; step++)
        {
            random.FillUniform(g, -1, 1);
            whole.Step(p, g);
            for (int i = 0; i < length; i++) separate[i].Step(single[i], g.AsSpan(i, 1));
        }
        CollectionAssert.AreEqual(single.Select(s => s[0]).ToArray(), p);
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
