using Microsoft.ML.Recurrent.Core;

namespace Microsoft.ML.Recurrent.Layers;

/// <summary>
/// L stacked recurrent layers of D = 1 or 2 directions (PyTorch <c>nn.LSTM/GRU/RNN</c> with <c>num_layers</c>,
/// <c>bidirectional</c> and <c>dropout</c>). Layer l reads X_l [N, I_l] and writes Y_l [N, D·H]: the forward
/// direction in columns [0, H), the reverse direction in [H, 2H). X_0 is the input; X_{l+1} = dropout(Y_l) during
/// training (inverted dropout, none after the last layer). Parameter names: <c>{prefix}weight_ih_l{l}[_reverse]</c> etc.
/// Final states use PyTorch's layout [L·D, B, H] with index l·D + d, in sorted batch order.
/// <para>With <see cref="Threads"/> ≥ 2 the two directions of a layer run on two threads (they share no state; the
/// reverse direction's input gradient goes to its own buffer and is added afterwards, in the same order for any
/// thread count, so results are bitwise identical); a unidirectional stack gives the threads to the large GEMMs.</para>
/// </summary>
internal sealed class RecurrentStack
{
    private readonly RecurrentDirection[] _directions; // [L·D], index l·D + d
    private readonly Dropout[] _dropouts;              // after layer l < L−1
    private readonly float[][] _outputs;   // per layer Y_l [N, D·H]
    private readonly float[][] _inputs;    // per layer l ≥ 1: X_l = dropout(Y_{l−1}) when dropout is active
    private float[] _dCurrent = [];
    private float[] _dNext = [];
    private float[] _dReverse = [];       // reverse direction's input gradient [N, I_l]
    private bool _droppedOut;
    private int _threads = 1;
    private readonly DirectionPair _pair;

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
    public float DropoutProbability { get; }

    /// <summary>Output width D·H.</summary>
    public int OutputSize => NumDirections * HiddenSize;

    /// <summary>Threads used by forward and backward (1 or 2 are meaningful). Results do not depend on it.</summary>
    public int Threads
    {
        get => _threads;
        set
        {
            _threads = Math.Max(1, value);
            foreach (var d in _directions)
                d.GemmThreads = NumDirections == 1 ? _threads : 1;
        }
    }

    /// <summary>Weights never change (inference copies): packed weights are made once (see <see cref="RecurrentDirection.WeightsFrozen"/>).</summary>
    public bool WeightsFrozen
    {
        get => _directions[0].WeightsFrozen;
        set
        {
            foreach (var d in _directions)
                d.WeightsFrozen = value;
        }
    }

