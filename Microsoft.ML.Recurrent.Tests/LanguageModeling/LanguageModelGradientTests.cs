using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Layers;
using Microsoft.ML.Recurrent.Model;

namespace Microsoft.ML.Recurrent.Tests.LanguageModeling;

/// <summary>Finite-difference checks of the language model's pieces: weight tying and initial states carried into a chunk.</summary>
[TestClass]
public sealed class LanguageModelGradientTests
{
    /// <summary>
    /// A per-step network over the vocabulary, optionally tied, started from random initial states (what a TBPTT chunk
    /// sees), with input, inter-layer and output dropout under a fixed mask: every parameter's gradient of the mean
    /// cross-entropy matches central differences. The initial states are constants (detached), so they get none.
    /// </summary>
    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm, true)]
    [DataRow(RecurrentCellKind.Lstm, false)]
    [DataRow(RecurrentCellKind.Gru, true)]
    [DataRow(RecurrentCellKind.RnnTanh, false)]
    public void TiedAndStatefulGradientsMatchFiniteDifferences(RecurrentCellKind cell, bool tied)
    {
        const int v = 6, h = 4, layers = 2, b = 3, t = 4;
        var network = new RecurrentNetwork(new NetworkConfig
        {
            Cell = cell, VocabularySize = v, OutputSize = v, InputSize = tied ? h : 3, HiddenSize = h, NumLayers = layers,
            Head = NetworkHeadKind.PerStep, TieWeights = tied, Dropout = 0.2f, InputDropout = 0.1f, HeadDropout = 0.2f,
        });
        Training.LanguageModelTrainer.Initialize(network, 5);
        var random = new SeededRandom(17);
        random.FillUniform(network.Parameters.Values, -0.6f, 0.6f);
        var h0 = new float[network.StateLength(b)];
        var c0 = new float[cell == RecurrentCellKind.Lstm ? h0.Length : 0];
        random.FillUniform(h0, -0.8f, 0.8f);
        random.FillUniform(c0, -0.8f, 0.8f);
        var batch = new RaggedBatch([t, t, t]);
        var tokens = new int[b * t];
        var targets = new int[b * t];
        for (int i = 0; i < tokens.Length; i++) { tokens[i] = random.NextInt(v); targets[i] = random.NextInt(v); }
        var logits = new float[b * t * v];
        var probabilities = new float[logits.Length];
        var dLogits = new float[logits.Length];
        network.SetInitialStates(h0, c0);

        double Loss()
        {
            network.Forward(batch, tokens, logits, new SeededRandom(31));
            return SoftmaxCrossEntropy.Forward(b * t, v, logits, targets, default, default, probabilities, dLogits);
        }

        Loss();
        network.Parameters.ZeroGradients();
        network.Backward(batch, tokens, dLogits);
        var ps = network.Parameters;
        Assert.AreEqual(tied, !ps.Parameters.Any(p => p.Name == "head.weight"), "a tied network has no head.weight of its own");
        var failures = new List<string>();
        foreach (var p in ps.Parameters)
            GradientCheckTests.CheckAll(p.Length, i => ps.Values[p.Offset + i], (i, x) => ps.Values[p.Offset + i] = x,
                ps.Gradient(p).ToArray(), Loss, p.Name, failures);
        Assert.AreEqual(0, failures.Count, string.Join("\n", failures.Take(20)));

        // The initial states matter: zero states give other outputs.
        var withStates = logits.ToArray();
        network.ClearInitialStates();
        network.Forward(batch, tokens, logits, new SeededRandom(31));
        CollectionAssert.AreNotEqual(withStates, logits);
    }

    [TestMethod]
    public void TyingNeedsMatchingShapes()
    {
        Assert.ThrowsExactly<ArgumentException>(() => new RecurrentNetwork(new NetworkConfig
        {
            VocabularySize = 6, OutputSize = 6, InputSize = 5, HiddenSize = 4, Head = NetworkHeadKind.PerStep, TieWeights = true,
        }));
        Assert.ThrowsExactly<ArgumentException>(() => new RecurrentNetwork(new NetworkConfig
        {
            VocabularySize = 6, OutputSize = 3, InputSize = 4, HiddenSize = 4, Head = NetworkHeadKind.PerStep, TieWeights = true,
        }));
        var network = new RecurrentNetwork(new NetworkConfig { VocabularySize = 6, OutputSize = 6, InputSize = 4, HiddenSize = 4, Head = NetworkHeadKind.PerStep, TieWeights = true });
        Assert.AreEqual(RecurrentNetwork.CountParameters(network.Config), network.Parameters.Length);
    }

    [TestMethod]
    public void InitialStatesMustFitTheBatch()
    {
        var network = new RecurrentNetwork(new NetworkConfig { VocabularySize = 6, OutputSize = 6, InputSize = 4, HiddenSize = 4, Head = NetworkHeadKind.PerStep });
        network.Initialize(1);
        network.SetInitialStates(new float[network.StateLength(2)], new float[network.StateLength(2)]);
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => network.Forward(new RaggedBatch([2, 2, 2]), new int[6], new float[36]));
        StringAssert.Contains(e.Message, "3 sequences");
        Assert.ThrowsExactly<ArgumentException>(() => network.SetInitialStates(new float[7], default));
    }
}
