using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Layers;

namespace Microsoft.ML.Recurrent.Model;

/// <summary>Token ids → embedding rows (<c>embedding.weight</c> [V, E]) → dropout: X [N, E].</summary>
internal sealed class TokenInput : INetworkInput
{
    private readonly Embedding _embedding;
    private readonly Dropout _dropout;

    public TokenInput(ParameterSet parameters, int vocabularySize, int embeddingSize, int paddingId, float dropout)
    {
        _embedding = new Embedding(parameters, "embedding.", vocabularySize, embeddingSize, paddingId);
        _dropout = new Dropout(dropout);
    }

    public int OutputSize => _embedding.Dimension;

    /// <summary>The embedding's weight [V, E] (what a tied output layer reads).</summary>
    public Parameter EmbeddingWeight => _embedding.Weight;

    public bool HasParameters => true;

    public void Initialize(SeededRandom random) => _embedding.Initialize(random);

    public void Forward(RaggedBatch batch, in SequenceData data, Span<float> x, SeededRandom? dropout)
    {
        _embedding.Forward(batch, data.Tokens, x);
        _dropout.Forward(x, x, dropout);
    }

    public void Backward(RaggedBatch batch, in SequenceData data, Span<float> dX)
    {
        _dropout.Backward(dX, dX);
        _embedding.Backward(batch, data.Tokens, dX);
    }
}
