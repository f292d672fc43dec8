using Microsoft.ML.Recurrent.Core;

namespace Microsoft.ML.Recurrent.Layers;

/// <summary>
/// L stacked recurrent layers of D = 1 or 2 directions (PyTorch <c>nn.LSTM/GRU/RNN</c> with <c>num_layers</c>,
/// <c>bidirectional</c> and <c>dropout</c>). Layer l reads X_l [N, I_l] and writes Y_l [N, D·H]: the forward
/// direction in columns [0, H), the reverse direction in [H, 2H). X_0 is the input; X_{l+1} = dropout(Y_l) during
/// training (inverted dropout, none after the last layer). Parameter names: <c>{prefix}weight_ih_l{l}[_reverse]</c> etc.
/// Final states use PyTorch's layout [L·D, B, H] with index l·D + d, in sorted batch order.
/// </summary>
internal sealed class RecurrentStack
{
    private readonly RecurrentDirection[] _directions; // [L·D], index l·D + d
    private float[][] _outputs;   // per layer Y_l [N, D·H]
    private float[][] _masks;     // per layer l < L−1: dropout scale per element of Y_l (0 or 1/(1−p))
    private float[][] _inputs;    // per layer l ≥ 1: X_l = dropout(Y_{l−1}) when dropout is active
    private float[] _dCurrent = [];
    private float[] _dNext = [];
    private bool _droppedOut;

    /// <summary>Cell kind.</summary>
    public RecurrentCellKind CellKind { get; }

    /// <summary>Input width I of layer 0.</summary>
    public int InputSize { get; }

    /// <summary>Hidden width H per direction.</summary>
    public int HiddenSize { get; }

    /// <summary>Number of layers L.</summary>
    public int NumLayers { get; }

    /// <summary>Directions per layer D (1 or 2).</summary>
    public int NumDirections { get; }

    /// <summary>Dropout probability between layers (training only).</summary>
    public float Dropout { get; }

    /// <summary>Output width D·H.</summary>
    public int OutputSize => NumDirections * HiddenSize;

    /// <summary>Registers the parameters of every layer and direction.</summary>
    public RecurrentStack(ParameterSet parameters, string prefix, RecurrentCellKind kind, int inputSize, int hiddenSize,
        int numLayers, bool bidirectional, float dropout)
    {
        if (inputSize <= 0) throw new ArgumentOutOfRangeException(nameof(inputSize), inputSize, "The input size must be positive.");
        if (hiddenSize <= 0) throw new ArgumentOutOfRangeException(nameof(hiddenSize), hiddenSize, "The hidden size must be positive.");
        if (numLayers <= 0) throw new ArgumentOutOfRangeException(nameof(numLayers), numLayers, "The number of layers must be positive.");
        if (!(dropout >= 0 && dropout < 1)) throw new ArgumentOutOfRangeException(nameof(dropout), dropout, "Dropout must be in [0, 1).");
        CellKind = kind;
        InputSize = inputSize;
        HiddenSize = hiddenSize;
        NumLayers = numLayers;
        NumDirections = bidirectional ? 2 : 1;
        Dropout = dropout;
        _directions = new RecurrentDirection[numLayers * NumDirections];
        for (int l = 0; l < numLayers; l++)
        {
            int layerInput = l == 0 ? inputSize : OutputSize;
            for (int d = 0; d < NumDirections; d++)
                _directions[l * NumDirections + d] = new RecurrentDirection(parameters, prefix,
                    $"_l{l}{(d == 1 ? "_reverse" : "")}", kind, layerInput, hiddenSize, reverse: d == 1);
        }
        _outputs = new float[numLayers][];
        _masks = new float[numLayers][];
        _inputs = new float[numLayers][];
        for (int l = 0; l < numLayers; l++)
        {
            _outputs[l] = [];
            _masks[l] = [];
            _inputs[l] = [];
        }
    }

    /// <summary>PyTorch's default initialization, direction by direction in parameter order.</summary>
    public void Initialize(SeededRandom random)
    {
        foreach (var d in _directions)
            d.Initialize(random);
    }

    /// <summary>The last forward's output of the top layer, [N, D·H].</summary>
    public ReadOnlySpan<float> Output(RaggedBatch batch) => _outputs[NumLayers - 1].AsSpan(0, batch.TotalSteps * OutputSize);

