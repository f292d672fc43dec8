using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Layers;

namespace Microsoft.ML.Recurrent.Model;

/// <summary>
/// A whole sequence model over flat parameters: one network, many heads. An input piece (<see cref="INetworkInput"/>:
/// token embedding, or dense features) → the recurrent stack → a head (<see cref="INetworkHead"/>: pooled, or per
/// step). Parameter names: <c>embedding.weight</c>, <c>rnn.weight_ih_l0</c>…, <c>head.weight</c>, <c>head.bias</c>,
/// registered in that order. Batches are ragged (<see cref="RaggedBatch"/>); inputs and outputs are in the caller's order.
/// </summary>
internal sealed class RecurrentNetwork
{
    private readonly INetworkInput _input;
    private readonly RecurrentStack _stack;
    private readonly INetworkHead _head;
    private readonly SparseLinear? _wide;   // wide & deep: the sparse linear part beside the pooled head
    private float[] _x = [];     // [N, I] packed input of the stack
    private float[] _dX = [];    // [N, I]
    private float[] _dY = [];    // [N, D·H]
    private float[] _sortedPooled = [];          // [B, P] representation of a per-step network, sorted order
    private SequencePooling? _representationPooling; // mean and max of the top layer, for a per-step network
    private long _largestBatchSteps;  // most packed steps of any forward so far (sizes the workspace)

    /// <summary>The shape.</summary>
    public NetworkConfig Config { get; }

    /// <summary>All parameters and gradients.</summary>
    public ParameterSet Parameters { get; } = new();

    /// <summary>The recurrent layers.</summary>
    public RecurrentStack Stack => _stack;

    /// <summary>The head.</summary>
    public INetworkHead Head => _head;

    /// <summary>Threads for forward and backward (see <see cref="RecurrentStack.Threads"/>); results do not depend on it.</summary>
    public int Threads
    {
        get => _stack.Threads;
        set
        {
            _stack.Threads = value;
            if (_input is WordCharacterInput characters) characters.Threads = value;
        }
    }

    /// <summary>Builds the network and allocates its parameters (zeros; call <see cref="Initialize"/>).</summary>
    public RecurrentNetwork(NetworkConfig config) : this(config, null)
    {
    }

