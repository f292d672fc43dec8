using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Layers;
using Microsoft.ML.Recurrent.Model;
using Microsoft.ML.Recurrent.Optimizers;

namespace Microsoft.ML.Recurrent.Training;

/// <summary>
/// Trains a next-token model (a per-step head over the vocabulary) on one long stream of token ids by truncated
/// back-propagation through time, statefully, as PyTorch's <c>word_language_model</c> example and char-rnn do:
/// <list type="number">
/// <item>The stream is cut into <see cref="TrainingSettings.BatchSize"/> equal columns (the remainder is dropped), read
/// side by side: batch row b always continues column b.</item>
/// <item>Each step takes the next <see cref="Bptt"/> tokens of every column as inputs and the tokens one position later
/// as targets; the loss is the mean cross-entropy (nats per token).</item>
/// <item>The final states of one step are the initial states of the next, detached: the gradient stops at the chunk
/// boundary, the state does not. Each epoch starts from zero states, with the chunk boundaries shifted by a random
/// offset (the first chunk is shorter), so no boundary is fixed for the whole training.</item>
/// </list>
/// Validation reads a second stream the same way (columns, carried state, no dropout) and reports its mean loss.
/// Deterministic for a given seed, and independent of the thread count. Knows nothing of ML.NET.
/// </summary>
internal sealed class LanguageModelTrainer
{
    private readonly RecurrentNetwork _network;
    private readonly TrainingSettings _settings;
    private readonly Optimizer _optimizer;
    private readonly SeededRandom _random;
    private float[] _outputs = [], _dOutputs = [], _probabilities = [];
    private float[] _h = [], _c = [];
    private int[] _inputs = [], _targets = [];

    /// <summary>Tokens per truncated back-propagation step.</summary>
    public int Bptt { get; }

    /// <param name="network">A per-step network whose outputs are the vocabulary (token input).</param>
    /// <param name="settings">The recipe: <see cref="TrainingSettings.BatchSize"/> is the number of parallel columns.</param>
    /// <param name="bptt">Tokens per truncated back-propagation step.</param>
    public LanguageModelTrainer(RecurrentNetwork network, TrainingSettings settings, int bptt)
    {
        if (!network.Config.TokenInput || network.Config.Head != NetworkHeadKind.PerStep || network.Config.OutputSize != network.Config.VocabularySize)
            throw new ArgumentException("A language model needs token input and a per-step head over the same vocabulary.", nameof(network));
        if (network.Config.Bidirectional)
            throw new ArgumentException("A language model reads left to right: the stack must be unidirectional.", nameof(network));
        if (settings.Epochs <= 0) throw new ArgumentOutOfRangeException(nameof(settings), settings.Epochs, "The number of epochs must be positive.");
        if (settings.BatchSize <= 0) throw new ArgumentOutOfRangeException(nameof(settings), settings.BatchSize, "The batch size must be positive.");
        if (bptt <= 0) throw new ArgumentOutOfRangeException(nameof(bptt), bptt, "The back-propagation length must be positive.");
        _network = network;
        _settings = settings;
        Bptt = bptt;
        _optimizer = Optimizer.Create(settings, network.Parameters.Length);
        _random = new SeededRandom(settings.Seed ^ 0x5DEECE66DL);
        network.Threads = settings.Threads;
    }

    /// <summary>Epoch whose weights were kept (the best validation epoch, or the last).</summary>
    public int BestEpoch { get; private set; }

    /// <summary>
    /// The language-model initialization of PyTorch's <c>word_language_model</c> example on top of the network's
    /// default one: embedding and output weights U(−0.1, 0.1), output bias 0. (The recurrent layers keep PyTorch's
    /// U(−1/√H, 1/√H).) A unit-variance embedding read by a tied output layer would start with huge logits.
    /// </summary>
    public static void Initialize(RecurrentNetwork network, long seed)
    {
        network.Initialize(seed);
        var random = new SeededRandom(seed ^ 0x1A4E_6D0DL);
        var ps = network.Parameters;
        random.FillUniform(ps.Value(ps["embedding.weight"]), -0.1f, 0.1f);
        if (!network.Config.TieWeights)
            random.FillUniform(ps.Value(ps["head.weight"]), -0.1f, 0.1f);
        ps.Value(ps["head.bias"]).Clear();
        if (network.Config.PaddingId >= 0)
            ps.Value(ps["embedding.weight"]).Slice(network.Config.PaddingId * network.Config.InputSize, network.Config.InputSize).Clear();
    }