    /// <summary>
    /// Runs all layers over x [N, I] and returns the top layer's output [N, D·H] (valid until the next call).
    /// With <paramref name="random"/> non-null and <see cref="Dropout"/> &gt; 0, dropout is applied between layers.
    /// </summary>
    public ReadOnlySpan<float> Forward(RaggedBatch batch, ReadOnlySpan<float> x, SeededRandom? random)
    {
        int n = batch.TotalSteps, width = OutputSize;
        _droppedOut = random is not null && Dropout > 0;
        ReadOnlySpan<float> input = x;
        for (int l = 0; l < NumLayers; l++)
        {
            var y = Workspace.Ensure(ref _outputs[l], n * width);
            for (int d = 0; d < NumDirections; d++)
                _directions[l * NumDirections + d].Forward(batch, input, y.Slice(d * HiddenSize), width);
            if (l + 1 < NumLayers && _droppedOut)
            {
                var mask = Workspace.Ensure(ref _masks[l], n * width);
                float scale = 1f / (1f - Dropout);
                for (int i = 0; i < mask.Length; i++)
                    mask[i] = random!.NextSingle() < Dropout ? 0f : scale;
                var next = Workspace.Ensure(ref _inputs[l + 1], n * width);
                System.Numerics.Tensors.TensorPrimitives.Multiply(y, mask, next);
                input = next;
            }
            else
            {
                input = y;
            }
        }
        return input;
    }

    /// <summary>Final hidden states hN [L·D, B, H] and, for LSTM, cell states cN [L·D, B, H] (sorted order; cN may be empty).</summary>
    public void FinalStates(RaggedBatch batch, Span<float> hN, Span<float> cN)
    {
        int b = batch.BatchSize, h = HiddenSize;
        for (int l = 0; l < NumLayers; l++)
            for (int d = 0; d < NumDirections; d++)
            {
                int k = l * NumDirections + d;
                _directions[k].FinalStates(batch, _outputs[l].AsSpan(d * h), OutputSize, hN.Slice(k * b * h, b * h),
                    cN.IsEmpty ? default : cN.Slice(k * b * h, b * h));
            }
    }

    /// <summary>
    /// Backward of the last <see cref="Forward"/>: dOutput [N, D·H] (may be empty), dhN/dcN [L·D, B, H] (may be empty).
    /// Adds into the parameter gradients and into <paramref name="dX"/> [N, I] when it is not empty.
    /// </summary>
    public void Backward(RaggedBatch batch, ReadOnlySpan<float> x, ReadOnlySpan<float> dOutput,
        ReadOnlySpan<float> dhN, ReadOnlySpan<float> dcN, Span<float> dX)
    {
        int n = batch.TotalSteps, b = batch.BatchSize, h = HiddenSize, width = OutputSize;
        ReadOnlySpan<float> dY = dOutput;
        for (int l = NumLayers - 1; l >= 0; l--)
        {
            ReadOnlySpan<float> input = l == 0 ? x : _droppedOut ? _inputs[l].AsSpan(0, n * width) : _outputs[l - 1].AsSpan(0, n * width);
            Span<float> dInput = default;
            if (l > 0)
            {
                dInput = Workspace.Ensure(ref _dNext, n * width);
                dInput.Clear();
            }
            else if (!dX.IsEmpty)
            {
                dInput = dX;
            }
            var y = _outputs[l].AsSpan(0, n * width);
            for (int d = 0; d < NumDirections; d++)
            {
                int k = l * NumDirections + d;
                _directions[k].Backward(batch, input, y.Slice(d * h), width,
                    dY.IsEmpty ? default : dY.Slice(d * h),
                    dhN.IsEmpty ? default : dhN.Slice(k * b * h, b * h),
                    dcN.IsEmpty ? default : dcN.Slice(k * b * h, b * h),
                    dInput);
            }
            if (l > 0)
            {
                if (_droppedOut)
                    System.Numerics.Tensors.TensorPrimitives.Multiply(dInput, _masks[l - 1].AsSpan(0, n * width), dInput);
                (_dCurrent, _dNext) = (_dNext, _dCurrent);
                dY = _dCurrent.AsSpan(0, n * width);
            }
        }
    }
}
