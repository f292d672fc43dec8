using Microsoft.ML.Recurrent.Core;

namespace Microsoft.ML.Recurrent.Model;

/// <summary>
/// The piece in front of the recurrent stack: turns a batch's <see cref="SequenceData"/> into the stack's packed
/// input X [N, I] (time-major, <see cref="RaggedBatch"/> order), and back-propagates dX into its own parameters.
/// Implementations register their parameters in the network's <see cref="ParameterSet"/> when constructed.
/// </summary>
internal interface INetworkInput
{
    /// <summary>Width I of the packed input it produces.</summary>
    int OutputSize { get; }

    /// <summary>Whether it has parameters, so the network must compute dX for it.</summary>
    bool HasParameters { get; }

    /// <summary>Seeded initialization of its parameters, in registration order.</summary>
    void Initialize(SeededRandom random);

    /// <summary>Writes X [N, I]; <paramref name="dropout"/> non-null enables training-time dropout.</summary>
    void Forward(RaggedBatch batch, in SequenceData data, Span<float> x, SeededRandom? dropout);

    /// <summary>Adds the parameter gradients for dX [N, I] of the last forward (dX may be overwritten).</summary>
    void Backward(RaggedBatch batch, in SequenceData data, Span<float> dX);
}