    /// <summary>An inference-only network (no gradient buffer) that shares this network's weights but has its own activations.</summary>
    /// <remarks>
    /// The sibling assumes the weights no longer change: it packs them once (create a new sibling after training further).
    /// When this network's weights are frozen too (a trained model's), every sibling shares one set of packed recurrent
    /// weights, packed on first use (see <see cref="FrozenWeightPacks"/>).
    /// </remarks>
    public RecurrentNetwork CreateInferenceSibling()
    {
        var sibling = new RecurrentNetwork(Config, Parameters.Values) { Threads = Threads, WeightsFrozen = true };
        if (WeightsFrozen)
            sibling._stack.SharePacksOf(_stack);
        return sibling;
    }

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
        long stackInput = config.InputSize;
        if (config.UsesCharacters)
        {
            // The character encoder: embedding [Vc, Ec] and a one-layer bidirectional stack of hidden Hc.
            long hc = config.CharacterHiddenSize;
            total += (long)config.CharacterVocabularySize * config.CharacterEmbeddingSize + 2 * gates * hc * (config.CharacterEmbeddingSize + hc + 2);
            stackInput += 2 * hc;
        }
        for (int l = 0; l < config.NumLayers; l++)
        {
            long input = l == 0 ? stackInput : d * h;
            total += d * gates * h * (input + h + 2);
        }
        if (config.Head == NetworkHeadKind.Forecast)
            return total + ForecastHead.CountParameters(config.HiddenSize, (int)d, config.OutputSize, config.ForecastSteps, config.SkipColumns, config.StaticSize);
        long headInput = config.Head == NetworkHeadKind.PerStep ? d * h
            : System.Numerics.BitOperations.PopCount((uint)(config.Pooling & ~PoolingKind.InputMean)) * d * h
              + ((config.Pooling & PoolingKind.InputMean) != 0 ? stackInput : 0);
        if (config.Head == NetworkHeadKind.Pooled && (config.Pooling & PoolingKind.Attention) != 0)
            total += AttentionPooling.CountParameters(d * h);
        long crf = config.UseCrf ? (long)config.OutputSize * (config.OutputSize + 2) : 0;
        total += (long)config.WideSize * config.OutputSize;
        return total + (config.TieWeights ? 0 : headInput * config.OutputSize) + config.OutputSize + crf;
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
            long perStep = _input.OutputSize + (long)Config.NumLayers * _stack.NumDirections * Config.HiddenSize * (gates + 2)
                + (_head.PerStep ? _stack.OutputSize + _head.OutputSize : 0);
            return _largestBatchSteps * perStep * sizeof(float);
        }
    }

    /// <summary>
    /// The outputs [O] for a sequence with no steps: the pooled head applied to pooled features of zero, i.e. its
    /// bias — the prediction for "no evidence", as a linear model scores an empty feature vector.
    /// </summary>
    public void ForwardEmpty(Span<float> outputs) => ForwardEmpty(outputs, default, default);

    /// <summary>
    /// <see cref="ForwardEmpty(Span{float})"/> plus, with a wide part, the wide features of the sequence (its entries
    /// as columns and values): a row with no tokens still has its n-grams.
    /// </summary>
    public void ForwardEmpty(Span<float> outputs, ReadOnlySpan<int> wideIndices, ReadOnlySpan<float> wideValues)
    {
        if (_head is not PooledHead pooled)
            throw new InvalidOperationException("Only a pooled head has an output for a sequence with no steps.");
        pooled.ForwardEmpty(outputs);
        if (_wide is not null)
        {
            Span<int> starts = [0, wideIndices.Length];
            _wide.Forward(starts, wideIndices, wideValues, outputs);
        }
    }

    /// <summary>Whether the weights are frozen (inference siblings): packed weights are then made once.</summary>
    public bool WeightsFrozen
    {
        get => _stack.WeightsFrozen;
        private init
        {
            _stack.WeightsFrozen = value;
            if (_input is WordCharacterInput characters) characters.WeightsFrozen = value;
        }
    }

    private RecurrentNetwork(NetworkConfig config, float[]? sharedValues)
    {
        Config = config;
        if (config.InputSize <= 0) throw new ArgumentOutOfRangeException(nameof(config), config.InputSize, "The input (embedding) size must be positive.");
        if (config.VocabularySize < 0) throw new ArgumentOutOfRangeException(nameof(config), config.VocabularySize, "The vocabulary size must not be negative.");
        if (config.UseCrf && config.Head != NetworkHeadKind.PerStep) throw new ArgumentException("A CRF needs a per-step head.", nameof(config));
        if (config.Head == NetworkHeadKind.Forecast && config.TokenInput) throw new ArgumentException("A forecast head needs dense input.", nameof(config));
        if (config.UsesCharacters && !config.TokenInput) throw new ArgumentException("Character features need token input.", nameof(config));
        if (config.TieWeights)
        {
            if (!config.TokenInput || config.UsesCharacters || config.Head != NetworkHeadKind.PerStep || config.UseCrf)
                throw new ArgumentException("Weight tying needs token input without character features and a per-step head without CRF.", nameof(config));
            if (config.OutputSize != config.VocabularySize)
                throw new ArgumentException($"Weight tying needs as many outputs as tokens; {config.OutputSize} outputs for {config.VocabularySize} tokens.", nameof(config));
            if ((config.Bidirectional ? 2 : 1) * config.HiddenSize != config.InputSize)
                throw new ArgumentException($"Weight tying needs the top layer's width ({(config.Bidirectional ? 2 : 1) * config.HiddenSize}) to equal the embedding size ({config.InputSize}).", nameof(config));
        }
        _input = config.UsesCharacters
            ? new WordCharacterInput(Parameters, config.VocabularySize, config.InputSize, config.PaddingId, config.InputDropout,
                config.CharacterVocabularySize, config.CharacterEmbeddingSize, config.CharacterHiddenSize, config.MaximumWordLength)
            : config.TokenInput
            ? new TokenInput(Parameters, config.VocabularySize, config.InputSize, config.PaddingId, config.InputDropout)
            : new DenseInput(config.InputSize, config.InputDropout);
        _stack = new RecurrentStack(Parameters, "rnn.", config.Cell, _input.OutputSize, config.HiddenSize, config.NumLayers, config.Bidirectional, config.Dropout);
        _head = config.Head switch
        {
            NetworkHeadKind.Pooled => new PooledHead(Parameters, config.Pooling, config.HiddenSize, _stack.NumDirections, _input.OutputSize, config.OutputSize, config.HeadDropout),
            NetworkHeadKind.PerStep => new PerStepHead(Parameters, _stack.OutputSize, config.OutputSize, config.HeadDropout, config.UseCrf, config.CrfConstraints,
                config.TieWeights ? ((TokenInput)_input).EmbeddingWeight : null),
            NetworkHeadKind.Forecast => new ForecastHead(Parameters, config.HiddenSize, _stack.NumDirections, _input.OutputSize, config.OutputSize, config.HeadDropout,
                config.ForecastSteps, config.SkipColumns, config.StaticSize),
            _ => throw new ArgumentOutOfRangeException(nameof(config), config.Head, "Unknown head."),
        };
        if (config.WideSize > 0)
        {
            if (config.Head != NetworkHeadKind.Pooled)
                throw new ArgumentException("A wide part needs a pooled head.", nameof(config));
            _wide = new SparseLinear(Parameters, "wide.", config.WideSize, config.OutputSize, config.WideDropout);
        }
        Parameters.Allocate(sharedValues, withGradients: sharedValues is null);
    }

    /// <summary>Whether the head has a wide part (<see cref="NetworkConfig.WideSize"/>).</summary>
    public bool HasWide => _wide is not null;

    /// <summary>
    /// Where each layer group begins in <see cref="ParameterSet.Values"/>, from the bottom: the input (embedding,
    /// character encoder; empty for dense input), each recurrent layer (all its directions), the head (attention,
    /// linear, CRF). Parameters are registered in this order, so each group is one range.
    /// </summary>
    public int[] LayerGroupStarts()
    {
        var ps = Parameters;
        var starts = new List<int> { 0 };
        for (int l = 0; l < Config.NumLayers; l++)
            starts.Add(ps[$"rnn.weight_ih_l{l}"].Offset);
        var last = ps.Parameters.Last(p => p.Name.StartsWith("rnn.", StringComparison.Ordinal));
        starts.Add(last.Offset + last.Length);
        return [.. starts];
    }

    /// <summary>Seeded initialization of every parameter (PyTorch's default schemes), in registration order.</summary>
    public void Initialize(long seed)
    {
        var random = new SeededRandom(seed);
        _input.Initialize(random);
        _stack.Initialize(random);
        _head.Initialize(random);
        _wide?.Initialize();
    }

    /// <summary>
    /// Forward: writes the head's outputs in the caller's order — [B, O] for a pooled head, [Σ lengths, O] for a per-step
    /// head. <paramref name="dropout"/> non-null enables training-time dropout.
    /// </summary>
    public void Forward(RaggedBatch batch, in SequenceData data, Span<float> outputs, SeededRandom? dropout = null) =>
        Forward(batch, data, outputs, outputs, dropout);

    /// <summary>
    /// Forward with the two parts of a wide &amp; deep head apart: <paramref name="deepOutputs"/> [B, O] gets the
    /// pooled head alone (with its bias), <paramref name="wideOutputs"/> [B, O] the wide part alone (no bias). Their
    /// sum is what <see cref="Forward(RaggedBatch, in SequenceData, Span{float}, SeededRandom?)"/> writes. The
    /// trainer's ensemble and boosted modes (<see cref="WideTrainingMode"/>) give each part its own loss.
    /// </summary>
    public void ForwardParts(RaggedBatch batch, in SequenceData data, Span<float> deepOutputs, Span<float> wideOutputs, SeededRandom? dropout = null)
    {
        if (_wide is null) throw new InvalidOperationException("This network has no wide part.");
        if (wideOutputs.Length < batch.BatchSize * Config.OutputSize)
            throw new ArgumentException($"The wide outputs need {batch.BatchSize * Config.OutputSize} values.", nameof(wideOutputs));
        wideOutputs[..(batch.BatchSize * Config.OutputSize)].Clear();
        Forward(batch, data, deepOutputs, wideOutputs, dropout);
    }

    private void Forward(RaggedBatch batch, in SequenceData data, Span<float> outputs, Span<float> wideOutputs, SeededRandom? dropout)
    {
        _largestBatchSteps = Math.Max(_largestBatchSteps, batch.TotalSteps);
        var x = Workspace.Ensure(ref _x, batch.TotalSteps * _input.OutputSize);
        _input.Forward(batch, data, x, dropout);
        var y = _stack.Forward(batch, x, dropout);
        _head.Forward(batch, data, x, y, outputs, dropout);
        if (_wide is not null)
        {
            CheckWide(batch.BatchSize, data);
            _wide.Forward(data.WideStarts, data.WideIndices, data.WideValues, wideOutputs, dropout);
        }
    }

    private static void CheckWide(int batchSize, in SequenceData data)
    {
        if (data.WideStarts.Length != batchSize + 1)
            throw new ArgumentException($"This network has a wide part: it needs wide features for each of the {batchSize} sequences.", nameof(data));
    }

    /// <summary>Forward for token input (ids of all sequences concatenated, original order).</summary>
    public void Forward(RaggedBatch batch, ReadOnlySpan<int> tokens, Span<float> outputs, SeededRandom? dropout = null)
    {
        if (!Config.TokenInput) throw new InvalidOperationException("This network takes dense input.");
        Forward(batch, SequenceData.OfTokens(tokens), outputs, dropout);
    }

    /// <summary>Forward for dense input: features of all sequences concatenated, [Σ lengths, I], original order.</summary>
    public void Forward(RaggedBatch batch, ReadOnlySpan<float> features, Span<float> outputs, SeededRandom? dropout = null)
    {
        if (Config.TokenInput) throw new InvalidOperationException("This network takes token ids.");
        Forward(batch, SequenceData.OfFeatures(features), outputs, dropout);
    }

    /// <summary>
    /// Initial states of the recurrent stack for the following passes, h0 and (LSTM) c0 [L·D, B, H] in sorted batch
    /// order (see <see cref="RecurrentStack.SetInitialStates"/>); stateful training and generation carry them over.
    /// </summary>
    public void SetInitialStates(ReadOnlySpan<float> h0, ReadOnlySpan<float> c0) => _stack.SetInitialStates(h0, c0);

    /// <summary>Back to zero initial states.</summary>
    public void ClearInitialStates() => _stack.ClearInitialStates();

    /// <summary>Final states of the last forward, hN and (LSTM) cN [L·D, B, H] in sorted batch order.</summary>
    public void FinalStates(RaggedBatch batch, Span<float> hN, Span<float> cN) => _stack.FinalStates(batch, hN, cN);

    /// <summary>Values per state tensor for a batch of <paramref name="batchSize"/>: L·D·B·H.</summary>
    public int StateLength(int batchSize) => Config.NumLayers * _stack.NumDirections * batchSize * Config.HiddenSize;

    /// <summary>
    /// Backward of the last forward given dOutputs (the outputs' layout, original order): adds into
    /// <see cref="ParameterSet.Gradients"/>. <paramref name="data"/> is the last forward's.
    /// </summary>
    public void Backward(RaggedBatch batch, in SequenceData data, ReadOnlySpan<float> dOutputs) => Backward(batch, data, dOutputs, dOutputs);

    /// <summary>
    /// Backward of the last <see cref="ForwardParts"/>: <paramref name="dDeep"/> is the gradient of the pooled head's
    /// outputs, <paramref name="dWide"/> that of the wide part's (each [B, O], original order).
    /// </summary>
    public void BackwardParts(RaggedBatch batch, in SequenceData data, ReadOnlySpan<float> dDeep, ReadOnlySpan<float> dWide)
    {
        if (_wide is null) throw new InvalidOperationException("This network has no wide part.");
        Backward(batch, data, dDeep, dWide);
    }

    private void Backward(RaggedBatch batch, in SequenceData data, ReadOnlySpan<float> dOutputs, ReadOnlySpan<float> dWide)
    {
        int n = batch.TotalSteps;
        var dY = Workspace.Ensure(ref _dY, n * _stack.OutputSize);
        dY.Clear();
        Span<float> dX = default;
        if (_input.HasParameters)
        {
            dX = Workspace.Ensure(ref _dX, n * _input.OutputSize);
            dX.Clear();
        }
        _head.Backward(batch, dOutputs, dY, dX);
        _wide?.Backward(data.WideStarts, data.WideIndices, data.WideValues, dWide);
        _stack.Backward(batch, _x.AsSpan(0, n * _input.OutputSize), dY, default, default, dX);
        if (_input.HasParameters)
            _input.Backward(batch, data, dX);
    }

    /// <summary>
    /// Width P of the pooled representation <see cref="Represent"/> writes: the pooled head's pooled vector (what its
    /// linear layer reads), or for a per-step head the mean and the max of the top layer's outputs over the steps (2·D·H).
    /// </summary>
    public int RepresentationSize => _head is PooledHead pooled ? pooled.RepresentationSize : 2 * _stack.OutputSize;

    /// <summary>Width of one step's top-layer state, D·H.</summary>
    public int StateSize => _stack.OutputSize;

    /// <summary>
    /// Inference without the head's linear layer: the pooled representation of every sequence, [B, P], and the top
    /// layer's state at every step, [Σ lengths, D·H], both in the caller's order (either span may be empty to skip it).
    /// </summary>
    public void Represent(RaggedBatch batch, in SequenceData data, Span<float> pooled, Span<float> states)
    {
        _largestBatchSteps = Math.Max(_largestBatchSteps, batch.TotalSteps);
        var x = Workspace.Ensure(ref _x, batch.TotalSteps * _input.OutputSize);
        _input.Forward(batch, data, x, null);
        var y = _stack.Forward(batch, x, null);
        if (!pooled.IsEmpty)
        {
            if (_head is PooledHead head)
            {
                head.Represent(batch, x, y, pooled);
            }
            else
            {
                _representationPooling ??= new SequencePooling(PoolingKind.Mean | PoolingKind.Max, Config.HiddenSize, _stack.NumDirections);
                var sorted = Workspace.Ensure(ref _sortedPooled, batch.BatchSize * RepresentationSize);
                _representationPooling.Forward(batch, y, sorted);
                batch.SortedToOriginal(sorted, RepresentationSize, pooled);
            }
        }
        if (!states.IsEmpty)
            batch.Unpack(y, _stack.OutputSize, states);
    }

    /// <summary>Backward for token input (pass the same token ids) or dense input (pass an empty span).</summary>
    public void Backward(RaggedBatch batch, ReadOnlySpan<int> tokens, ReadOnlySpan<float> dOutputs) =>
        Backward(batch, SequenceData.OfTokens(tokens), dOutputs);
}
