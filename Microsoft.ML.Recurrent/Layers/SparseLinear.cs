using Microsoft.ML.Recurrent.Core;

namespace Microsoft.ML.Recurrent.Layers;

/// <summary>
/// The wide part of a wide &amp; deep head (Cheng et al. 2016): y [B, O] += x [B, F] · Wᵀ for a large, sparse x (for
/// example ML.NET's <c>FeaturizeText</c> n-gram counts), W = <c>{prefix}weight</c> [O, F], no bias (the deep head's bias
/// serves both). x is never densified: forward and backward touch only its stored entries, O values each.
/// </summary>
internal sealed class SparseLinear
{
    private readonly ParameterSet _parameters;
    private readonly Parameter _weight;
    private readonly Dropout _dropout;      // on the stored entries (training only)
    private float[] _dropped = [];          // the last forward's entry values after dropout
    private bool _droppedLast;              // whether the last forward dropped entries

    /// <summary>Input width F.</summary>
    public int InputSize { get; }

    /// <summary>Output width O.</summary>
    public int OutputSize { get; }

    /// <summary>Registers <c>{prefix}weight</c> [O, F]; <paramref name="dropout"/> drops stored entries in training.</summary>
    public SparseLinear(ParameterSet parameters, string prefix, int inputSize, int outputSize, float dropout = 0f)
    {
        _dropout = new Dropout(dropout);
        if (inputSize <= 0) throw new ArgumentOutOfRangeException(nameof(inputSize), inputSize, "The input size must be positive.");
        _parameters = parameters;
        InputSize = inputSize;
        OutputSize = outputSize;
        _weight = parameters.Register($"{prefix}weight", outputSize, inputSize);
    }

    /// <summary>
    /// Zeros: the network starts as its deep part alone, and the wide weights grow from nothing as a linear model's do
    /// (which also keeps the initialization independent of F).
    /// </summary>
    public void Initialize() => _parameters.Value(_weight).Clear();

    /// <summary>
    /// y [B, O] += x · Wᵀ, x given as B rows of (column, value) entries: row b's entries are
    /// [<paramref name="starts"/>[b], <paramref name="starts"/>[b + 1]).
    /// </summary>
    public void Forward(ReadOnlySpan<int> starts, ReadOnlySpan<int> indices, ReadOnlySpan<float> values, Span<float> y, SeededRandom? dropout = null)
    {
        int o = OutputSize, f = InputSize;
        _droppedLast = dropout is not null && _dropout.Probability > 0;
        if (_droppedLast)
        {
            // Inverted dropout on the entries (implicit zeros stay zero); the backward pass reads the same values.
            var dropped = Workspace.Ensure(ref _dropped, values.Length);
            _dropout.Forward(values, dropped, dropout);
            values = dropped;
        }
        ReadOnlySpan<float> w = _parameters.Value(_weight);
        for (int b = 0; b + 1 < starts.Length; b++)
        {
            var row = y.Slice(b * o, o);
            for (int k = starts[b]; k < starts[b + 1]; k++)
            {
                int i = indices[k];
                if ((uint)i >= (uint)f) throw new ArgumentOutOfRangeException(nameof(indices), i, $"Wide feature index {i} is outside [0, {f}).");
                float v = values[k];
                for (int c = 0; c < o; c++) row[c] += v * w[c * f + i];
            }
        }
    }

    /// <summary>dW [O, F] += dyᵀ · x, at x's stored entries only (a sparse gradient), x as the last forward saw it (after dropout).</summary>
    public void Backward(ReadOnlySpan<int> starts, ReadOnlySpan<int> indices, ReadOnlySpan<float> values, ReadOnlySpan<float> dy)
    {
        int o = OutputSize, f = InputSize;
        if (_droppedLast) values = _dropped.AsSpan(0, values.Length);
        var dw = _parameters.Gradient(_weight);
        for (int b = 0; b + 1 < starts.Length; b++)
        {
            var row = dy.Slice(b * o, o);
            for (int k = starts[b]; k < starts[b + 1]; k++)
            {
                int i = indices[k];
                float v = values[k];
                for (int c = 0; c < o; c++) dw[c * f + i] += v * row[c];
            }
        }
    }
}
