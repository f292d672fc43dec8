using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Layers;

namespace Microsoft.ML.Recurrent.Model;

/// <summary>
/// One prediction per sequence: pooling of the top layer's outputs over each sequence's real steps (final state, mean,
/// max, attention; optionally beside the mean of the stack's input) → dropout → linear (<c>head.weight</c> [O, P],
/// <c>head.bias</c> [O]) → outputs [B, O] in the caller's order. The classifiers' and the regressor's head.
/// </summary>
internal sealed class PooledHead : INetworkHead
{
    private readonly SequencePooling? _pooling;     // FinalState, Mean, Max of the top layer
    private readonly SequencePooling? _inputMean;   // PoolingKind.InputMean: mean of the stack's input
    private readonly AttentionPooling? _attention;  // PoolingKind.Attention
    private readonly Dropout _dropout;
    private readonly Linear _linear;
    private float[] _pooled = [];        // [B, P] sorted order
    private float[] _dPooled = [];       // [B, P]
    private float[] _sorted = [];        // [B, O] sorted order

    /// <param name="parameters">Where the layers register <c>attention.*</c> (attention pooling), <c>head.weight</c> and <c>head.bias</c>.</param>
    /// <param name="pooling">Pooling kinds; at least one of FinalState, Mean, Max and Attention, optionally with InputMean.</param>
    /// <param name="hiddenSize">H per direction.</param>
    /// <param name="directions">D.</param>
    /// <param name="inputSize">I, the stack's input width (for InputMean).</param>
    /// <param name="outputSize">O.</param>
    /// <param name="dropout">Dropout on the pooled vector (training only).</param>
    public PooledHead(ParameterSet parameters, PoolingKind pooling, int hiddenSize, int directions, int inputSize, int outputSize, float dropout)
    {
        const PoolingKind stackKinds = PoolingKind.FinalState | PoolingKind.Mean | PoolingKind.Max;
        if ((pooling & (stackKinds | PoolingKind.Attention)) == 0 || (pooling & ~(stackKinds | PoolingKind.Attention | PoolingKind.InputMean)) != 0)
            throw new ArgumentOutOfRangeException(nameof(pooling), pooling, "Pooling needs at least one of FinalState, Mean, Max and Attention, optionally with InputMean.");
        if ((pooling & stackKinds) != 0)
            _pooling = new SequencePooling(pooling & stackKinds, hiddenSize, directions);
        if ((pooling & PoolingKind.InputMean) != 0)
            _inputMean = new SequencePooling(PoolingKind.Mean, inputSize, 1);
        if ((pooling & PoolingKind.Attention) != 0)
            _attention = new AttentionPooling(parameters, hiddenSize * directions);
        _dropout = new Dropout(dropout);
        _linear = new Linear(parameters, "head.", PooledSize, outputSize);
    }

    /// <summary>
    /// Width P of the pooled vector, pieces in <see cref="PoolingKind"/> order: the pooled recurrent outputs (final
    /// state, mean, max), the input mean, the attention-weighted mean.
    /// </summary>
    private int PooledSize => (_pooling?.OutputSize ?? 0) + (_inputMean?.OutputSize ?? 0) + (_attention?.InputSize ?? 0);

    public bool PerStep => false;

    public int OutputSize => _linear.OutputSize;

    public void Initialize(SeededRandom random)
    {
        _attention?.Initialize(random);
        _linear.Initialize(random);
    }

    /// <summary>The outputs [O] for a sequence with no steps: the linear layer on pooled features of zero — its bias.</summary>
    public void ForwardEmpty(Span<float> outputs) => _linear.ForwardZero(outputs);

    public void Forward(RaggedBatch batch, in SequenceData data, ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> outputs, SeededRandom? dropout)
    {
        int b = batch.BatchSize;
        var pooled = PoolSorted(batch, x, y);
        _dropout.Forward(pooled, pooled, dropout);
        var sorted = Workspace.Ensure(ref _sorted, b * OutputSize);
        _linear.Forward(b, pooled, sorted);
        batch.SortedToOriginal(sorted, OutputSize, outputs);
    }

    /// <summary>Width P of the pooled vector the linear layer reads.</summary>
    public int RepresentationSize => PooledSize;

    /// <summary>The pooled vectors [B, P] (original order, no dropout): the representation the linear layer reads.</summary>
    public void Represent(RaggedBatch batch, ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> pooled) =>
        batch.SortedToOriginal(PoolSorted(batch, x, y), PooledSize, pooled);

    /// <summary>Pools Y (and X for InputMean) into the pooled buffer [B, P], sorted order, each piece in its columns.</summary>
    private Span<float> PoolSorted(RaggedBatch batch, ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        int b = batch.BatchSize, p = PooledSize, column = 0;
        var pooled = Workspace.Ensure(ref _pooled, b * p);
        if (_pooling is not null)
        {
            _pooling.Forward(batch, y, pooled, p, column);
            column += _pooling.OutputSize;
        }
        if (_inputMean is not null)
        {
            _inputMean.Forward(batch, x, pooled, p, column);
            column += _inputMean.OutputSize;
        }
        _attention?.Forward(batch, y, pooled, p, column);
        return pooled;
    }

    public void Backward(RaggedBatch batch, ReadOnlySpan<float> dOutputs, Span<float> dY, Span<float> dX)
    {
        int b = batch.BatchSize, p = PooledSize, column = 0;
        var dSorted = Workspace.Ensure(ref _sorted, b * OutputSize);
        batch.OriginalToSorted(dOutputs, OutputSize, dSorted);
        var dPooled = Workspace.Ensure(ref _dPooled, b * p);
        _linear.Backward(b, _pooled.AsSpan(0, b * p), dSorted, dPooled);
        _dropout.Backward(dPooled, dPooled);
        if (_pooling is not null)
        {
            _pooling.Backward(batch, dPooled, dY, p, column);
            column += _pooling.OutputSize;
        }
        if (_inputMean is not null)
        {
            if (!dX.IsEmpty)
                _inputMean.Backward(batch, dPooled, dX, p, column);
            column += _inputMean.OutputSize;
        }
        _attention?.Backward(batch, dPooled, p, column, dY);
    }
}
