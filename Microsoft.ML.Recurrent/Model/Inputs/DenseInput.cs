using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Layers;

namespace Microsoft.ML.Recurrent.Model;

/// <summary>Dense per-step features [Σ lengths, F] (original order) → packed → dropout: X [N, F]. No parameters.</summary>
internal sealed class DenseInput(int featuresPerStep, float dropout) : INetworkInput
{
    private readonly Dropout _dropout = new(dropout);

    public int OutputSize => featuresPerStep;

    public bool HasParameters => false;

    public void Initialize(SeededRandom random)
    {
    }

    public void Forward(RaggedBatch batch, in SequenceData data, Span<float> x, SeededRandom? dropout)
    {
        batch.Pack(data.Features, featuresPerStep, x);
        _dropout.Forward(x, x, dropout);
    }

    public void Backward(RaggedBatch batch, in SequenceData data, Span<float> dX)
    {
    }
}
