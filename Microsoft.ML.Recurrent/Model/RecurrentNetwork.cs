using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Layers;

namespace Microsoft.ML.Recurrent.Model;

/// <summary>The shape of a <see cref="RecurrentNetwork"/>.</summary>
internal sealed record NetworkConfig
{
    /// <summary>Cell of every recurrent layer.</summary>
    public RecurrentCellKind Cell { get; init; } = RecurrentCellKind.Lstm;
    /// <summary>Vocabulary size V for token input; 0 for dense input.</summary>
    public int VocabularySize { get; init; }
    /// <summary>Embedding width E (token input) or features per step (dense input): the recurrent stack's input width.</summary>
    public int InputSize { get; init; }
    /// <summary>Hidden width H per direction.</summary>
    public int HiddenSize { get; init; }
    /// <summary>Number of stacked layers L.</summary>
    public int NumLayers { get; init; } = 1;
    /// <summary>Whether each layer has a reverse direction.</summary>
    public bool Bidirectional { get; init; }
    /// <summary>Dropout between recurrent layers (training only).</summary>
    public float Dropout { get; init; }
    /// <summary>Dropout on the stack's input — the embedded tokens or the dense features (training only, not saved).</summary>
    public float InputDropout { get; init; }
    /// <summary>Dropout on the pooled vector before the head (training only, not saved).</summary>
    public float HeadDropout { get; init; }
    /// <summary>How the top layer's outputs are pooled into one vector.</summary>
    public PoolingKind Pooling { get; init; } = PoolingKind.FinalState;
    /// <summary>Width O of the linear head (classes, 1 for binary or regression).</summary>
    public int OutputSize { get; init; }
    /// <summary>Token id that gets no embedding gradient, or −1.</summary>
    public int PaddingId { get; init; } = -1;

    /// <summary>Whether the input is token ids (true) or dense per-step features (false).</summary>
    public bool TokenInput => VocabularySize > 0;
}

/// <summary>
/// A whole sequence model over flat parameters: (embedding | dense input) → recurrent stack → pooling → linear head.
/// Parameter names: <c>embedding.weight</c>, <c>rnn.weight_ih_l0</c>…, <c>head.weight</c>, <c>head.bias</c>.
/// Batches are ragged (<see cref="RaggedBatch"/>); inputs and outputs are in the caller's order.
/// </summary>
internal sealed class RecurrentNetwork
{
    private readonly Embedding? _embedding;
    private readonly RecurrentStack _stack;
    private readonly SequencePooling _pooling;
    private readonly SequencePooling? _inputMean;   // PoolingKind.InputMean: mean of the stack's input
    private float[] _pooledStack = [];   // [B, P_stack]
    private float[] _pooledInput = [];   // [B, I]
    private readonly Linear _head;
    private readonly Dropout _inputDropout;
    private readonly Dropout _headDropout;
    private float[] _input = [];      // [N, I] packed input of the stack
    private float[] _dInput = [];     // [N, I]
    private float[] _pooled = [];     // [B, P] sorted order
    private float[] _dPooled = [];    // [B, P]
    private float[] _dStack = [];     // [N, D·H]
    private float[] _sortedOut = [];  // [B, O]
    private long _largestBatchSteps;  // most packed steps of any forward so far (sizes the workspace)

    /// <summary>The shape.</summary>
    public NetworkConfig Config { get; }

    /// <summary>All parameters and gradients.</summary>
    public ParameterSet Parameters { get; } = new();

    /// <summary>The recurrent layers.</summary>
    public RecurrentStack Stack => _stack;

    /// <summary>Width of the head's input: the pooled recurrent outputs, then the input mean when requested.</summary>
    private int PooledSize => _pooling.OutputSize + (_inputMean?.OutputSize ?? 0);

    /// <summary>Threads for forward and backward (see <see cref="RecurrentStack.Threads"/>); results do not depend on it.</summary>
    public int Threads
    {
        get => _stack.Threads;
        set => _stack.Threads = value;
    }

    /// <summary>Builds the network and allocates its parameters (zeros; call <see cref="Initialize"/>).</summary>
    public RecurrentNetwork(NetworkConfig config) : this(config, null)
    {
    }

    /// <summary>An inference-only network (no gradient buffer) that shares this network's weights but has its own activations.</summary>
    /// <remarks>The sibling assumes the weights no longer change: it packs them once (create a new sibling after training further).</remarks>
    public RecurrentNetwork CreateInferenceSibling() => new(Config, Parameters.Values) { Threads = Threads, WeightsFrozen = true };

