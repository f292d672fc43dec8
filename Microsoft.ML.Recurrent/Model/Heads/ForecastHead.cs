using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Layers;

namespace Microsoft.ML.Recurrent.Model;

/// <summary>
/// A direct multi-horizon forecast per sequence: every sequence has the same number of steps n (the look-back window's
/// segments), and the output row [O] (O = horizon × outputs per step, see the forecaster) is
/// <code>
///   out = head.weight · dropout(h_final) + head.bias            h_final [D·H]: the top layer's final state
///       + skip.weight · [f_0[0..w), f_1[0..w), …, f_{n−1}[0..w), s]     (when the skip is on)
/// </code>
/// The skip (<c>skip.weight</c> [O, n·w + S], no bias) is a linear model of the look-back window — the first w values
/// of every step's input features f_t (<see cref="SequenceData.Features"/>, before any input dropout) are the target's
/// values in its segment — and of the sequence's static values s [S]
/// (<see cref="SequenceData.Static"/>, the known future covariates). It starts at zero, so the network starts as the
/// recurrent part alone. The recurrent part models what a linear map of the window cannot.
/// </summary>
internal sealed class ForecastHead : INetworkHead
{
    private readonly SequencePooling _final;
    private readonly Dropout _dropout;
    private readonly Linear _linear;
    private readonly ParameterSet _parameters;
    private readonly Parameter? _skip;     // [O, n·w + S]
    private readonly int _steps, _skipColumns, _staticSize, _inputSize;
    private float[] _pooled = [];      // [B, D·H] sorted order
    private float[] _dPooled = [];     // [B, D·H]
    private float[] _skipInput = [];   // [B, n·w + S] sorted order
    private float[] _sorted = [];      // [B, O] sorted order

    /// <param name="parameters">Where it registers <c>head.weight</c>, <c>head.bias</c> and <c>skip.weight</c>.</param>
    /// <param name="hiddenSize">H per direction.</param>
    /// <param name="directions">D.</param>
    /// <param name="inputSize">F, the input features per step (<see cref="SequenceData.Features"/>).</param>
    /// <param name="outputSize">O.</param>
    /// <param name="dropout">Dropout on the final state (training only).</param>
    /// <param name="steps">n, the steps of every sequence.</param>
    /// <param name="skipColumns">w, the leading columns of each step the skip reads (0 = none).</param>
    /// <param name="staticSize">S, the static values per sequence the skip reads (0 = none).</param>
    public ForecastHead(ParameterSet parameters, int hiddenSize, int directions, int inputSize, int outputSize, float dropout,
        int steps, int skipColumns, int staticSize)
    {
        if (steps <= 0) throw new ArgumentOutOfRangeException(nameof(steps), steps, "A forecast head needs a positive number of steps.");
        if (skipColumns < 0 || skipColumns > inputSize) throw new ArgumentOutOfRangeException(nameof(skipColumns), skipColumns, $"The skip reads 0 to {inputSize} columns per step.");
        if (staticSize < 0) throw new ArgumentOutOfRangeException(nameof(staticSize), staticSize, "The static size must not be negative.");
        _parameters = parameters;
        _final = new SequencePooling(PoolingKind.FinalState, hiddenSize, directions);
        _dropout = new Dropout(dropout);
        _linear = new Linear(parameters, "head.", _final.OutputSize, outputSize);
        _steps = steps;
        _skipColumns = skipColumns;
        _staticSize = staticSize;
        _inputSize = inputSize;
        if (SkipSize > 0)
            _skip = parameters.Register("skip.weight", outputSize, SkipSize);
    }

    /// <summary>Input width of the skip, n·w + S (0 = no skip).</summary>
    public int SkipSize => _steps * _skipColumns + _staticSize;

    /// <summary>Number of parameters of a head of this shape.</summary>
    public static long CountParameters(int hiddenSize, int directions, int outputSize, int steps, int skipColumns, int staticSize) =>
        ((long)hiddenSize * directions + 1 + (long)steps * skipColumns + staticSize) * outputSize;

    public bool PerStep => false;

    public int OutputSize => _linear.OutputSize;

