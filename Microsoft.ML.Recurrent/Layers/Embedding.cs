using Microsoft.ML.Recurrent.Core;

namespace Microsoft.ML.Recurrent.Layers;

/// <summary>
/// Token ids → vectors. weight [V, E] (PyTorch <c>nn.Embedding.weight</c>). Every id in [0, V) is a real token —
/// ragged batches carry explicit lengths, so no id has to be reserved for padding. An optional
/// <see cref="PaddingId"/> behaves like PyTorch's <c>padding_idx</c>: its row receives no gradient.
/// </summary>
internal sealed class Embedding
{
    private readonly ParameterSet _parameters;
    private readonly Parameter _weight;

    /// <summary>The weight [V, E].</summary>
    public Parameter Weight => _weight;

    /// <summary>Vocabulary size V.</summary>
    public int VocabularySize { get; }

    /// <summary>Vector width E.</summary>
    public int Dimension { get; }

    /// <summary>Id whose row gets no gradient, or −1 for none.</summary>
    public int PaddingId { get; }

    /// <summary>Registers <c>{prefix}weight</c> [V, E].</summary>
    public Embedding(ParameterSet parameters, string prefix, int vocabularySize, int dimension, int paddingId = -1)
    {
        if (vocabularySize <= 0) throw new ArgumentOutOfRangeException(nameof(vocabularySize), vocabularySize, "The vocabulary size must be positive.");
        if (dimension <= 0) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "The embedding size must be positive.");
        if (paddingId < -1 || paddingId >= vocabularySize) throw new ArgumentOutOfRangeException(nameof(paddingId), paddingId, "The padding id must be −1 (none) or a valid id.");
        _parameters = parameters;
        VocabularySize = vocabularySize;
        Dimension = dimension;
        PaddingId = paddingId;
        _weight = parameters.Register($"{prefix}weight", vocabularySize, dimension);
    }

    /// <summary>PyTorch's default: N(0, 1); the padding row is zero.</summary>
    public void Initialize(SeededRandom random)
    {
        var w = _parameters.Value(_weight);
        random.FillNormal(w, 1f);
        if (PaddingId >= 0)
            w.Slice(PaddingId * Dimension, Dimension).Clear();
    }

    /// <summary>Throws a clear <see cref="ArgumentOutOfRangeException"/> naming the sequence, position and value of the first invalid id.</summary>
    public void Validate(RaggedBatch batch, ReadOnlySpan<int> tokens)
    {
        if (tokens.Length < batch.TotalSteps)
            throw new ArgumentException($"The batch has {batch.TotalSteps} steps but only {tokens.Length} token ids were given.", nameof(tokens));
        for (int i = 0; i < batch.BatchSize; i++)
            for (int t = batch.SequenceStarts[i]; t < batch.SequenceStarts[i + 1]; t++)
                if ((uint)tokens[t] >= (uint)VocabularySize)
                    throw new ArgumentOutOfRangeException(nameof(tokens), tokens[t],
                        $"Token id {tokens[t]} at position {t - batch.SequenceStarts[i]} of sequence {i} is outside the vocabulary [0, {VocabularySize}).");
    }

    /// <summary>tokens: ids of all sequences concatenated in original order. output: packed [N, E].</summary>
    public void Forward(RaggedBatch batch, ReadOnlySpan<int> tokens, Span<float> output)
    {
        Validate(batch, tokens);
        var w = _parameters.Value(_weight);
        int e = Dimension;
        for (int j = 0; j < batch.BatchSize; j++)
        {
            int start = batch.SequenceStarts[batch.Order[j]];
            for (int t = 0; t < batch.SortedLengths[j]; t++)
                w.Slice(tokens[start + t] * e, e).CopyTo(output.Slice(batch.Row(t, j) * e, e));
        }
    }

    /// <summary>dWeight[id] += dOutput[row] for every packed row (except the padding id).</summary>
    public void Backward(RaggedBatch batch, ReadOnlySpan<int> tokens, ReadOnlySpan<float> dOutput)
    {
        var dw = _parameters.Gradient(_weight);
        int e = Dimension;
        for (int j = 0; j < batch.BatchSize; j++)
        {
            int start = batch.SequenceStarts[batch.Order[j]];
            for (int t = 0; t < batch.SortedLengths[j]; t++)
            {
                int id = tokens[start + t];
                if (id == PaddingId) continue;
                var row = dw.Slice(id * e, e);
                System.Numerics.Tensors.TensorPrimitives.Add(row, dOutput.Slice(batch.Row(t, j) * e, e), row);
            }
        }
    }
}