    /// <summary>
    /// An inference-only network over <paramref name="values"/> (adopted, not copied; laid out as
    /// <see cref="Parameters"/> registers them): no gradient buffer, frozen weights. What a loaded model holds.
    /// </summary>
    public static RecurrentNetwork ForInference(NetworkConfig config, float[] values) => new(config, values) { WeightsFrozen = true };

    /// <summary>Number of parameters a network of <paramref name="config"/> has, in 64-bit arithmetic (to refuse absurd shapes before allocating).</summary>
    public static long CountParameters(NetworkConfig config)
    {
        long gates = config.Cell switch { RecurrentCellKind.Lstm => 4, RecurrentCellKind.Gru => 3, _ => 1 };
        long d = config.Bidirectional ? 2 : 1, h = config.HiddenSize;
        long total = (long)config.VocabularySize * config.InputSize;
        for (int l = 0; l < config.NumLayers; l++)
        {
            long input = l == 0 ? config.InputSize : d * h;
            total += d * gates * h * (input + h + 2);
        }
        long pooled = System.Numerics.BitOperations.PopCount((uint)(config.Pooling & ~PoolingKind.InputMean)) * d * h
            + ((config.Pooling & PoolingKind.InputMean) != 0 ? config.InputSize : 0);
        return total + pooled * config.OutputSize + config.OutputSize;
    }

    /// <summary>
    /// Estimated bytes of activations the last forward pass left allocated: per packed step, the stack's input and,
    /// per layer and direction, its gates, state and output (4 bytes each). Callers that keep a network for a long time
    /// use it to drop the workspace after an unusually long batch.
    /// </summary>
    public long EstimatedWorkspaceBytes
    {
        get
        {
            long gates = Config.Cell switch { RecurrentCellKind.Lstm => 4, RecurrentCellKind.Gru => 3, _ => 1 };
            long perStep = Config.InputSize + (long)Config.NumLayers * _stack.NumDirections * Config.HiddenSize * (gates + 2);
            return _largestBatchSteps * perStep * sizeof(float);
        }
    }

    /// <summary>
    /// The outputs [O] for a sequence with no steps: the head applied to pooled features of zero, i.e. the head's bias —
    /// the prediction for "no evidence", as a linear model scores an empty feature vector.
    /// </summary>
    public void ForwardEmpty(Span<float> outputs) => _head.ForwardZero(outputs);

    /// <summary>Whether the weights are frozen (inference siblings): packed weights are then made once.</summary>
    public bool WeightsFrozen
    {
        get => _stack.WeightsFrozen;
        private init => _stack.WeightsFrozen = value;
    }

    private RecurrentNetwork(NetworkConfig config, float[]? sharedValues)
    {
        Config = config;
        if (config.InputSize <= 0) throw new ArgumentOutOfRangeException(nameof(config), config.InputSize, "The input (embedding) size must be positive.");
        if (config.VocabularySize < 0) throw new ArgumentOutOfRangeException(nameof(config), config.VocabularySize, "The vocabulary size must not be negative.");
        if (config.TokenInput)
            _embedding = new Embedding(Parameters, "embedding.", config.VocabularySize, config.InputSize, config.PaddingId);
        _stack = new RecurrentStack(Parameters, "rnn.", config.Cell, config.InputSize, config.HiddenSize, config.NumLayers, config.Bidirectional, config.Dropout);
        var stackPooling = config.Pooling & ~PoolingKind.InputMean;
        if (stackPooling == 0)
            throw new ArgumentOutOfRangeException(nameof(config), config.Pooling, "Pooling needs at least one of FinalState, Mean and Max besides InputMean.");
        _pooling = new SequencePooling(stackPooling, config.HiddenSize, _stack.NumDirections);
        if ((config.Pooling & PoolingKind.InputMean) != 0)
            _inputMean = new SequencePooling(PoolingKind.Mean, config.InputSize, 1);
        _head = new Linear(Parameters, "head.", PooledSize, config.OutputSize);
        _inputDropout = new Dropout(config.InputDropout);
        _headDropout = new Dropout(config.HeadDropout);
        Parameters.Allocate(sharedValues, withGradients: sharedValues is null);
    }

    /// <summary>Seeded initialization of every parameter (PyTorch's default schemes), in registration order.</summary>
    public void Initialize(long seed)
    {
        var random = new SeededRandom(seed);
        _embedding?.Initialize(random);
        _stack.Initialize(random);
        _head.Initialize(random);
    }

    /// <summary>
    /// Forward for token input (ids of all sequences concatenated, original order). Writes outputs [B, O] (original order).
    /// <paramref name="dropout"/> non-null enables training-time dropout.
    /// </summary>
    public void Forward(RaggedBatch batch, ReadOnlySpan<int> tokens, Span<float> outputs, SeededRandom? dropout = null)
    {
        if (_embedding is null) throw new InvalidOperationException("This network takes dense input.");
        var input = Workspace.Ensure(ref _input, batch.TotalSteps * Config.InputSize);
        _embedding.Forward(batch, tokens, input);
        ForwardFromInput(batch, input, outputs, dropout);
    }