    public void Initialize(SeededRandom random)
    {
        _linear.Initialize(random);
        if (_skip is not null)
            _parameters.Value(_skip).Clear();
    }

    public void Forward(RaggedBatch batch, in SequenceData data, ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> outputs, SeededRandom? dropout)
    {
        int b = batch.BatchSize, o = OutputSize, s = SkipSize;
        for (int j = 0; j < b; j++)
            if (batch.Lengths[j] != _steps)
                throw new ArgumentException($"A forecast head reads windows of {_steps} steps; sequence {j} has {batch.Lengths[j]}.", nameof(batch));
        if (_staticSize > 0 && data.Static.Length != b * _staticSize)
            throw new ArgumentException($"The forecast head needs {_staticSize} static values per sequence ({b * _staticSize}); got {data.Static.Length}.", nameof(data));
        var pooled = Workspace.Ensure(ref _pooled, b * _final.OutputSize);
        _final.Forward(batch, y, pooled);
        _dropout.Forward(pooled, pooled, dropout);
        var sorted = Workspace.Ensure(ref _sorted, b * o);
        _linear.Forward(b, pooled, sorted);
        if (_skip is not null)
        {
            var input = Workspace.Ensure(ref _skipInput, b * s);
            GatherSkipInput(batch, data, input);
            Kernels.Sgemm.Multiply(Kernels.Transpose.No, Kernels.Transpose.Yes, b, o, s, input, s,
                _parameters.Value(_skip), s, sorted, o, accumulate: true);
        }
        batch.SortedToOriginal(sorted, o, outputs);
    }

    /// <summary>
    /// Skip input [B, n·w + S], sorted order: row j (the caller's sequence i = Order[j]) = its skip row
    /// (<see cref="SkipRow"/>).
    /// </summary>
    private void GatherSkipInput(RaggedBatch batch, in SequenceData data, Span<float> input)
    {
        int s = SkipSize, f = _inputSize;
        if (_skipColumns > 0 && data.Features.Length != batch.TotalSteps * f)
            throw new ArgumentException($"The forecast head's skip reads {f} features per step ({batch.TotalSteps * f}); got {data.Features.Length}.", nameof(data));
        for (int j = 0; j < batch.BatchSize; j++)
        {
            int i = batch.Order[j];
            SkipRow(data.Features.Slice(batch.SequenceStarts[i] * f), f, data.Static.IsEmpty ? default : data.Static.Slice(i * _staticSize, _staticSize), input.Slice(j * s, s));
        }
    }

    /// <summary>
    /// One sequence's skip input [n·w + S]: the first w of the F features of each of its n steps (<paramref name="features"/>
    /// from its first step on), then its static values.
    /// </summary>
    public void SkipRow(ReadOnlySpan<float> features, int featuresPerStep, ReadOnlySpan<float> statics, Span<float> row)
    {
        int w = _skipColumns;
        for (int t = 0; t < _steps && w > 0; t++)
            features.Slice(t * featuresPerStep, w).CopyTo(row.Slice(t * w, w));
        if (_staticSize > 0)
            statics.CopyTo(row.Slice(_steps * w));
    }

    public void Backward(RaggedBatch batch, ReadOnlySpan<float> dOutputs, Span<float> dY, Span<float> dX)
    {
        int b = batch.BatchSize, o = OutputSize, s = SkipSize;
        var dSorted = Workspace.Ensure(ref _sorted, b * o);
        batch.OriginalToSorted(dOutputs, o, dSorted);
        var dPooled = Workspace.Ensure(ref _dPooled, b * _final.OutputSize);
        _linear.Backward(b, _pooled.AsSpan(0, b * _final.OutputSize), dSorted, dPooled);
        _dropout.Backward(dPooled, dPooled);
        _final.Backward(batch, dPooled, dY);
        if (_skip is not null)
        {
            // dW_skip [O, S'] += dSortedᵀ · input; the window's values come from data, so nothing flows into dX.
            Kernels.Sgemm.Multiply(Kernels.Transpose.Yes, Kernels.Transpose.No, o, s, b, dSorted, o, _skipInput.AsSpan(0, b * s), s,
                _parameters.Gradient(_skip), s, accumulate: true);
        }
    }
}
