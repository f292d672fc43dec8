using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Layers;

namespace Microsoft.ML.Recurrent.Model;

/// <summary>
/// One prediction per step: dropout on the top layer's outputs → linear (<c>head.weight</c> [O, D·H],
/// <c>head.bias</c> [O]) at every packed step → outputs [Σ lengths, O], the sequences concatenated in the caller's
/// order (the tagger's emission scores).
/// </summary>
internal sealed class PerStepHead : INetworkHead
{
    private readonly Dropout _dropout;
    private readonly Linear _linear;
    private float[] _dropped = [];   // [N, D·H] Y after dropout
    private float[] _packed = [];    // [N, O] outputs (forward) or dOutputs (backward), packed order
    private float[] _dDropped = [];  // [N, D·H]

    /// <param name="parameters">Where the linear layer registers <c>head.weight</c> and <c>head.bias</c>.</param>
    /// <param name="stackOutputSize">D·H.</param>
    /// <param name="outputSize">O (tags).</param>
    /// <param name="dropout">Dropout on the stack's outputs (training only).</param>
    public PerStepHead(ParameterSet parameters, int stackOutputSize, int outputSize, float dropout)
    {
        _dropout = new Dropout(dropout);
        _linear = new Linear(parameters, "head.", stackOutputSize, outputSize);
    }

    public bool PerStep => true;

    public int OutputSize => _linear.OutputSize;

    public void Initialize(SeededRandom random) => _linear.Initialize(random);

    public void Forward(RaggedBatch batch, ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> outputs, SeededRandom? dropout)
    {
        int n = batch.TotalSteps, w = _linear.InputSize, o = OutputSize;
        var dropped = Workspace.Ensure(ref _dropped, n * w);
        _dropout.Forward(y.Slice(0, n * w), dropped, dropout);
        var packed = Workspace.Ensure(ref _packed, n * o);
        _linear.Forward(n, dropped, packed);
        batch.Unpack(packed, o, outputs);
    }

    public void Backward(RaggedBatch batch, ReadOnlySpan<float> dOutputs, Span<float> dY, Span<float> dX)
    {
        int n = batch.TotalSteps, w = _linear.InputSize, o = OutputSize;
        var dPacked = Workspace.Ensure(ref _packed, n * o);
        batch.Pack(dOutputs, o, dPacked);
        var dDropped = Workspace.Ensure(ref _dDropped, n * w);
        _linear.Backward(n, _dropped.AsSpan(0, n * w), dPacked, dDropped);
        _dropout.Backward(dDropped, dDropped);
        System.Numerics.Tensors.TensorPrimitives.Add(dY.Slice(0, n * w), dDropped, dY.Slice(0, n * w));
    }
}