    /// <summary>
    /// Scores with the packed weights of <paramref name="source"/> (a stack of the same shape over the same frozen weights,
    /// typically the loaded model's, of which this is an inference copy) instead of packing its own.
    /// </summary>
    public void SharePacksOf(RecurrentStack source)
    {
        if (source._directions.Length != _directions.Length)
            throw new ArgumentException("The stacks differ in shape.", nameof(source));
        for (int i = 0; i < _directions.Length; i++)
            _directions[i].SharePacks(source._directions[i].FrozenPacks);
    }

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
        DropoutProbability = dropout;
        _directions = new RecurrentDirection[numLayers * NumDirections];
        for (int l = 0; l < numLayers; l++)
        {
            int layerInput = l == 0 ? inputSize : OutputSize;
            for (int d = 0; d < NumDirections; d++)
                _directions[l * NumDirections + d] = new RecurrentDirection(parameters, prefix,
                    $"_l{l}{(d == 1 ? "_reverse" : "")}", kind, layerInput, hiddenSize, reverse: d == 1);
        }
        _pair = new DirectionPair(this);
        _dropouts = new Dropout[numLayers];
        _outputs = new float[numLayers][];
        _inputs = new float[numLayers][];
        for (int l = 0; l < numLayers; l++)
        {
            _dropouts[l] = new Dropout(dropout);
            _outputs[l] = [];
            _inputs[l] = [];
        }
    }

    /// <summary>PyTorch's default initialization, direction by direction in parameter order.</summary>
    public void Initialize(SeededRandom random)
    {
        foreach (var d in _directions)
            d.Initialize(random);
    }

    private bool Parallel => _threads > 1 && NumDirections == 2;

    /// <summary>
    /// Runs all layers over x [N, I] and returns the top layer's output [N, D·H] (valid until the next call).
    /// With <paramref name="random"/> non-null and dropout &gt; 0, dropout is applied between layers.
    /// </summary>
    public ReadOnlySpan<float> Forward(RaggedBatch batch, ReadOnlySpan<float> x, SeededRandom? random)
    {
        int n = batch.TotalSteps, width = OutputSize, h = HiddenSize;
        _droppedOut = random is not null && DropoutProbability > 0;
        ReadOnlySpan<float> input = x;
        for (int l = 0; l < NumLayers; l++)
        {
            var y = Workspace.Ensure(ref _outputs[l], n * width);
            if (Parallel)
            {
                ForwardBothInParallel(batch, l, input, y);
            }
            else
            {
                for (int d = 0; d < NumDirections; d++)
                    _directions[l * NumDirections + d].Forward(batch, input, y.Slice(d * h), width);
            }
            if (l + 1 < NumLayers && _droppedOut)
            {
                var next = Workspace.Ensure(ref _inputs[l + 1], n * width);
                _dropouts[l].Forward(y, next, random);
                input = next;
            }
            else
            {
                input = y;
            }
        }
        return input;
    }

    /// <summary>
    /// Initial states for the following passes, in the layout of <see cref="FinalStates"/>: h0 [L·D, B, H] and, for
    /// LSTM, c0 [L·D, B, H] (empty = zeros), sorted batch order. Stateful training feeds a batch's final states to the
    /// next batch this way (detached: no gradient reaches them). <see cref="ClearInitialStates"/> goes back to zeros.
    /// </summary>
    public void SetInitialStates(ReadOnlySpan<float> h0, ReadOnlySpan<float> c0)
    {
        int k = _directions.Length;
        if (h0.Length == 0 || h0.Length % (k * HiddenSize) != 0)
            throw new ArgumentException($"h0 holds {h0.Length} values; expected L·D·B·H with L·D = {k} and H = {HiddenSize}.", nameof(h0));
        int per = h0.Length / k;
        for (int i = 0; i < k; i++)
            _directions[i].SetInitialStates(h0.Slice(i * per, per), c0.IsEmpty ? default : c0.Slice(i * per, per));
    }

    /// <summary>Back to zero initial states.</summary>
    public void ClearInitialStates()
    {
        foreach (var d in _directions)
            d.ClearInitialStates();
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
            int layerInput = l == 0 ? InputSize : width;
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
            if (NumDirections == 1)
            {
                _directions[l].Backward(batch, input, y, width, dY,
                    dhN.IsEmpty ? default : dhN.Slice(l * b * h, b * h),
                    dcN.IsEmpty ? default : dcN.Slice(l * b * h, b * h),
                    dInput);
            }
            else
            {
                // The reverse direction's input gradient goes to its own buffer and is added last, for any thread count.
                var dReverse = dInput.IsEmpty ? default : Workspace.Ensure(ref _dReverse, n * layerInput);
                dReverse.Clear();
                if (Parallel)
                    BackwardBothInParallel(batch, l, input, y, dY, dhN, dcN, dInput, dReverse);
                else
                    for (int d = 0; d < 2; d++)
                        BackwardOne(batch, l, d, input, y, dY, dhN, dcN, d == 0 ? dInput : dReverse);
                if (!dInput.IsEmpty)
                    System.Numerics.Tensors.TensorPrimitives.Add(dInput, dReverse, dInput);
            }
            if (l > 0)
            {
                _dropouts[l - 1].Backward(dInput, dInput);
                (_dCurrent, _dNext) = (_dNext, _dCurrent);
                dY = _dCurrent.AsSpan(0, n * width);
            }
        }
    }

    private void BackwardOne(RaggedBatch batch, int l, int d, ReadOnlySpan<float> input, ReadOnlySpan<float> y,
        ReadOnlySpan<float> dY, ReadOnlySpan<float> dhN, ReadOnlySpan<float> dcN, Span<float> dInput)
    {
        int b = batch.BatchSize, h = HiddenSize, k = l * 2 + d;
        _directions[k].Backward(batch, input, y.Slice(d * h), OutputSize,
            dY.IsEmpty ? default : dY.Slice(d * h),
            dhN.IsEmpty ? default : dhN.Slice(k * b * h, b * h),
            dcN.IsEmpty ? default : dcN.Slice(k * b * h, b * h),
            dInput);
    }

    private unsafe void ForwardBothInParallel(RaggedBatch batch, int l, ReadOnlySpan<float> input, Span<float> y)
    {
        fixed (float* pInput = input, pY = y)
        {
            _pair.Set(batch, l, backward: false, pInput, input.Length, pY, y.Length, null, 0, null, 0, null, 0, null, 0, null, 0);
            PairRunner.Run(_pair);
        }
    }

    private unsafe void BackwardBothInParallel(RaggedBatch batch, int l, ReadOnlySpan<float> input, ReadOnlySpan<float> y,
        ReadOnlySpan<float> dY, ReadOnlySpan<float> dhN, ReadOnlySpan<float> dcN, Span<float> dForward, Span<float> dReverse)
    {
        fixed (float* pInput = input, pY = y, pDY = dY, pDhN = dhN, pDcN = dcN, pDForward = dForward, pDReverse = dReverse)
        {
            _pair.Set(batch, l, backward: true, pInput, input.Length, pY, y.Length, pDY, dY.Length, pDhN, dhN.Length, pDcN, dcN.Length,
                pDForward, dForward.Length, pDReverse, dReverse.Length);
            PairRunner.Run(_pair);
        }
    }

    /// <summary>
    /// The arguments of one layer's two directions, held as pointers to memory pinned by the caller for the duration of
    /// <see cref="PairRunner.Run"/>, so running them on two threads allocates nothing.
    /// </summary>
    private sealed unsafe class DirectionPair(RecurrentStack stack) : IPairWork
    {
        private RaggedBatch? _batch;
        private int _layer;
        private bool _backward;
        private float* _input, _y, _dY, _dhN, _dcN, _dForward, _dReverse;
        private int _inputLength, _yLength, _dYLength, _dhNLength, _dcNLength, _dForwardLength, _dReverseLength;

        public void Set(RaggedBatch batch, int layer, bool backward, float* input, int inputLength, float* y, int yLength,
            float* dY, int dYLength, float* dhN, int dhNLength, float* dcN, int dcNLength, float* dForward, int dForwardLength,
            float* dReverse, int dReverseLength)
        {
            _batch = batch; _layer = layer; _backward = backward;
            _input = input; _inputLength = inputLength; _y = y; _yLength = yLength; _dY = dY; _dYLength = dYLength;
            _dhN = dhN; _dhNLength = dhNLength; _dcN = dcN; _dcNLength = dcNLength;
            _dForward = dForward; _dForwardLength = dForwardLength; _dReverse = dReverse; _dReverseLength = dReverseLength;
        }

        public void RunPart(int part)
        {
            int h = stack.HiddenSize;
            if (!_backward)
            {
                stack._directions[_layer * 2 + part].Forward(_batch!, new ReadOnlySpan<float>(_input, _inputLength),
                    new Span<float>(_y + part * h, _yLength - part * h), stack.OutputSize);
                return;
            }
            stack.BackwardOne(_batch!, _layer, part, new ReadOnlySpan<float>(_input, _inputLength), new ReadOnlySpan<float>(_y, _yLength),
                new ReadOnlySpan<float>(_dY, _dYLength), new ReadOnlySpan<float>(_dhN, _dhNLength), new ReadOnlySpan<float>(_dcN, _dcNLength),
                part == 0 ? new Span<float>(_dForward, _dForwardLength) : new Span<float>(_dReverse, _dReverseLength));
        }
    }
}
