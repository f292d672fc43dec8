using Microsoft.ML.Recurrent.Core;

namespace Microsoft.ML.Recurrent.Training;

/// <summary>
/// Splits examples into mini-batches of similar lengths ("bucketing"): each epoch shuffles all examples, sorts each
/// window of 50 batches by length, cuts the window into batches and shuffles the batch order. Batches hold similar
/// lengths (little work wasted on the shortest sequence waiting for the longest — packed batches waste none, but
/// similar lengths keep the per-step GEMMs wide), while each epoch still sees a different mix.
/// </summary>
internal static class BatchPlanner
{
    private const int WindowBatches = 50;

    /// <summary>The batches of one epoch as lists of example indices.</summary>
    public static List<int[]> Plan(ReadOnlySpan<int> lengths, int batchSize, SeededRandom random)
    {
        int count = lengths.Length;
        var order = new int[count];
        for (int i = 0; i < count; i++) order[i] = i;
        random.Shuffle(order);
        var lengthsCopy = lengths.ToArray();
        int window = batchSize * WindowBatches;
        for (int start = 0; start < count; start += window)
        {
            int n = Math.Min(window, count - start);
            // Stable by position in the shuffled order, so ties stay shuffled and the result is deterministic.
            var segment = order.AsSpan(start, n).ToArray();
            var keys = segment.Select((index, position) => ((long)lengthsCopy[index] << 32) | (uint)position).ToArray();
            Array.Sort(keys, segment);
            segment.CopyTo(order.AsSpan(start, n));
        }
        var batches = new List<int[]>((count + batchSize - 1) / batchSize);
        for (int start = 0; start < count; start += batchSize)
            batches.Add(order.AsSpan(start, Math.Min(batchSize, count - start)).ToArray());
        var batchOrder = new int[batches.Count];
        for (int i = 0; i < batchOrder.Length; i++) batchOrder[i] = i;
        random.Shuffle(batchOrder);
        return batchOrder.Select(i => batches[i]).ToList();
    }
}
