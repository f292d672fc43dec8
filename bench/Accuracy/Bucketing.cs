namespace Accuracy;

/// <summary>The length-bucketed batching of the recipe: shuffle, sort windows of 50 batches by length, cut, shuffle the batches.</summary>
internal static class Bucketing
{
    public static List<int[]> Plan(int[] lengths, int batchSize, Random random)
    {
        int count = lengths.Length;
        var order = Enumerable.Range(0, count).ToArray();
        random.Shuffle(order);
        int window = batchSize * 50;
        for (int start = 0; start < count; start += window)
        {
            int n = Math.Min(window, count - start);
            var slice = order.Skip(start).Take(n).Select((index, position) => (index, position))
                .OrderBy(p => lengths[p.index]).ThenBy(p => p.position).Select(p => p.index).ToArray();
            slice.CopyTo(order, start);
        }
        var batches = new List<int[]>();
        for (int start = 0; start < count; start += batchSize)
            batches.Add(order[start..Math.Min(count, start + batchSize)]);
        var shuffled = batches.ToArray();
        random.Shuffle(shuffled);
        return shuffled.ToList();
    }
}
