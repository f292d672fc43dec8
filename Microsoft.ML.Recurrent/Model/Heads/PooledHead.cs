using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Layers;

namespace Microsoft.ML.Recurrent.Model;

/// <summary>
/// One prediction per sequence: pooling of the top layer's outputs over each sequence's real steps (final state, mean,
/// max; optionally beside the mean of the stack's input) → dropout → linear (<c>head.weight</c> [O, P],
/// <c>head.bias</c> [O]) → outputs [B, O] in the caller's order. The classifiers' and the regressor's head.
/// </summary>
internal sealed class PooledHead : INetworkHead
{
    private readonly SequencePooling _pooling;
    private readonly SequencePooling? _inputMean;   // PoolingKind.InputMean: mean of the stack's input
    private readonly Dropout _dropout;
    private readonly Linear _linear;
    private float[] _pooledStack = [];   // [B, P_stack]
    private float[] _pooledInput = [];   // [B, I]
    private float[] _pooled = [];        // [B, P] sorted order
    private float[] _dPooled = [];       // [B, P]
    private float[] _sorted = [];        // [B, O] sorted order

    /// <param name="parameters">Where the linear layer registers <c>head.weight</c> and <c>head.bias</c>.</param>
    /// <param name="pooling">Pooling kinds; at least one of FinalState, Mean and Max, optionally with InputMean.</param>
    /// <param name="hiddenSize">H per direction.</param>
    /// <param name="directions">D.</param>
    /// <param name="inputSize">I, the stack's input width (for InputMean).</param>
    /// <param name="outputSize">O.</param>
    /// <param name="dropout">Dropout on the pooled vector (training only).</param>
    public PooledHead(ParameterSet parameters, PoolingKind pooling, int hiddenSize, int directions, int inputSize, int outputSize, float dropout)
    {
        var stackPooling = pooling & ~PoolingKind.InputMean;
        if (stackPooling == 0)
            throw new ArgumentOutOfRangeException(nameof(pooling), pooling, "Pooling needs at least one of FinalState, Mean and Max besides InputMean.");
        _pooling = new SequencePooling(stackPooling, hiddenSize, directions);
        if ((pooling & PoolingKind.InputMean) != 0)
            _inputMean = new SequencePooling(PoolingKind.Mean, inputSize, 1);
        _dropout = new Dropout(dropout);
        _linear = new Linear(parameters, "head.", PooledSize, outputSize);
    }

    /// <summary>Width P of the pooled vector: the pooled recurrent outputs, then the input mean when requested.</summary>
    private int PooledSize => _pooling.OutputSize + (_inputMean?.OutputSize ?? 0);

    public bool PerStep => false;

    public int OutputSize => _linear.OutputSize;

    public void Initialize(SeededRandom random) => _linear.Initialize(random);

    /// <summary>The outputs [O] for a sequence with no steps: the linear layer on pooled features of zero — its bias.</summary>
    public void ForwardEmpty(Span<float> outputs) => _linear.ForwardZero(outputs);

    public void Forward(RaggedBatch batch, ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> outputs, SeededRandom? dropout)
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

    /// <summary>Pools Y (and X for InputMean) into the pooled buffer [B, P], sorted order.</summary>
    private Span<float> PoolSorted(RaggedBatch batch, ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        int b = batch.BatchSize, p = PooledSize;
        var pooled = Workspace.Ensure(ref _pooled, b * p);
        if (_inputMean is null)
        {
            _pooling.Forward(batch, y, pooled);
            return pooled;
        }
        // pooled[j] = [pool(Y)[j] | mean(X)[j]]
        int ps = _pooling.OutputSize, pi = _inputMean.OutputSize;
        var fromStack = Workspace.Ensure(ref _pooledStack, b * ps);
        var fromInput = Workspace.Ensure(ref _pooledInput, b * pi);
        _pooling.Forward(batch, y, fromStack);
        _inputMean.Forward(batch, x, fromInput);
        for (int j = 0; j < b; j++)
        {
            fromStack.Slice(j * ps, ps).CopyTo(pooled.Slice(j * p, ps));
            fromInput.Slice(j * pi, pi).CopyTo(pooled.Slice(j * p + ps, pi));
        }
        return pooled;
    }

    public void Backward(RaggedBatch batch, ReadOnlySpan<float> dOutputs, Span<float> dY, Span<float> dX)
    {
        int b = batch.BatchSize, p = PooledSize;
        var dSorted = Workspace.Ensure(ref _sorted, b * OutputSize);
        batch.OriginalToSorted(dOutputs, OutputSize, dSorted);
        var dPooled = Workspace.Ensure(ref _dPooled, b * p);
        _linear.Backward(b, _pooled.AsSpan(0, b * p), dSorted, dPooled);
        _dropout.Backward(dPooled, dPooled);
        if (_inputMean is null)
        {
            _pooling.Backward(batch, dPooled, dY);
            return;
        }
        int ps = _pooling.OutputSize, pi = _inputMean.OutputSize;
        var dFromStack = Workspace.Ensure(ref _pooledStack, b * ps);
        var dFromInput = Workspace.Ensure(ref _pooledInput, b * pi);
        for (int j = 0; j < b; j++)
        {
            dPooled.Slice(j * p, ps).CopyTo(dFromStack.Slice(j * ps, ps));
            dPooled.Slice(j * p + ps, pi).CopyTo(dFromInput.Slice(j * pi, pi));
        }
        _pooling.Backward(batch, dFromStack, dY);
        if (!dX.IsEmpty)
            _inputMean.Backward(batch, dFromInput, dX);
    }
}
