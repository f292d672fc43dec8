using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Model;

namespace Microsoft.ML.Recurrent.Tests;

/// <summary>
/// The inference copies of a trained model share one set of packed recurrent weights (FrozenWeightPacks): they score
/// bit-identically to a network that packs its own, the second copy packs nothing, copies racing to the first use agree,
/// and copies of a network still being trained do not share (they must see later weights).
/// </summary>
[TestClass]
public sealed class FrozenPackTests
{
    private static readonly NetworkConfig Config = new()
    {
        Cell = RecurrentCellKind.Lstm, VocabularySize = 50, InputSize = 16, HiddenSize = 96, NumLayers = 2,
        Bidirectional = true, Pooling = PoolingKind.Mean | PoolingKind.Max, OutputSize = 3,
    };

    private static (RaggedBatch Batch, int[] Tokens) Batch()
    {
        var batch = new RaggedBatch([9, 4, 12, 1]);
        var random = new SeededRandom(3);
        var tokens = new int[batch.TotalSteps];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = random.NextInt(50);
        return (batch, tokens);
    }

    private static float[] Score(RecurrentNetwork network)
    {
        var (batch, tokens) = Batch();
        var outputs = new float[batch.BatchSize * Config.OutputSize];
        network.Forward(batch, tokens, outputs);
        return outputs;
    }

    private static float[] TrainedValues()
    {
        var network = new RecurrentNetwork(Config);
        network.Initialize(11);
        return network.Parameters.Values.ToArray();
    }

    [TestMethod]
    public void CopiesOfAFrozenModelShareThePacksAndScoreAsAnOwnPackingNetwork()
    {
        var values = TrainedValues();
        var model = RecurrentNetwork.ForInference(Config, values.ToArray());
        var alone = RecurrentNetwork.ForInference(Config, values.ToArray()); // packs its own
        var expected = Score(alone);

        var first = model.CreateInferenceSibling();
        var (batch, tokens) = Batch();
        var outputs = new float[batch.BatchSize * Config.OutputSize];
        first.Forward(batch, tokens, outputs); // warms this copy's workspaces; packs the shared weights
        long before = GC.GetAllocatedBytesForCurrentThread();
        var second = model.CreateInferenceSibling();
        second.Forward(batch, tokens, outputs);
        long secondAllocated = GC.GetAllocatedBytesForCurrentThread() - before;
        CollectionAssert.AreEqual(expected, outputs, "a copy with shared packs scores bit-identically");
        CollectionAssert.AreEqual(expected, Score(first));

        // The packed weights alone: 2 layers × 2 directions × (W_ihᵀ + W_hhᵀ), columns padded to 48.
        long packedBytes = 0;
        for (int l = 0; l < 2; l++)
            packedBytes += 2 * 4L * ((l == 0 ? 16 : 192) + 96) * (4 * 96 + 47) / 48 * 48;
        Assert.IsTrue(secondAllocated < packedBytes / 4,
            $"the second copy allocated {secondAllocated:N0} bytes; packing its own weights would take {packedBytes:N0}");
    }

    [TestMethod]
    public void CopiesRacingToTheFirstUseAgree()
    {
        var values = TrainedValues();
        var expected = Score(RecurrentNetwork.ForInference(Config, values.ToArray()));
        for (int round = 0; round < 5; round++)
        {
            var model = RecurrentNetwork.ForInference(Config, values.ToArray());
            var results = new float[8][];
            Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i => results[i] = Score(model.CreateInferenceSibling()));
            foreach (var result in results)
                CollectionAssert.AreEqual(expected, result);
        }
    }

    [TestMethod]
    public void CopiesOfANetworkStillTrainingSeeItsLaterWeights()
    {
        var network = new RecurrentNetwork(Config);
        network.Initialize(11);
        var early = Score(network.CreateInferenceSibling());
        // "Training" changes the weights in place; a copy made afterwards must score the new weights.
        var weights = network.Parameters.Values;
        for (int i = 0; i < weights.Length; i++) weights[i] *= 0.5f;
        var later = Score(network.CreateInferenceSibling());
        var fresh = Score(RecurrentNetwork.ForInference(Config, weights.ToArray()));
        CollectionAssert.AreEqual(fresh, later);
        CollectionAssert.AreNotEqual(early, later);
    }
}