    /// <summary>
    /// Trains on <paramref name="stream"/>; with <paramref name="validation"/>, evaluates after every epoch, stops
    /// early after <see cref="TrainingSettings.EarlyStoppingPatience"/> epochs without a lower validation loss and keeps
    /// the best epoch's weights. <paramref name="checkCancelled"/> runs once per step and may throw;
    /// <paramref name="onStep"/> gets (step within the epoch, steps in the epoch, the step's loss).
    /// </summary>
    /// <exception cref="ArgumentException">The stream is too short for one step of every column.</exception>
    /// <exception cref="InvalidOperationException">The loss or the gradients became NaN or infinite.</exception>
    public List<RecurrentEpochInfo> Train(int[] stream, int[]? validation = null, Action? checkCancelled = null,
        Action<RecurrentEpochInfo>? onEpoch = null, Action<int, int, double>? onStep = null)
    {
        int b = _settings.BatchSize;
        int columnLength = stream.Length / b;
        if (columnLength < 2)
            throw new ArgumentException($"The training stream holds {stream.Length:N0} tokens, too few for {b} columns of at least 2 tokens; lower the batch size or add text.", nameof(stream));
        CheckIds(stream, "training");
        if (validation is not null) CheckIds(validation, "validation");
        var reports = new List<RecurrentEpochInfo>();
        int predictionsPerColumn = columnLength - 1;
        int stepsPerEpoch = (predictionsPerColumn + Bptt - 1) / Bptt + 1; // at most: one more with a random first chunk
        long totalSteps = (long)stepsPerEpoch * _settings.Epochs, step = 0;
        var best = new EarlyStopping(_network.Parameters, _settings.EarlyStoppingPatience);
        var started = System.Diagnostics.Stopwatch.StartNew();
        int stateLength = _network.StateLength(b);
        bool lstm = _network.Config.Cell == RecurrentCellKind.Lstm;
        var (frozenOffset, frozenLength) = _settings.Frozen;
        var frozenValues = _network.Parameters.Values.AsSpan(frozenOffset, frozenLength).ToArray();
        for (int epoch = 1; epoch <= _settings.Epochs; epoch++)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            _network.ClearInitialStates();
            var h = Workspace.Ensure(ref _h, stateLength);
            var c = lstm ? Workspace.Ensure(ref _c, stateLength) : default;
            int offset = Bptt > 1 ? _random.NextInt(Bptt) : 0; // length of the first, shorter chunk (0 = none)
            var chunks = Chunks(predictionsPerColumn, offset);
            double lossSum = 0;
            long tokens = 0;
            for (int k = 0; k < chunks.Count; k++)
            {
                checkCancelled?.Invoke();
                var (start, length) = chunks[k];
                var batch = Gather(stream, columnLength, start, length);
                int n = batch.TotalSteps, v = _network.Config.OutputSize;
                var outputs = Workspace.Ensure(ref _outputs, n * v);
                var dOutputs = Workspace.Ensure(ref _dOutputs, n * v);
                _network.Parameters.ZeroGradients();
                _network.Forward(batch, _inputs.AsSpan(0, n), outputs, _random);
                float loss = SoftmaxCrossEntropy.Forward(n, v, outputs, _targets.AsSpan(0, n), default, default,
                    Workspace.Ensure(ref _probabilities, n * v), dOutputs);
                if (!float.IsFinite(loss))
                    throw new InvalidOperationException($"Training diverged: the loss is {loss} in epoch {epoch}, step {k + 1}. The model is not kept; try a lower learning rate or gradient clipping.");
                _network.FinalStates(batch, h, c);
                _network.Backward(batch, _inputs.AsSpan(0, n), dOutputs);
                // The next chunk continues every column from here (detached: its backward stops at the boundary).
                _network.SetInitialStates(h, c);
                if (frozenLength > 0)
                    _network.Parameters.Gradients.AsSpan(frozenOffset, frozenLength).Clear();
                OptimizerStep.ClipAndStep(_optimizer, _settings, _network.Parameters, step++, totalSteps, epoch, "step", k + 1);
                if (frozenLength > 0)
                    frozenValues.CopyTo(_network.Parameters.Values.AsSpan(frozenOffset, frozenLength));
                lossSum += (double)loss * n;
                tokens += n;
                onStep?.Invoke(k + 1, chunks.Count, loss);
            }
            _network.ClearInitialStates();

            double validationLoss = double.NaN;
            bool isBest = true;
            var validationClock = System.Diagnostics.Stopwatch.StartNew();
            if (validation is not null)
            {
                validationLoss = Evaluate(validation);
                isBest = best.Offer(epoch, validationLoss);
            }
            else
            {
                best.Unvalidated(epoch);
            }
            BestEpoch = best.Epoch;
            var remaining = TimeSpan.FromTicks(started.Elapsed.Ticks / epoch * (_settings.Epochs - epoch));
            var report = new RecurrentEpochInfo(epoch, _settings.Epochs, lossSum / Math.Max(1, tokens), double.NaN,
                validationLoss, double.NaN, isBest, _optimizer.LearningRate, b, tokens, clock.Elapsed, remaining)
            { ValidationElapsed = validation is null ? TimeSpan.Zero : validationClock.Elapsed };
            reports.Add(report);
            onEpoch?.Invoke(report);
            if (best.ShouldStop)
                break;
        }
        best.Restore();
        return reports;
    }

    /// <summary>The chunks (start, length) of predictions within a column: a first chunk of <paramref name="offset"/> tokens (if any), then <see cref="Bptt"/> each.</summary>
    private List<(int Start, int Length)> Chunks(int predictions, int offset)
    {
        var chunks = new List<(int, int)>();
        int at = 0;
        if (offset > 0 && offset < predictions)
        {
            chunks.Add((0, offset));
            at = offset;
        }
        for (; at < predictions; at += Bptt)
            chunks.Add((at, Math.Min(Bptt, predictions - at)));
        return chunks;
    }

    /// <summary>Inputs and targets of one chunk of every column into <see cref="_inputs"/>/<see cref="_targets"/> (sequence b = column b).</summary>
    private RaggedBatch Gather(int[] stream, int columnLength, int start, int length)
    {
        int b = _settings.BatchSize;
        var inputs = Workspace.Ensure(ref _inputs, b * length);
        var targets = Workspace.Ensure(ref _targets, b * length);
        for (int j = 0; j < b; j++)
        {
            int from = j * columnLength + start;
            stream.AsSpan(from, length).CopyTo(inputs.Slice(j * length, length));
            stream.AsSpan(from + 1, length).CopyTo(targets.Slice(j * length, length));
        }
        Span<int> lengths = b <= 1024 ? stackalloc int[b] : new int[b];
        lengths.Fill(length);
        _batch ??= new RaggedBatch(lengths);
        _batch.Reset(lengths);
        return _batch;
    }

    private RaggedBatch? _batch;

    /// <summary>
    /// Mean cross-entropy (nats per token) of the current weights over <paramref name="stream"/>, read in
    /// <see cref="TrainingSettings.BatchSize"/> columns (fewer when the stream is short) with the state carried across
    /// chunks, no dropout. Each column's first token is only an input, so a stream of N tokens in B columns scores N − B
    /// predictions (the remainder of N / B is dropped).
    /// </summary>
    public double Evaluate(int[] stream)
    {
        var network = _network.CreateInferenceSibling();
        network.Threads = _settings.Threads;
        return Evaluate(network, stream, _settings.BatchSize, Math.Max(Bptt, 64));
    }

    /// <summary>
    /// Mean nats per token of <paramref name="network"/> over <paramref name="stream"/> in <paramref name="columns"/>
    /// columns (fewer when the stream is short) and chunks of <paramref name="chunk"/> tokens, state carried, no dropout.
    /// </summary>
    internal static double Evaluate(RecurrentNetwork network, int[] stream, int columns, int chunk)
    {
        int b = Math.Max(1, Math.Min(columns, stream.Length / 2));
        int columnLength = stream.Length / b;
        if (columnLength < 2)
            throw new ArgumentException($"The stream holds {stream.Length} tokens; at least 2 are needed.", nameof(stream));
        int v = network.Config.OutputSize, stateLength = network.StateLength(b);
        bool lstm = network.Config.Cell == RecurrentCellKind.Lstm;
        var h = new float[stateLength];
        var c = lstm ? new float[stateLength] : [];
        float[] outputs = [], probabilities = [], dOutputs = [];
        int[] inputs = [], targets = [];
        var lengths = new int[b];
        RaggedBatch? batch = null;
        double total = 0;
        long count = 0;
        network.ClearInitialStates();
        for (int start = 0; start < columnLength - 1; start += chunk)
        {
            int length = Math.Min(chunk, columnLength - 1 - start);
            var x = Workspace.Ensure(ref inputs, b * length);
            var y = Workspace.Ensure(ref targets, b * length);
            for (int j = 0; j < b; j++)
            {
                int from = j * columnLength + start;
                stream.AsSpan(from, length).CopyTo(x.Slice(j * length, length));
                stream.AsSpan(from + 1, length).CopyTo(y.Slice(j * length, length));
            }
            Array.Fill(lengths, length);
            batch ??= new RaggedBatch(lengths);
            batch.Reset(lengths);
            int n = b * length;
            var o = Workspace.Ensure(ref outputs, n * v);
            network.Forward(batch, x, o);
            float loss = SoftmaxCrossEntropy.Forward(n, v, o, y, default, default, Workspace.Ensure(ref probabilities, n * v), Workspace.Ensure(ref dOutputs, n * v));
            network.FinalStates(batch, h, c);
            network.SetInitialStates(h, c);
            total += (double)loss * n;
            count += n;
        }
        network.ClearInitialStates();
        return total / count;
    }

    private void CheckIds(int[] stream, string what)
    {
        int v = _network.Config.VocabularySize;
        for (int i = 0; i < stream.Length; i++)
            if ((uint)stream[i] >= (uint)v)
                throw new ArgumentOutOfRangeException(nameof(stream), stream[i], $"Token id {stream[i]} at position {i} of the {what} stream is outside the vocabulary [0, {v}).");
    }
}
