using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Layers;
using Microsoft.ML.Recurrent.Model;
using Microsoft.ML.Recurrent.Training;

namespace Microsoft.ML.Recurrent.Tests.LanguageModeling;

/// <summary>
/// Initialization of a classifier from language models: before fine-tuning, the classifier's top layer computes exactly
/// what the forward model computed on the text and the backward model on the reversed text.
/// </summary>
[TestClass]
public sealed class TransferTests
{
    private static RecurrentNetwork LanguageModel(RecurrentCellKind cell, int v, int e, int h, int layers, long seed)
    {
        var network = new RecurrentNetwork(new NetworkConfig
        {
            Cell = cell, VocabularySize = v, OutputSize = v, InputSize = e, HiddenSize = h, NumLayers = layers, Head = NetworkHeadKind.PerStep,
        });
        LanguageModelTrainer.Initialize(network, seed);
        // Larger weights than the initialization, so that every copied value matters.
        new SeededRandom(seed + 1).FillUniform(network.Parameters.Values, -0.8f, 0.8f);
        return network;
    }

    /// <summary>Top-layer final hidden state [H] of a language model run over one sequence of ids from a zero state.</summary>
    private static float[] TopFinalState(RecurrentNetwork model, int[] ids)
    {
        var batch = new RaggedBatch([ids.Length]);
        model.Forward(batch, ids, new float[ids.Length * model.Config.OutputSize]);
        int h = model.Config.HiddenSize;
        var hN = new float[model.StateLength(1)];
        var cN = new float[model.Config.Cell == RecurrentCellKind.Lstm ? hN.Length : 0];
        model.FinalStates(batch, hN, cN);
        return hN.AsSpan((model.Config.NumLayers - 1) * h, h).ToArray();
    }

    private static float[] Pooled(RecurrentNetwork target, int[] rows)
    {
        var pooled = new float[target.RepresentationSize];
        target.Represent(new RaggedBatch([rows.Length]), SequenceData.OfTokens(rows), pooled, default);
        return pooled;
    }

