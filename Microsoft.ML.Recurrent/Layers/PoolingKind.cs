namespace Microsoft.ML.Recurrent;

/// <summary>
/// How a sequence of recurrent outputs becomes one feature vector. Several may be combined; the pieces are concatenated
/// in the order listed here. The numeric values are written to model files: never change or reuse them.
/// </summary>
[Flags]
public enum PoolingKind
{
    /// <summary>The final states: forward direction at the sequence's last real step, reverse direction at its first step (PyTorch's h_n of the top layer).</summary>
    FinalState = 1,
    /// <summary>Mean of the outputs over the sequence's real steps.</summary>
    Mean = 2,
    /// <summary>Element-wise maximum of the outputs over the sequence's real steps.</summary>
    Max = 4,
    /// <summary>
    /// Mean of the network's <em>inputs</em> (the token embeddings, or the dense features) over the real steps: a
    /// bag-of-words path beside the recurrent states. Combine it with at least one of the other kinds.
    /// </summary>
    InputMean = 8,
    /// <summary>
    /// Attention pooling: a learned, softmax-weighted mean of the outputs over the sequence's real steps, weights
    /// α_t = softmax(c · tanh(W·y_t + b)) (Yang et al. 2016). Adds W·W + 2·W parameters (W = the top layer's width).
    /// </summary>
    Attention = 16,
}
