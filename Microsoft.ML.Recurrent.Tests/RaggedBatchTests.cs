using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Layers;

namespace Microsoft.ML.Recurrent.Tests;

[TestClass]
public sealed class RaggedBatchTests
{
    [TestMethod]
    public void LayoutMatchesTheDocumentedExample()
    {
        var batch = new RaggedBatch([3, 6, 1, 4]);
        CollectionAssert.AreEqual(new[] { 1, 3, 0, 2 }, batch.Order.ToArray());
        CollectionAssert.AreEqual(new[] { 6, 4, 3, 1 }, batch.SortedLengths.ToArray());
        CollectionAssert.AreEqual(new[] { 4, 3, 3, 2, 1, 1 }, batch.StepSizes.ToArray());
        CollectionAssert.AreEqual(new[] { 0, 4, 7, 10, 12, 13, 14 }, batch.StepOffsets.ToArray());
        CollectionAssert.AreEqual(new[] { 0, 3, 9, 10, 14 }, batch.SequenceStarts.ToArray());
        Assert.AreEqual(14, batch.TotalSteps);
        Assert.AreEqual(6, batch.MaxLength);
    }

    [TestMethod]
    public void AResetBatchIsTheLayoutOfItsNewLengths()
    {
        var batch = new RaggedBatch([3, 6, 1, 4]);
        batch.Reset([2, 1]);
        var fresh = new RaggedBatch([2, 1]);
        CollectionAssert.AreEqual(fresh.Order.ToArray(), batch.Order.ToArray());
        CollectionAssert.AreEqual(new[] { 2, 1 }, batch.StepSizes.ToArray());
        CollectionAssert.AreEqual(new[] { 0, 2, 3 }, batch.StepOffsets.ToArray());
        CollectionAssert.AreEqual(new[] { 0, 2, 3 }, batch.SequenceStarts.ToArray());
        Assert.AreEqual(3, batch.TotalSteps);
        batch.Reset([3, 6, 1, 4]);
        CollectionAssert.AreEqual(new[] { 0, 4, 7, 10, 12, 13, 14 }, batch.StepOffsets.ToArray());
    }

    [TestMethod]
    public void TiesKeepTheirOriginalOrder()
    {
        var batch = new RaggedBatch([2, 5, 2, 5, 2]);
        CollectionAssert.AreEqual(new[] { 1, 3, 0, 2, 4 }, batch.Order.ToArray());
    }

    [TestMethod]
    public void ZeroLengthIsRejectedNamingTheSequence()
    {
        var e = Assert.ThrowsExactly<ArgumentException>(() => new RaggedBatch([3, 0, 2]));
        StringAssert.Contains(e.Message, "Sequence 1");
        Assert.ThrowsExactly<ArgumentException>(() => new RaggedBatch([]));
        Assert.ThrowsExactly<ArgumentException>(() => new RaggedBatch([-2]));
    }

    [TestMethod]
    public void PackAndUnpackRoundTrip()
    {
        var batch = new RaggedBatch([2, 3, 1]);
        var flat = Enumerable.Range(1, batch.TotalSteps * 2).Select(i => (float)i).ToArray();
        var packed = new float[flat.Length];
        batch.Pack(flat, 2, packed);
        var back = new float[flat.Length];
        batch.Unpack(packed, 2, back);
        CollectionAssert.AreEqual(flat, back);
        var padded = new float[3 * 4 * 2];
        batch.UnpackPadded(packed, 4, 2, padded);
        var packedAgain = new float[flat.Length];
        batch.PackPadded(padded, 4, 2, packedAgain);
        CollectionAssert.AreEqual(packed, packedAgain);
        Assert.AreEqual(0f, padded[(0 * 4 + 2) * 2], "padded positions are zero");
    }

    /// <summary>Packed-sequence semantics: a sequence's outputs and final states do not depend on what else is in its batch.</summary>
    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm)]
    [DataRow(RecurrentCellKind.Gru)]
    [DataRow(RecurrentCellKind.RnnTanh)]
    [DataRow(RecurrentCellKind.RnnRelu)]
    public void SequenceResultsAreIndependentOfTheirBatch(RecurrentCellKind cell)
    {
        int[] lengths = [4, 7, 1, 7, 2];
        const int inputSize = 3, hidden = 5, layers = 2;
        var parameters = new ParameterSet();
        var stack = new RecurrentStack(parameters, "", cell, inputSize, hidden, layers, bidirectional: true, dropout: 0f);
        parameters.Allocate();
        stack.Initialize(new SeededRandom(3));
        var batch = new RaggedBatch(lengths);
        var flat = new float[batch.TotalSteps * inputSize];
        new SeededRandom(4).FillUniform(flat, -1, 1);
        var packed = new float[flat.Length];
        batch.Pack(flat, inputSize, packed);
        var y = stack.Forward(batch, packed, null);
        var together = new float[batch.TotalSteps * stack.OutputSize];
        batch.Unpack(y, stack.OutputSize, together);
        int states = layers * 2 * lengths.Length * hidden;
        var hN = new float[states];
        stack.FinalStates(batch, hN, cell == RecurrentCellKind.Lstm ? new float[states] : default);

        for (int i = 0; i < lengths.Length; i++)
        {
            var single = new RaggedBatch([lengths[i]]);
            var x = flat.AsSpan(batch.SequenceStarts[i] * inputSize, lengths[i] * inputSize).ToArray();
            var alone = stack.Forward(single, x, null).ToArray();
            CollectionAssert.AreEqual(together.AsSpan(batch.SequenceStarts[i] * stack.OutputSize, alone.Length).ToArray(), alone, $"sequence {i}");
            var hAlone = new float[layers * 2 * hidden];
            stack.FinalStates(single, hAlone, cell == RecurrentCellKind.Lstm ? new float[hAlone.Length] : default);
            int sortedIndex = batch.Order.IndexOf(i);
            for (int k = 0; k < layers * 2; k++)
                CollectionAssert.AreEqual(
                    hN.AsSpan((k * lengths.Length + sortedIndex) * hidden, hidden).ToArray(),
                    hAlone.AsSpan(k * hidden, hidden).ToArray(), $"final state {k} of sequence {i}");
        }
    }
}