    private static void AssertClose(float[] expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.AreEqual(expected.Length, actual.Length, what);
        for (int i = 0; i < expected.Length; i++)
            Assert.AreEqual(expected[i], actual[i], 2e-6f, $"{what}[{i}]");
        Assert.IsTrue(expected.Any(x => MathF.Abs(x) > 1e-3f), $"{what}: a state of zeros proves nothing");
    }

    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm, 1)]
    [DataRow(RecurrentCellKind.Lstm, 2)]
    [DataRow(RecurrentCellKind.Gru, 3)]
    [DataRow(RecurrentCellKind.RnnTanh, 2)]
    public void BidirectionalClassifierComputesBothLanguageModelsExactly(RecurrentCellKind cell, int layers)
    {
        const int h = 3, ef = 4, eb = 5, rowsCount = 7;
        var forward = LanguageModel(cell, 9, ef, h, layers, 11);
        var backward = LanguageModel(cell, 8, eb, h, layers + 1, 23); // a deeper backward model: its bottom layers are used
        var target = new RecurrentNetwork(new NetworkConfig
        {
            Cell = cell, VocabularySize = rowsCount, InputSize = ef + eb, HiddenSize = h, NumLayers = layers, Bidirectional = true,
            Pooling = PoolingKind.FinalState | PoolingKind.Attention, OutputSize = 2,
        });
        target.Initialize(3);
        int[] forwardIds = [0, 2, 3, 4, 5, 8, 7];   // row r of the classifier = forward model's id
        int[] backwardIds = [0, 7, 6, 5, 4, 3, 2];
        LanguageModelTransfer.Apply(target, forward, forwardIds, backward, backwardIds);

        foreach (int[] rows in new[] { new[] { 1, 4, 2, 6, 3 }, new[] { 5 }, new[] { 0, 6, 6, 1 } })
        {
            var pooled = Pooled(target, rows);
            var fwd = TopFinalState(forward, rows.Select(r => forwardIds[r]).ToArray());
            // The backward model read the text reversed; its last layer used by the target is layer L − 1.
            var reversed = rows.Reverse().Select(r => backwardIds[r]).ToArray();
            var bwdAll = BottomLayersFinalState(backward, reversed, layers);
            AssertClose(fwd, pooled.AsSpan(0, h), $"forward direction of [{string.Join(",", rows)}]");
            AssertClose(bwdAll, pooled.AsSpan(h, h), $"reverse direction of [{string.Join(",", rows)}]");
        }
    }

    /// <summary>Final hidden state of layer <paramref name="layers"/> − 1 of a (possibly deeper) model.</summary>
    private static float[] BottomLayersFinalState(RecurrentNetwork model, int[] ids, int layers)
    {
        var batch = new RaggedBatch([ids.Length]);
        model.Forward(batch, ids, new float[ids.Length * model.Config.OutputSize]);
        int h = model.Config.HiddenSize;
        var hN = new float[model.StateLength(1)];
        var cN = new float[model.Config.Cell == RecurrentCellKind.Lstm ? hN.Length : 0];
        model.FinalStates(batch, hN, cN);
        return hN.AsSpan((layers - 1) * h, h).ToArray();
    }

    [TestMethod]
    public void UnidirectionalClassifierTakesTheModelsBottomLayers()
    {
        const int h = 4, e = 3;
        var forward = LanguageModel(RecurrentCellKind.Lstm, 6, e, h, 3, 5);
        var target = new RecurrentNetwork(new NetworkConfig
        {
            Cell = RecurrentCellKind.Lstm, VocabularySize = 6, InputSize = e, HiddenSize = h, NumLayers = 2, Pooling = PoolingKind.FinalState, OutputSize = 3,
        });
        target.Initialize(1);
        int[] ids = [0, 1, 2, 3, 4, 5];
        LanguageModelTransfer.Apply(target, forward, ids);
        int[] rows = [2, 5, 1, 1, 4, 3, 2];
        AssertClose(BottomLayersFinalState(forward, rows, 2), Pooled(target, rows), "final state");
        // The head is the classifier's own: untouched by the transfer.
        var head = target.Parameters.Value(target.Parameters["head.weight"]).ToArray();
        Assert.IsTrue(head.Any(x => x != 0));
    }

    [TestMethod]
    public void MismatchedShapesAreRefusedWithTheirNames()
    {
        var forward = LanguageModel(RecurrentCellKind.Lstm, 6, 3, 4, 1, 5);
        RecurrentNetwork Target(RecurrentCellKind cell = RecurrentCellKind.Lstm, int e = 3, int h = 4, int layers = 1, bool bi = false) =>
            new(new NetworkConfig { Cell = cell, VocabularySize = 6, InputSize = e, HiddenSize = h, NumLayers = layers, Bidirectional = bi, OutputSize = 2 });
        int[] ids = [0, 1, 2, 3, 4, 5];
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => LanguageModelTransfer.Apply(Target(RecurrentCellKind.Gru), forward, ids)).Message, "cell");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => LanguageModelTransfer.Apply(Target(h: 5), forward, ids)).Message, "hidden size");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => LanguageModelTransfer.Apply(Target(layers: 2), forward, ids)).Message, "layer");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => LanguageModelTransfer.Apply(Target(e: 4), forward, ids)).Message, "embedding width");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => LanguageModelTransfer.Apply(Target(), forward, [0, 1, 2, 3, 4, 6])).Message, "row 5");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => LanguageModelTransfer.Apply(Target(e: 6), forward, ids, forward, ids)).Message, "bidirectional");
    }

    [TestMethod]
    public void StreamJoinsRowsWithEndOfRowAndReversesWhole()
    {
        ReadOnlyMemory<int>[] rows = [new[] { 1, 2, 3 }, new[] { 4 }];
        CollectionAssert.AreEqual(new[] { 9, 1, 2, 3, 9, 4, 9 }, LanguageModelTransfer.Stream(rows, 9, reverse: false));
        CollectionAssert.AreEqual(new[] { 9, 4, 9, 3, 2, 1, 9 }, LanguageModelTransfer.Stream(rows, 9, reverse: true));
    }
}
