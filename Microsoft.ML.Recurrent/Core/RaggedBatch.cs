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
    private int[] _lengths = [], _order = [], _sortedLengths = [], _stepSizes = [], _stepOffsets = [], _sequenceStarts = [];

    /// <summary>Number of sequences B.</summary>
    public int BatchSize { get; private set; }

    /// <summary>Longest length T.</summary>
    public int MaxLength { get; private set; }

    /// <summary>Σ lengths = number of packed rows N.</summary>
    public int TotalSteps { get; private set; }

    /// <summary>Lengths in the caller's (original) order, [B].</summary>
    public ReadOnlySpan<int> Lengths => _lengths.AsSpan(0, BatchSize);

    /// <summary>Order[j] = original index of the j-th longest sequence, [B].</summary>
    public ReadOnlySpan<int> Order => _order.AsSpan(0, BatchSize);

    /// <summary>Lengths in sorted order (non-increasing), [B].</summary>
    public ReadOnlySpan<int> SortedLengths => _sortedLengths.AsSpan(0, BatchSize);

    /// <summary>b_t = number of sequences longer than t, [T], non-increasing.</summary>
    public ReadOnlySpan<int> StepSizes => _stepSizes.AsSpan(0, MaxLength);

    /// <summary>o_t = first packed row of time step t, [T + 1]; o_T = TotalSteps.</summary>
    public ReadOnlySpan<int> StepOffsets => _stepOffsets.AsSpan(0, MaxLength + 1);

    /// <summary>Start of each original sequence in a flat, concatenated token array, [B + 1].</summary>
    public ReadOnlySpan<int> SequenceStarts => _sequenceStarts.AsSpan(0, BatchSize + 1);

    /// <summary>Builds the layout for the given lengths (original order).</summary>
    /// <exception cref="ArgumentException">The batch is empty or a length is not positive.</exception>
    public RaggedBatch(ReadOnlySpan<int> lengths) => Reset(lengths);

    /// <summary>
    /// Makes this the layout of <paramref name="lengths"/>, reusing the arrays of the previous layout when they are
    /// large enough (a scorer that keeps one batch allocates nothing per call once it has seen its longest batch).
    /// </summary>
    /// <exception cref="ArgumentException">The batch is empty or a length is not positive.</exception>
    public void Reset(ReadOnlySpan<int> lengths)
    {
        if (lengths.Length == 0)
            throw new ArgumentException("A batch must hold at least one sequence.", nameof(lengths));
        int b = lengths.Length;
        long total = 0;
        int maxLength = 0;
        for (int i = 0; i < b; i++)
        {
            int len = lengths[i];
            if (len <= 0)
                throw new ArgumentException($"Sequence {i} of the batch has length {len}; every sequence needs at least one step.", nameof(lengths));
            total += len;
            if (total > int.MaxValue)
                throw new ArgumentException("The batch holds more than int.MaxValue steps in total.", nameof(lengths));
            maxLength = Math.Max(maxLength, len);
        }
        Grow(ref _lengths, b);
        Grow(ref _order, b);
        Grow(ref _sortedLengths, b);
        Grow(ref _sequenceStarts, b + 1);
        Grow(ref _stepSizes, maxLength);
        Grow(ref _stepOffsets, maxLength + 1);
        BatchSize = b;
        MaxLength = maxLength;
        TotalSteps = (int)total;
        lengths.CopyTo(_lengths);
        _sequenceStarts[0] = 0;
        for (int i = 0; i < b; i++)
            _sequenceStarts[i + 1] = _sequenceStarts[i] + lengths[i];

        // Stable sort by length, descending: insertion sort keeps ties in original order and batches are small.
        for (int i = 0; i < b; i++)
        {
            int j = i;
            while (j > 0 && _lengths[_order[j - 1]] < _lengths[i])
            {
                _order[j] = _order[j - 1];
                j--;
            }
            _order[j] = i;
        }
        for (int j = 0; j < b; j++)
            _sortedLengths[j] = _lengths[_order[j]];

        _stepOffsets[0] = 0;
        int active = b;
        for (int t = 0; t < maxLength; t++)
        {
            while (_sortedLengths[active - 1] <= t)
                active--;
            _stepSizes[t] = active;
            _stepOffsets[t + 1] = _stepOffsets[t] + active;
        }
    }

    private static void Grow(ref int[] array, int length)
    {
        if (array.Length < length)
            array = new int[length];
    }

    /// <summary>Packed row of sorted sequence <paramref name="j"/> at time <paramref name="t"/> (t &lt; its length).</summary>
    public int Row(int t, int j) => _stepOffsets[t] + j;

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
