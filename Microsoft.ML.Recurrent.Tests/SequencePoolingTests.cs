using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Layers;

namespace Microsoft.ML.Recurrent.Tests;

/// <summary>Max pooling (vectorized) against a plain scalar loop: values, ties, NaN, signed zeros, every width's tail.</summary>
[TestClass]
public sealed class SequencePoolingTests
{
    [TestMethod]
    public void MaxPoolingMatchesTheScalarDefinitionBitForBit()
    {
        var random = new Random(21);
        float[] specials = [float.NaN, 0f, -0f, 1f, -1f, float.PositiveInfinity, float.NegativeInfinity];
        for (int hidden = 1; hidden <= 37; hidden += hidden < 10 ? 1 : 9)
        {
            foreach (int directions in new[] { 1, 2 })
            {
                int[] lengths = [7, 1, 4, 12, 3];
                var batch = new RaggedBatch(lengths);
                int w = hidden * directions;
                var y = new float[batch.TotalSteps * w];
                for (int i = 0; i < y.Length; i++)
                {
                    // Few distinct values (ties) and special ones (NaN first or later, ±0, ±∞).
                    y[i] = random.Next(5) == 0 ? specials[random.Next(specials.Length)] : random.Next(4) - 1.5f;
                }
                var pooling = new SequencePooling(PoolingKind.Max, hidden, directions);
                var pooled = new float[batch.BatchSize * w];
                pooling.Forward(batch, y, pooled);

                for (int j = 0; j < batch.BatchSize; j++)
                {
                    for (int k = 0; k < w; k++)
                    {
                        float expected = y[batch.Row(0, j) * w + k];
                        for (int t = 1; t < batch.SortedLengths[j]; t++)
                        {
                            float v = y[batch.Row(t, j) * w + k];
                            if (v > expected) expected = v;
                        }
                        float actual = pooled[j * w + k];
                        Assert.AreEqual(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(actual),
                            $"H={hidden} D={directions} sequence {j} unit {k}: expected {expected}, got {actual}");
                    }
                }

                // The gradient goes to the row that held the maximum (the first one among ties).
                var dPooled = new float[pooled.Length];
                for (int i = 0; i < dPooled.Length; i++) dPooled[i] = i + 1;
                var dY = new float[y.Length];
                pooling.Backward(batch, dPooled, dY);
                for (int j = 0; j < batch.BatchSize; j++)
                {
                    for (int k = 0; k < w; k++)
                    {
                        int best = batch.Row(0, j);
                        for (int t = 1; t < batch.SortedLengths[j]; t++)
                        {
                            int row = batch.Row(t, j);
                            if (y[row * w + k] > y[best * w + k]) best = row;
                        }
                        Assert.AreEqual(j * w + k + 1f, dY[best * w + k], $"H={hidden} D={directions} sequence {j} unit {k}: gradient not at row {best}");
                    }
                }
            }
        }
    }
}
