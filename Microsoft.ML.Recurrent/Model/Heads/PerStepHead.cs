using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Layers;

namespace Microsoft.ML.Recurrent.Model;

/// <summary>
/// One prediction per step: dropout on the top layer's outputs → linear (<c>head.weight</c> [O, D·H],
/// <c>head.bias</c> [O]) at every packed step → outputs [Σ lengths, O], the sequences concatenated in the caller's
/// order (the tagger's emission scores). Optionally a linear-chain CRF over them (<c>crf.start_transitions</c>,
/// <c>crf.end_transitions</c>, <c>crf.transitions</c>): its sequence loss for training and Viterbi decoding.
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
    /// <param name="crf">Whether a CRF scores the tag sequences.</param>
    /// <param name="constraints">The CRF's allowed transitions, or null for none.</param>
    /// <param name="tiedWeight">
    /// For a language model with weight tying: the input embedding [V, E] used as the output layer's weight (then
    /// <paramref name="outputSize"/> = V and <paramref name="stackOutputSize"/> = E, and only <c>head.bias</c> is registered); or null.
    /// </param>
    public PerStepHead(ParameterSet parameters, int stackOutputSize, int outputSize, float dropout, bool crf = false, CrfConstraints? constraints = null,
        Parameter? tiedWeight = null)
    {
        _dropout = new Dropout(dropout);
        if (tiedWeight is not null && (tiedWeight.Shape[0] != outputSize || tiedWeight.Shape[1] != stackOutputSize))
            throw new ArgumentException($"Weight tying needs the embedding [{outputSize}, {stackOutputSize}]; '{tiedWeight.Name}' is [{string.Join(", ", tiedWeight.Shape)}].", nameof(tiedWeight));
        _linear = tiedWeight is null ? new Linear(parameters, "head.", stackOutputSize, outputSize) : new Linear(parameters, "head.", tiedWeight);
        if (crf)
            Crf = new LinearChainCrf(parameters, "crf.", outputSize, constraints);
    }

    /// <summary>The output layer (its weight is the embedding's when tied).</summary>
    public Linear Output => _linear;

    /// <summary>The CRF over the emissions, or null.</summary>
    public LinearChainCrf? Crf { get; }

    private float[] _crfEmissions = [], _crfDEmissions = [];
    private int[] _crfTags = [];

    /// <summary>
    /// The CRF's negative log-likelihood of <paramref name="tags"/> [Σ lengths] given <paramref name="emissions"/>
    /// [Σ lengths, O] (both in the caller's order), summed over the sequences; writes dEmissions (caller's order,
    /// times <paramref name="gradientScale"/>) and adds the CRF's parameter gradients (times the scale).
    /// </summary>
    public float CrfLoss(RaggedBatch batch, ReadOnlySpan<float> emissions, ReadOnlySpan<int> tags, Span<float> dEmissions, float gradientScale)
    {
        var crf = Crf ?? throw new InvalidOperationException("This head has no CRF.");
        int n = batch.TotalSteps, o = OutputSize;
        var packed = Workspace.Ensure(ref _crfEmissions, n * o);
        var dPacked = Workspace.Ensure(ref _crfDEmissions, n * o);
        var packedTags = Workspace.Ensure(ref _crfTags, n);
        batch.Pack(emissions, o, packed);
        // Tags are one int per step: pack them through the same layout.
        for (int j = 0; j < batch.BatchSize; j++)
        {
            int start = batch.SequenceStarts[batch.Order[j]];
            for (int t = 0; t < batch.SortedLengths[j]; t++)
                packedTags[batch.Row(t, j)] = tags[start + t];
        }
        float loss = crf.Forward(batch, packed, packedTags, dPacked, gradientScale);
        batch.Unpack(dPacked, o, dEmissions);
        return loss;
    }

    /// <summary>The most likely tags [Σ lengths] (caller's order): Viterbi through the CRF, or each step's best score.</summary>
    public void Decode(RaggedBatch batch, ReadOnlySpan<float> emissions, Span<int> tags)
    {
        int n = batch.TotalSteps, o = OutputSize;
        if (Crf is null)
        {
            for (int r = 0; r < n; r++)
                tags[r] = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(emissions.Slice(r * o, o));
            return;
        }
        var packed = Workspace.Ensure(ref _crfEmissions, n * o);
        var packedTags = Workspace.Ensure(ref _crfTags, n);
        batch.Pack(emissions, o, packed);
        Crf.Decode(batch, packed, packedTags);
        for (int j = 0; j < batch.BatchSize; j++)
        {
            int start = batch.SequenceStarts[batch.Order[j]];
            for (int t = 0; t < batch.SortedLengths[j]; t++)
                tags[start + t] = packedTags[batch.Row(t, j)];
        }
    }

    public bool PerStep => true;

    public int OutputSize => _linear.OutputSize;

    public void Initialize(SeededRandom random)
    {
        _linear.Initialize(random);
        Crf?.Initialize(random);
    }

    public void Forward(RaggedBatch batch, in SequenceData data, ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> outputs, SeededRandom? dropout)
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
