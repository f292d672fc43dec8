using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Generation;
using Microsoft.ML.Recurrent.Kernels;
using Microsoft.ML.Recurrent.Model;

namespace Microsoft.ML.Recurrent.Tests.LanguageModeling;

/// <summary>The sampler (temperature, top-k, top-p, seeds) and the single-step network of generation.</summary>
[TestClass]
public sealed class GenerationTests
{
    private static readonly float[] Logits = [2.0f, 1.0f, 0.5f, 0.0f, -1.0f, 3.0f];

    [TestMethod]
    public void GreedyTakesTheLargestLogit()
    {
        var sampler = new TokenSampler(0, 0, 1);
        Assert.AreEqual(5, sampler.Sample(Logits, new SeededRandom(1), new float[6]));
        var p = new float[6];
        sampler.Distribution(Logits, p);
        CollectionAssert.AreEqual(new float[] { 0, 0, 0, 0, 0, 1 }, p);
    }

    [TestMethod]
    public void TemperatureOneIsTheSoftmax()
    {
        var p = new float[6];
        new TokenSampler(1, 0, 1).Distribution(Logits, p);
        double sum = Logits.Sum(z => Math.Exp(z));
        for (int i = 0; i < 6; i++)
            Assert.AreEqual(Math.Exp(Logits[i]) / sum, p[i], 1e-6);
        // A lower temperature sharpens: the best token gains.
        var cold = new float[6];
        new TokenSampler(0.5f, 0, 1).Distribution(Logits, cold);
        Assert.IsTrue(cold[5] > p[5] && cold[4] < p[4]);
    }

    [TestMethod]
    public void TopKAndTopPKeepOnlyTheMostLikelyTokens()
    {
        var p = new float[6];
        new TokenSampler(1, 2, 1).Distribution(Logits, p);
        // Tokens 5 (logit 3) and 0 (logit 2) only, renormalized.
        double e5 = Math.Exp(3), e0 = Math.Exp(2);
        Assert.AreEqual(e5 / (e5 + e0), p[5], 1e-6);
        Assert.AreEqual(e0 / (e5 + e0), p[0], 1e-6);
        Assert.AreEqual(0, p[1] + p[2] + p[3] + p[4]);

        // Softmax ≈ [.222, .082, .050, .030, .011, .605]: p = 0.8 needs tokens 5 and 0 (0.827).
        new TokenSampler(1, 0, 0.8f).Distribution(Logits, p);
        Assert.IsTrue(p[5] > 0 && p[0] > 0);
        Assert.AreEqual(0, p[1] + p[2] + p[3] + p[4]);
        // p = 0.5 needs token 5 alone.
        new TokenSampler(1, 0, 0.5f).Distribution(Logits, p);
        Assert.AreEqual(1f, p[5]);
    }

    [TestMethod]
    public void DrawsFollowTheDistributionAndRespectTopKAndTopP()
    {
        // 60,000 draws: every frequency within 5 standard errors of its probability, nothing outside the allowed set.
        foreach (var sampler in new[] { new TokenSampler(1, 0, 1), new TokenSampler(1.5f, 3, 1), new TokenSampler(0.8f, 0, 0.9f), new TokenSampler(1, 4, 0.95f) })
        {
            var p = new float[6];
            sampler.Distribution(Logits, p);
            var counts = new int[6];
            var random = new SeededRandom(42);
            var scratch = new float[6];
            const int n = 60_000;
            for (int i = 0; i < n; i++) counts[sampler.Sample(Logits, random, scratch)]++;
            for (int i = 0; i < 6; i++)
            {
                if (p[i] == 0)
                {
                    Assert.AreEqual(0, counts[i], $"T={sampler.Temperature} k={sampler.TopK} p={sampler.TopP}: token {i} is outside the allowed set but was drawn");
                    continue;
                }
                double se = Math.Sqrt(p[i] * (1 - p[i]) / n);
                Assert.AreEqual(p[i], (double)counts[i] / n, 5 * se + 1e-9, $"T={sampler.Temperature} k={sampler.TopK} p={sampler.TopP}: token {i}");
            }
        }
    }

    [TestMethod]
    public void TheSameSeedGivesTheSameDraws()
    {
        var sampler = new TokenSampler(1, 0, 0.95f);
        var scratch = new float[6];
        int[] Draw(long seed)
        {
            var random = new SeededRandom(seed);
            return Enumerable.Range(0, 200).Select(_ => sampler.Sample(Logits, random, scratch)).ToArray();
        }
        CollectionAssert.AreEqual(Draw(3), Draw(3));
        CollectionAssert.AreNotEqual(Draw(3), Draw(4));
    }

    [TestMethod]
    public void NonFiniteLogitsAreNeverDrawn()
    {
        float[] logits = [float.NegativeInfinity, 1, float.NaN, 0.5f];
        var sampler = new TokenSampler(1, 0, 1);
        var random = new SeededRandom(5);
        var scratch = new float[4];
        for (int i = 0; i < 2000; i++)
        {
            int id = sampler.Sample(logits, random, scratch);
            Assert.IsTrue(id is 1 or 3, $"drew {id}");
        }
    }