    /// <summary>Forward for dense input: features of all sequences concatenated, [Σ lengths, I], original order.</summary>
    public void Forward(RaggedBatch batch, ReadOnlySpan<float> features, Span<float> outputs, SeededRandom? dropout = null)
    {
        if (_embedding is not null) throw new InvalidOperationException("This network takes token ids.");
        var input = Workspace.Ensure(ref _input, batch.TotalSteps * Config.InputSize);
        batch.Pack(features, Config.InputSize, input);
        ForwardFromInput(batch, input, outputs, dropout);
    }

    private void ForwardFromInput(RaggedBatch batch, Span<float> input, Span<float> outputs, SeededRandom? dropout)
    {
        _largestBatchSteps = Math.Max(_largestBatchSteps, batch.TotalSteps);
        _inputDropout.Forward(input, input, dropout);
        var y = _stack.Forward(batch, input, dropout);
        int b = batch.BatchSize, p = PooledSize;
        var pooled = Workspace.Ensure(ref _pooled, b * p);
        if (_inputMean is null)
        {
            _pooling.Forward(batch, y, pooled);
        }
        else
        {
            // pooled[j] = [pool(Y)[j] | mean(X)[j]]
            int ps = _pooling.OutputSize, pi = _inputMean.OutputSize;
            var fromStack = Workspace.Ensure(ref _pooledStack, b * ps);
            var fromInput = Workspace.Ensure(ref _pooledInput, b * pi);
            _pooling.Forward(batch, y, fromStack);
            _inputMean.Forward(batch, input, fromInput);
            for (int j = 0; j < b; j++)
            {
                fromStack.Slice(j * ps, ps).CopyTo(pooled.Slice(j * p, ps));
                fromInput.Slice(j * pi, pi).CopyTo(pooled.Slice(j * p + ps, pi));
            }
        }
        _headDropout.Forward(pooled, pooled, dropout);
        var sorted = Workspace.Ensure(ref _sortedOut, batch.BatchSize * Config.OutputSize);
        _head.Forward(batch.BatchSize, pooled, sorted);
        batch.SortedToOriginal(sorted, Config.OutputSize, outputs);
    }

    /// <summary>
    /// Backward of the last forward given dOutputs [B, O] (original order): adds into <see cref="ParameterSet.Gradients"/>.
    /// For token input pass the same token ids; for dense input pass an empty span.
    /// </summary>
    public void Backward(RaggedBatch batch, ReadOnlySpan<int> tokens, ReadOnlySpan<float> dOutputs)
    {
        int n = batch.TotalSteps;
        var dSorted = Workspace.Ensure(ref _sortedOut, batch.BatchSize * Config.OutputSize);
        batch.OriginalToSorted(dOutputs, Config.OutputSize, dSorted);
        int b = batch.BatchSize, p = PooledSize;
        var dPooled = Workspace.Ensure(ref _dPooled, b * p);
        _head.Backward(b, _pooled.AsSpan(0, b * p), dSorted, dPooled);
        _headDropout.Backward(dPooled, dPooled);
        var dStack = Workspace.Ensure(ref _dStack, n * _stack.OutputSize);
        dStack.Clear();
        Span<float> dInput = default;
        if (_embedding is not null)
        {
            dInput = Workspace.Ensure(ref _dInput, n * Config.InputSize);
            dInput.Clear();
        }
        if (_inputMean is null)
        {
            _pooling.Backward(batch, dPooled, dStack);
        }
        else
        {
            int ps = _pooling.OutputSize, pi = _inputMean.OutputSize;
            var dFromStack = Workspace.Ensure(ref _pooledStack, b * ps);
            var dFromInput = Workspace.Ensure(ref _pooledInput, b * pi);
            for (int j = 0; j < b; j++)
            {
                dPooled.Slice(j * p, ps).CopyTo(dFromStack.Slice(j * ps, ps));
                dPooled.Slice(j * p + ps, pi).CopyTo(dFromInput.Slice(j * pi, pi));
            }
            _pooling.Backward(batch, dFromStack, dStack);
            if (!dInput.IsEmpty)
                _inputMean.Backward(batch, dFromInput, dInput);
        }
        _stack.Backward(batch, _input.AsSpan(0, n * Config.InputSize), dStack, default, default, dInput);
        if (_embedding is not null)
        {
            _inputDropout.Backward(dInput, dInput);
            _embedding.Backward(batch, tokens, dInput);
        }
    }
}
