namespace Microsoft.ML.Recurrent.Core;

/// <summary>
/// The layout of a batch of variable-length sequences in packed, time-major form — the same idea as PyTorch's
/// <c>PackedSequence</c>. Sequences are sorted by length, longest first (ties keep their original order), so the
/// sequences still running at time step t are always a prefix of the sorted batch:
/// <code>
///   lengths (original order) = [3, 6, 1, 4]      Order (sorted → original) = [1, 3, 0, 2]
///   sorted lengths           = [6, 4, 3, 1]
///   StepSizes  b_t           = [4, 3, 3, 2, 1, 1]  (sequences with length > t)
///   StepOffsets o_t          = [0, 4, 7, 10, 12, 13, 14]   (o_T = TotalSteps = 14 = Σ lengths)
///   packed row of (sorted sequence j, time t) = o_t + j,  valid when j &lt; b_t
/// </code>
/// Every layer works on packed matrices [TotalSteps, features]; padding never exists inside the network, so no
/// work is spent on it and no token id has to be reserved for it.
/// </summary>
internal sealed class RaggedBatch
{
    /// <summary>Number of sequences B.</summary>
    public int BatchSize { get; }

    /// <summary>Longest length T.</summary>
    public int MaxLength { get; }

    /// <summary>Σ lengths = number of packed rows N.</summary>
    public int TotalSteps { get; }

    /// <summary>Lengths in the caller's (original) order, [B].</summary>
    public int[] Lengths { get; }

    /// <summary>Order[j] = original index of the j-th longest sequence, [B].</summary>
    public int[] Order { get; }

    /// <summary>Lengths in sorted order (non-increasing), [B].</summary>
    public int[] SortedLengths { get; }

    /// <summary>b_t = number of sequences longer than t, [T], non-increasing.</summary>
    public int[] StepSizes { get; }

    /// <summary>o_t = first packed row of time step t, [T + 1]; o_T = TotalSteps.</summary>
    public int[] StepOffsets { get; }

    /// <summary>Start of each original sequence in a flat, concatenated token array, [B + 1].</summary>
    public int[] SequenceStarts { get; }

    /// <summary>Builds the layout for the given lengths (original order).</summary>
    /// <exception cref="ArgumentException">The batch is empty or a length is not positive.</exception>
    public RaggedBatch(ReadOnlySpan<int> lengths)
    {
        if (lengths.Length == 0)
            throw new ArgumentException("A batch must hold at least one sequence.", nameof(lengths));
        int b = lengths.Length;
        Lengths = lengths.ToArray();
        SequenceStarts = new int[b + 1];
        long total = 0;
        int maxLength = 0;
        for (int i = 0; i < b; i++)
        {
            int len = Lengths[i];
            if (len <= 0)
                throw new ArgumentException($"Sequence {i} of the batch has length {len}; every sequence needs at least one step.", nameof(lengths));
            SequenceStarts[i] = (int)total;
            total += len;
            if (total > int.MaxValue)
                throw new ArgumentException("The batch holds more than int.MaxValue steps in total.", nameof(lengths));
            maxLength = Math.Max(maxLength, len);
        }
        SequenceStarts[b] = (int)total;
        BatchSize = b;
        MaxLength = maxLength;
        TotalSteps = (int)total;

        // Stable sort by length, descending: insertion sort keeps ties in original order and batches are small.
        Order = new int[b];
        for (int i = 0; i < b; i++)
        {
            int j = i;
            while (j > 0 && Lengths[Order[j - 1]] < Lengths[i])
            {
                Order[j] = Order[j - 1];
                j--;
            }
            Order[j] = i;
        }
        SortedLengths = new int[b];
        for (int j = 0; j < b; j++)
            SortedLengths[j] = Lengths[Order[j]];

        StepSizes = new int[maxLength];
        StepOffsets = new int[maxLength + 1];
        int active = b;
        for (int t = 0; t < maxLength; t++)
        {
            while (SortedLengths[active - 1] <= t)
                active--;
            StepSizes[t] = active;
            StepOffsets[t + 1] = StepOffsets[t] + active;
        }
    }

    /// <summary>Packed row of sorted sequence <paramref name="j"/> at time <paramref name="t"/> (t &lt; its length).</summary>
    public int Row(int t, int j) => StepOffsets[t] + j;

    /// <summary>
    /// Copies a flat, concatenated per-sequence array (original order; sequence i occupies
    /// [SequenceStarts[i]·F, SequenceStarts[i+1]·F)) into packed layout [N, F].
    /// </summary>
    public void Pack(ReadOnlySpan<float> concatenated, int features, Span<float> packed)
    {
        for (int j = 0; j < BatchSize; j++)
        {
            int start = SequenceStarts[Order[j]];
            for (int t = 0; t < SortedLengths[j]; t++)
                concatenated.Slice((start + t) * features, features).CopyTo(packed.Slice(Row(t, j) * features, features));
        }
    }

    /// <summary>Copies packed rows [N, F] back to the flat concatenated per-sequence layout (original order).</summary>
    public void Unpack(ReadOnlySpan<float> packed, int features, Span<float> concatenated)
    {
        for (int j = 0; j < BatchSize; j++)
        {
            int start = SequenceStarts[Order[j]];
            for (int t = 0; t < SortedLengths[j]; t++)
                packed.Slice(Row(t, j) * features, features).CopyTo(concatenated.Slice((start + t) * features, features));
        }
    }

    /// <summary>Packs a padded batch-first tensor [B, T', F] (T' ≥ T, original order) into [N, F].</summary>
    public void PackPadded(ReadOnlySpan<float> padded, int paddedLength, int features, Span<float> packed)
    {
        for (int j = 0; j < BatchSize; j++)
        {
            int i = Order[j];
            for (int t = 0; t < SortedLengths[j]; t++)
                padded.Slice((i * paddedLength + t) * features, features).CopyTo(packed.Slice(Row(t, j) * features, features));
        }
    }

    /// <summary>Unpacks [N, F] into a padded batch-first tensor [B, T', F] (original order), zeros at padded steps.</summary>
    public void UnpackPadded(ReadOnlySpan<float> packed, int paddedLength, int features, Span<float> padded)
    {
        padded.Slice(0, BatchSize * paddedLength * features).Clear();
        for (int j = 0; j < BatchSize; j++)
        {
            int i = Order[j];
            for (int t = 0; t < SortedLengths[j]; t++)
                packed.Slice(Row(t, j) * features, features).CopyTo(padded.Slice((i * paddedLength + t) * features, features));
        }
    }

    /// <summary>Reorders rows [B, F] from sorted order to original order.</summary>
    public void SortedToOriginal(ReadOnlySpan<float> sorted, int features, Span<float> original)
    {
        for (int j = 0; j < BatchSize; j++)
            sorted.Slice(j * features, features).CopyTo(original.Slice(Order[j] * features, features));
    }

    /// <summary>Reorders rows [B, F] from original order to sorted order.</summary>
    public void OriginalToSorted(ReadOnlySpan<float> original, int features, Span<float> sorted)
    {
        for (int j = 0; j < BatchSize; j++)
            original.Slice(Order[j] * features, features).CopyTo(sorted.Slice(j * features, features));
    }
}