    [TestMethod]
    public void InvalidSamplerSettingsAreRefused()
    {
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new TokenSampler(-1, 0, 1));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new TokenSampler(float.NaN, 0, 1));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new TokenSampler(1, -1, 1));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new TokenSampler(1, 0, 0));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new TokenSampler(1, 0, 1.5f));
    }

    /// <summary>
    /// The single-step (matrix-vector) path gives the logits and states of the batched forward with carried states,
    /// on every cell, tied and untied, at every vector width.
    /// </summary>
    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm, false)]
    [DataRow(RecurrentCellKind.Lstm, true)]
    [DataRow(RecurrentCellKind.Gru, false)]
    [DataRow(RecurrentCellKind.RnnTanh, true)]
    [DataRow(RecurrentCellKind.RnnRelu, false)]
    public void SingleStepsMatchTheBatchedForward(RecurrentCellKind cell, bool tied)
    {
        foreach (var path in AcceleratedPaths())
        {
            FusedKernels.Path = path;
            try
            {
                var network = new RecurrentNetwork(new NetworkConfig
                {
                    Cell = cell, VocabularySize = 11, OutputSize = 11, InputSize = tied ? 19 : 7, HiddenSize = 19, NumLayers = 2,
                    Head = NetworkHeadKind.PerStep, TieWeights = tied,
                });
                Training.LanguageModelTrainer.Initialize(network, 3);
                new SeededRandom(8).FillUniform(network.Parameters.Values, -0.5f, 0.5f);
                int[] tokens = [1, 4, 9, 2, 2, 7, 10, 0, 3];
                // Reference: the whole sequence through the batched forward.
                var batch = new RaggedBatch([tokens.Length]);
                var expected = new float[tokens.Length * 11];
                network.Forward(batch, tokens, expected);
                var hN = new float[network.StateLength(1)];
                var cN = new float[cell == RecurrentCellKind.Lstm ? hN.Length : 0];
                network.FinalStates(batch, hN, cN);
                // The generator: a prompt of 3 through the batched path, then one token at a time.
                var generator = new TokenGenerator(network.CreateInferenceSibling());
                var logits = generator.Feed(tokens.AsSpan(0, 3)).ToArray();
                AssertClose(expected.AsSpan(2 * 11, 11), logits, $"{path} prompt");
                for (int t = 3; t < tokens.Length; t++)
                {
                    logits = generator.Feed(tokens[t]).ToArray();
                    AssertClose(expected.AsSpan(t * 11, 11), logits, $"{path} step {t}");
                }
                // Scoring from zero: Σ log p of tokens 1… given the prefix.
                generator.Reset();
                var (ll, n) = generator.Score(tokens);
                double reference = 0;
                for (int t = 0; t + 1 < tokens.Length; t++)
                    reference += TokenGenerator.LogProbability(expected.AsSpan(t * 11, 11), tokens[t + 1]);
                Assert.AreEqual(tokens.Length - 1, n);
                Assert.AreEqual(reference, ll, 1e-4);
            }
            finally
            {
                FusedKernels.Path = KernelPath.Auto;
            }
        }
    }

    [TestMethod]
    public void GemvMatchesADirectSumOnEveryPath()
    {
        var random = new SeededRandom(2);
        foreach (var (rows, cols) in new[] { (1, 1), (5, 3), (9, 16), (13, 37), (64, 70) })
        {
            var w = new float[rows * cols];
            var x = new float[cols];
            var b = new float[rows];
            random.FillUniform(w, -1, 1);
            random.FillUniform(x, -1, 1);
            random.FillUniform(b, -1, 1);
            foreach (var path in AcceleratedPaths())
            {
                FusedKernels.Path = path;
                try
                {
                    var y = new float[rows];
                    Gemv.Multiply(w, x, b, y);
                    for (int r = 0; r < rows; r++)
                    {
                        double sum = b[r];
                        for (int c = 0; c < cols; c++) sum += (double)w[r * cols + c] * x[c];
                        Assert.AreEqual(sum, y[r], 1e-5 * (1 + cols), $"{path} {rows}×{cols} row {r}");
                    }
                }
                finally
                {
                    FusedKernels.Path = KernelPath.Auto;
                }
            }
        }
        Assert.ThrowsExactly<ArgumentException>(() => Gemv.Multiply(new float[5], new float[3], default, new float[2]));
    }

    /// <summary>The vector widths this CPU accelerates (the portable one always).</summary>
    private static IEnumerable<KernelPath> AcceleratedPaths() =>
        new[] { KernelPath.Avx512, KernelPath.Avx2, KernelPath.Portable }.Where(FusedKernels.IsSupported);

    private static void AssertClose(ReadOnlySpan<float> expected, float[] actual, string what)
    {
        for (int i = 0; i < actual.Length; i++)
            Assert.AreEqual(expected[i], actual[i], 2e-5f * (1 + Math.Abs(expected[i])), $"{what}, logit {i}");
    }
}
