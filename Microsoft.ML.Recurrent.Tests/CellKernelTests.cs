using System.Runtime.Intrinsics;
using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Kernels;
using Microsoft.ML.Recurrent.Layers;
using Microsoft.ML.Recurrent.Layers.Cells;

namespace Microsoft.ML.Recurrent.Tests;

/// <summary>The fused (Vector512) gate kernels against their TensorPrimitives references, at every awkward width.</summary>
[TestClass]
public sealed class CellKernelTests
{
    [TestMethod]
    public void VectorMathIsAccurateEverywhere()
    {
        if (!Vector512.IsHardwareAccelerated) Assert.Inconclusive("No Vector512 hardware acceleration on this CPU.");
        double worstExp = 0, worstSigmoid = 0, worstTanh = 0;
        for (int i = -200_000; i <= 200_000; i += 16)
        {
            // x from −100 to 100, denser near 0.
            var x = Vector512.Create(Enumerable.Range(0, 16).Select(j => (float)Math.Sinh((i + j) / 40_000.0) * 0.9f).ToArray());
            var e = VectorMath.Exp(x);
            var s = VectorMath.Sigmoid(x);
            var t = VectorMath.Tanh(x);
            for (int j = 0; j < 16; j++)
            {
                double xv = x[j];
                if (xv > -80 && xv < 80) worstExp = Math.Max(worstExp, Math.Abs(e[j] - Math.Exp(xv)) / Math.Exp(xv));
                worstSigmoid = Math.Max(worstSigmoid, Math.Abs(s[j] - 1 / (1 + Math.Exp(-xv))));
                worstTanh = Math.Max(worstTanh, Math.Abs(t[j] - Math.Tanh(xv)));
                Assert.IsTrue(float.IsFinite(s[j]) && float.IsFinite(t[j]), $"non-finite at {xv}");
            }
        }
        Assert.IsTrue(worstExp < 5e-7, $"exp relative error {worstExp}");
        Assert.IsTrue(worstSigmoid < 5e-7, $"sigmoid absolute error {worstSigmoid}");
        Assert.IsTrue(worstTanh < 5e-7, $"tanh absolute error {worstTanh}");
        Assert.AreEqual(1f, VectorMath.Tanh(Vector512.Create(50f))[0]);
        Assert.AreEqual(-1f, VectorMath.Tanh(Vector512.Create(-50f))[0]);
        Assert.AreEqual(0f, VectorMath.Sigmoid(Vector512.Create(-200f))[0], 1e-30f);
        Assert.AreEqual(1f, VectorMath.Sigmoid(Vector512.Create(200f))[0]);
    }

    [TestMethod]
    [DataRow(1)]
    [DataRow(15)]
    [DataRow(16)]
    [DataRow(17)]
    [DataRow(33)]
    [DataRow(64)]
    public void FusedForwardMatchesReference(int h)
    {
        var random = new SeededRandom(h);
        foreach (var (kind, gates) in new[] { ("lstm", 4), ("gru", 3) })
        {
            float[] Fill(int n, float scale) { var v = new float[n]; random.FillUniform(v, -scale, scale); return v; }
            var gx = Fill(gates * h, 4f);
            var gh = Fill(gates * h, 2f);
            var bias = Fill(gates * h, 1f);
            var hPrev = Fill(h, 1f);
            var auxPrev = Fill(h, 2f);
            var (g1, g2) = (gx.ToArray(), gx.ToArray());
            var (h1, h2, a1, a2) = (new float[h], new float[h], new float[h], new float[h]);
            var scratch = new float[h];
            if (kind == "lstm")
            {
                LstmCell.Instance.ForwardRow(g1, gh, bias, hPrev, auxPrev, h1, a1, scratch);
                LstmCell.ForwardRowReference(g2, gh, bias, hPrev, auxPrev, h2, a2, scratch);
            }
            else
            {
                GruCell.Instance.ForwardRow(g1, gh, bias, hPrev, auxPrev, h1, a1, scratch);
                GruCell.ForwardRowReference(g2, gh, bias, hPrev, auxPrev, h2, a2, scratch);
            }
            for (int i = 0; i < h; i++)
            {
                Assert.AreEqual(h2[i], h1[i], 2e-6f, $"{kind} h[{i}]");
                Assert.AreEqual(a2[i], a1[i], 2e-6f, $"{kind} aux[{i}]");
            }
            for (int i = 0; i < g1.Length; i++)
                Assert.AreEqual(g2[i], g1[i], 2e-6f, $"{kind} gates[{i}]");
        }
    }

    /// <summary>Finite differences at a width that uses the vector path and its tail (H = 17).</summary>
    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm)]
    [DataRow(RecurrentCellKind.Gru)]
    [DataRow(RecurrentCellKind.RnnTanh)]
    public void WideLayerGradientsMatchFiniteDifferences(RecurrentCellKind cell)
    {
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
}
