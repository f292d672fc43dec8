using Microsoft.ML.Recurrent.Core;

namespace Microsoft.ML.Recurrent.Model;

/// <summary>
/// The piece after the recurrent stack: reads the stack's packed output Y [N, D·H] (and its input X [N, I], for heads
/// that look at it) and writes the network's outputs in the caller's order — one row per sequence [B, O] for a pooled
/// head, one row per step [Σ lengths, O] for a per-step head. Backward adds into dY (and dX) and into its parameters.
/// </summary>
internal interface INetworkHead
{
    /// <summary>Whether it outputs a row per step (true) or per sequence (false).</summary>
    bool PerStep { get; }

    /// <summary>Width O of each output row.</summary>
    int OutputSize { get; }

    /// <summary>Seeded initialization of its parameters, in registration order.</summary>
    void Initialize(SeededRandom random);

    /// <summary>
    /// Writes the outputs (original order); <paramref name="dropout"/> non-null enables training-time dropout.
    /// <paramref name="data"/> is the batch's input (a forecast head reads its per-sequence values).
    /// </summary>
    void Forward(RaggedBatch batch, in SequenceData data, ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> outputs, SeededRandom? dropout);

    /// <summary>
    /// For dOutputs (layout of the outputs) of the last forward: adds into <paramref name="dY"/> [N, D·H] and, when not
    /// empty, into <paramref name="dX"/> [N, I], and into its parameter gradients.
    /// </summary>
    void Backward(RaggedBatch batch, ReadOnlySpan<float> dOutputs, Span<float> dY, Span<float> dX);
}
