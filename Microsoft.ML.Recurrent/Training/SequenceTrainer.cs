using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Layers;
using Microsoft.ML.Recurrent.Model;
using Microsoft.ML.Recurrent.Optimizers;

namespace Microsoft.ML.Recurrent.Training;

/// <summary>
/// The mini-batch training loop over an in-memory <see cref="SequenceDataset"/>: bucketed batches shuffled from the
/// seed, forward, loss, backward, gradient clipping, learning-rate schedule, optimizer step; optional validation
/// after every epoch with early stopping, keeping the best epoch's weights. Deterministic for a given seed, and
/// independent of the thread count. Knows nothing of ML.NET: progress and cancellation come in as delegates.
/// </summary>
internal sealed class SequenceTrainer
{
    private readonly RecurrentNetwork _network;
    private readonly Objective _objective;
    private readonly TrainingSettings _settings;
    private readonly Optimizer _optimizer;
    private readonly SeededRandom _random;
    private int[] _labels = [];
    private float[] _frozenValues = [];
    private float[] _outputs = [], _dOutputs = [], _probabilities = [], _stepWeights = [];
    private float[] _wideOutputs = [], _dWideOutputs = [], _combined = [], _dCombined = [];

    public SequenceTrainer(RecurrentNetwork network, Objective objective, TrainingSettings settings)
    {
        if (settings.Epochs <= 0) throw new ArgumentOutOfRangeException(nameof(settings), settings.Epochs, "The number of epochs must be positive.");
        if (settings.BatchSize <= 0) throw new ArgumentOutOfRangeException(nameof(settings), settings.BatchSize, "The batch size must be positive.");
        if (!(settings.WarmupFraction >= 0 && settings.WarmupFraction < 1)) throw new ArgumentOutOfRangeException(nameof(settings), settings.WarmupFraction, "The warm-up fraction must be in [0, 1).");
        if (settings.ClassWeights.Length != 0 && settings.ClassWeights.Length != network.Config.OutputSize)
            throw new ArgumentException($"{settings.ClassWeights.Length} class weights given for {network.Config.OutputSize} classes.", nameof(settings));
        _network = network;
        _objective = objective;
        _settings = settings;
        int length = network.Parameters.Length;
        _optimizer = Optimizer.Create(settings, network.Parameters.Length);
        // One stream for the batch order and dropout, derived from the seed (the initial weights use the seed itself).
        _random = new SeededRandom(settings.Seed ^ 0x5DEECE66DL);
        network.Threads = settings.Threads;
    }

    /// <summary>Epoch at which the kept weights were reached (the best validation epoch, or the last epoch).</summary>
    public int BestEpoch { get; private set; }

    /// <summary>
    /// Trains; with <paramref name="validation"/> evaluates after every epoch, stops early after
    /// <see cref="TrainingSettings.EarlyStoppingPatience"/> epochs without improvement and restores the best epoch's
    /// weights. <paramref name="checkCancelled"/> is called once per batch and may throw to stop.
    /// </summary>
    /// <exception cref="InvalidOperationException">The loss or the gradients became NaN or infinite.</exception>
    public List<RecurrentEpochInfo> Train(SequenceDataset data, SequenceDataset? validation = null, Action? checkCancelled = null,
        Action<RecurrentEpochInfo>? onEpoch = null)
    {
        if (data.PerStepTargets != (_objective == Objective.Tagging))
            throw new ArgumentException("Tagging needs per-step targets; the other objectives per-sequence targets.", nameof(data));
        var reports = new List<RecurrentEpochInfo>();
        int batchesPerEpoch = (data.Count + _settings.BatchSize - 1) / _settings.BatchSize;
        long totalSteps = (long)batchesPerEpoch * _settings.Epochs, step = 0;
        bool useAccuracy = _objective != Objective.Regression && _settings.EarlyStoppingMetric != EarlyStoppingMetric.Loss;
        double bestMetric = double.NaN;
        float[]? bestWeights = null;
        int sinceBest = 0;
        var started = System.Diagnostics.Stopwatch.StartNew();
        // An ensemble trains its two parts at twice the kept scale (halved at the end): a saved model's parts are doubled.
        if (_network.HasWide && _settings.WideMode == WideTrainingMode.Ensemble && _settings.StartsFromSavedModel)
            ScaleEnsembleParts(2f);
        _frozenValues = _network.Parameters.Values.AsSpan(_settings.Frozen.Offset, _settings.Frozen.Length).ToArray();
        var groups = _settings.LayerGroupStarts;
        SetLearningRateGroups(groups);
        // Wide & deep with a loss per part (ensemble, boosted); joint training needs nothing apart.
        bool parts = _network.HasWide && _settings.WideMode != WideTrainingMode.Joint;
        bool ensemble = _network.HasWide && _settings.WideMode == WideTrainingMode.Ensemble;
        for (int epoch = 1; epoch <= _settings.Epochs; epoch++)
        {
            // Gradual unfreezing: the groups below the top `epoch` ones keep the values they start the epoch with.
            int unfrozenFrom = _settings.GradualUnfreezing && groups.Length > 0 ? groups[Math.Max(0, groups.Length - epoch)] : 0;
            var lockedValues = unfrozenFrom > 0 ? _network.Parameters.Values.AsSpan(0, unfrozenFrom).ToArray() : null;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var batches = BatchPlanner.Plan(data.Lengths, _settings.BatchSize, _random);
            double lossSum = 0;
            long examples = 0, tokens = 0, correct = 0, predictions = 0;
            for (int b = 0; b < batches.Count; b++)
            {
                checkCancelled?.Invoke();
                var g = Gather(data, batches[b]);
                // Outputs: one row per sequence, or (tagging) one per step.
                int rows = _network.Head.PerStep ? g.Batch.TotalSteps : g.Batch.BatchSize;
                int size = rows * _network.Config.OutputSize;
                var output = Workspace.Ensure(ref _outputs, size);
                var dOutput = Workspace.Ensure(ref _dOutputs, size);
                _network.Parameters.ZeroGradients();
                var input = g.Data;
                float loss;
                if (parts)
                {
                    loss = ForwardParts(g, output, dOutput, size, ref correct);
                }
                else
                {
                    _network.Forward(g.Batch, input, output, _random);
                    loss = Loss(g, output, Workspace.Ensure(ref _probabilities, size), dOutput, ref correct);
                }
                if (!float.IsFinite(loss))
                    throw new InvalidOperationException($"Training diverged: the loss is {loss} in epoch {epoch}, batch {b + 1}. The model is not kept; try a lower learning rate or gradient clipping.");
                if (parts)
                    _network.BackwardParts(g.Batch, input, dOutput, _dWideOutputs.AsSpan(0, size));
                else
                    _network.Backward(g.Batch, input, dOutput);
                var (frozenOffset, frozenLength) = _settings.Frozen;
                if (frozenLength > 0)
                    _network.Parameters.Gradients.AsSpan(frozenOffset, frozenLength).Clear(); // no update, and no share of the clipping norm
                if (lockedValues is not null)
                    _network.Parameters.Gradients.AsSpan(0, unfrozenFrom).Clear();
                OptimizerStep.ClipAndStep(_optimizer, _settings, _network.Parameters, step++, totalSteps, epoch, "batch", b + 1);
                if (frozenLength > 0)
                    _frozenValues.CopyTo(_network.Parameters.Values.AsSpan(frozenOffset, frozenLength)); // undo weight decay there
                lockedValues?.CopyTo(_network.Parameters.Values.AsSpan(0, unfrozenFrom));
                lossSum += (double)loss * rows;
                predictions += rows;
                examples += g.Batch.BatchSize;
                tokens += g.Batch.TotalSteps;
            }

            double validationLoss = double.NaN, validationAccuracy = double.NaN;
            bool isBest = false;
            var validationClock = System.Diagnostics.Stopwatch.StartNew();
            if (validation is not null)
            {
                if (ensemble) ScaleEnsembleParts(0.5f);     // evaluate the model as it will be kept
                try
                {
                    (validationLoss, validationAccuracy) = Evaluate(validation);
                }
                finally
                {
                    if (ensemble) ScaleEnsembleParts(2f);   // exact: powers of two
                }
                double metric = useAccuracy ? validationAccuracy : -validationLoss;
                if (double.IsNaN(bestMetric) || metric > bestMetric)
                {
                    bestMetric = metric;
                    bestWeights ??= new float[_network.Parameters.Length];
                    _network.Parameters.Values.CopyTo(bestWeights, 0);
                    BestEpoch = epoch;
                    isBest = true;
                    sinceBest = 0;
                }
                else
                {
                    sinceBest++;
                }
            }
            else
            {
                BestEpoch = epoch;
                isBest = true;
            }
            var elapsed = clock.Elapsed;
            var remaining = TimeSpan.FromTicks(started.Elapsed.Ticks / epoch * (_settings.Epochs - epoch));
            // Loss and accuracy are per prediction: per sequence, or (tagging) per token.
            var report = new RecurrentEpochInfo(epoch, _settings.Epochs, lossSum / Math.Max(1, predictions),
                _objective == Objective.Regression ? double.NaN : (double)correct / Math.Max(1, predictions),
                validationLoss, validationAccuracy, isBest, _optimizer.LearningRate, examples, tokens, elapsed, remaining)
            { ValidationElapsed = validation is null ? TimeSpan.Zero : validationClock.Elapsed };
            reports.Add(report);
            onEpoch?.Invoke(report);
            if (_settings.EarlyStoppingPatience > 0 && sinceBest >= _settings.EarlyStoppingPatience)
                break;
        }
        if (bestWeights is not null)
            bestWeights.CopyTo(_network.Parameters.Values, 0);
        if (ensemble)
            ScaleEnsembleParts(0.5f);
        return reports;
    }

    /// <summary>
    /// One forward of a wide &amp; deep network in <see cref="WideTrainingMode.Ensemble"/> or
    /// <see cref="WideTrainingMode.Boosted"/> mode: each part's loss and gradient (the deep part's into
    /// <paramref name="dDeep"/>, the wide part's into <c>_dWideOutputs</c>); returns the loss of the output the model will
    /// have, and counts its correct predictions. NaN or infinity when either part's loss is.
    /// </summary>
    private float ForwardParts(in GatheredBatch g, Span<float> deep, Span<float> dDeep, int size, ref long correct)
    {
        var wide = Workspace.Ensure(ref _wideOutputs, size);
        var dWide = Workspace.Ensure(ref _dWideOutputs, size);
        var probabilities = Workspace.Ensure(ref _probabilities, size);
        deep = deep[..size];
        dDeep = dDeep[..size];
        _network.ForwardParts(g.Batch, g.Data, deep, wide, _random);
        long ignored = 0;
        float deepLoss = Loss(g, deep, probabilities, dDeep, ref ignored);
        if (_settings.WideMode == WideTrainingMode.Boosted)
        {
            // The wide part fits the residual: its prediction is the sum with the deep output held fixed (no gradient
            // flows into it), which is also the model's output.
            System.Numerics.Tensors.TensorPrimitives.Add(wide, deep, wide);
            float sumLoss = Loss(g, wide, probabilities, dWide, ref correct);
            return float.IsFinite(deepLoss) ? sumLoss : deepLoss;
        }
        // Ensemble: the wide part predicts alone, reading the head's bias (fixed); the model's output is the mean of the
        // two predictions (the final halving folds it into the weights).
        int o = _network.Config.OutputSize;
        ReadOnlySpan<float> bias = _network.Parameters.Value(_network.Parameters["head.bias"]);
        for (int r = 0; r < g.Batch.BatchSize; r++)
        {
            var row = wide.Slice(r * o, o);
            System.Numerics.Tensors.TensorPrimitives.Add(row, bias, row);
        }
        float wideLoss = Loss(g, wide, probabilities, dWide, ref ignored);
        var combined = Workspace.Ensure(ref _combined, size);
        System.Numerics.Tensors.TensorPrimitives.Add(deep, wide, combined);
        System.Numerics.Tensors.TensorPrimitives.Multiply(combined, 0.5f, combined);
        float loss = Loss(g, combined, probabilities, Workspace.Ensure(ref _dCombined, size), ref correct);
        return !float.IsFinite(deepLoss) ? deepLoss : !float.IsFinite(wideLoss) ? wideLoss : loss;
    }

    /// <summary>
    /// Multiplies the head's linear weight and the wide weight by <paramref name="factor"/>: with ½, the network's one
    /// output becomes ½(deep + wide + bias) — the ensemble's mean of the two parts' predictions, each with the bias.
    /// </summary>
    private void ScaleEnsembleParts(float factor)
    {
        var p = _network.Parameters;
        foreach (var name in (ReadOnlySpan<string>)["head.weight", "wide.weight"])
        {
            var values = p.Value(p[name]);
            System.Numerics.Tensors.TensorPrimitives.Multiply(values, factor, values);
        }
    }

    /// <summary>
    /// Per-group learning rates: the discriminative factor down the layer groups, and the wide part's factor on the
    /// wide weights (registered last, inside the head's group).
    /// </summary>
    private void SetLearningRateGroups(int[] groups)
    {
        var starts = new List<int>();
        var scales = new List<float>();
        if (groups.Length == 0) groups = [0];
        for (int g = 0; g < groups.Length; g++)
        {
            starts.Add(groups[g]);
            scales.Add(MathF.Pow(_settings.DiscriminativeFactor, groups.Length - 1 - g));
        }
        if (_network.HasWide && _settings.WideFactor != 1f)
        {
            starts.Add(_network.Parameters["wide.weight"].Offset);
            scales.Add(_settings.WideFactor);
        }
        if (scales.Any(s => s != 1f))
            _optimizer.SetGroups([.. starts], [.. scales]);
    }

    /// <summary>The learning rate at <paramref name="step"/> of <paramref name="totalSteps"/> (see <see cref="LearningRateSchedules.Rate"/>).</summary>
    internal float ScheduledRate(long step, long totalSteps) => LearningRateSchedules.Rate(_settings, step, totalSteps);

    /// <summary>Mean loss and accuracy (per sequence, or per token for tagging) of the current weights on <paramref name="data"/> (no dropout).</summary>
    public (double Loss, double Accuracy) Evaluate(SequenceDataset data)
    {
        var network = _network.CreateInferenceSibling();
        network.Threads = _settings.Threads;
        int size = Math.Max(_settings.BatchSize, 64);
        float[] outputs = [], probabilities = [], dOutputs = [];
        // Sorted by length: similar lengths per batch, and the result does not depend on any random order.
        var order = Enumerable.Range(0, data.Count).OrderBy(i => data.Lengths[i]).ToArray();
        double lossSum = 0, weightSum = 0;
        long correct = 0, predictions = 0;
        for (int start = 0; start < order.Length; start += size)
        {
            var g = Gather(data, order.AsSpan(start, Math.Min(size, order.Length - start)).ToArray());
            int rows = network.Head.PerStep ? g.Batch.TotalSteps : g.Batch.BatchSize;
            int length = rows * _network.Config.OutputSize;
            var output = Workspace.Ensure(ref outputs, length);
            network.Forward(g.Batch, g.Data, output);
            float loss = Loss(g, output, Workspace.Ensure(ref probabilities, length), Workspace.Ensure(ref dOutputs, length), ref correct);
            double w = g.Weights.Length == 0 ? rows : _network.Head.PerStep ? WeightedSteps(g) : g.Weights.Sum();
            lossSum += loss * w;
            weightSum += w;
            predictions += rows;
        }
        return (lossSum / Math.Max(weightSum, 1e-12), _objective == Objective.Regression ? double.NaN : (double)correct / Math.Max(1, predictions));
    }

    private static double WeightedSteps(in GatheredBatch g)
    {
        double total = 0;
        for (int i = 0; i < g.Batch.BatchSize; i++) total += (double)g.Weights[i] * g.Batch.Lengths[i];
        return total;
    }

    private float Loss(in GatheredBatch g, ReadOnlySpan<float> output, Span<float> probabilities, Span<float> dOutput, ref long correct)
    {
        int classes = _network.Config.OutputSize;
        switch (_objective)
        {
            case Objective.Multiclass:
            {
                int count = g.Batch.BatchSize;
                var labels = Workspace.Ensure(ref _labels, count);
                for (int i = 0; i < count; i++) labels[i] = (int)g.Targets[i];
                float loss = SoftmaxCrossEntropy.Forward(count, classes, output, labels, _settings.ClassWeights, g.Weights, probabilities, dOutput);
                correct += CountCorrect(output, labels, classes);
                return loss;
            }
            case Objective.Tagging when _network.Head is PerStepHead { Crf: not null } head:
            {
                // The CRF's negative log-likelihood of each gold tag sequence, per token; accuracy of the Viterbi tags.
                int steps = g.Batch.TotalSteps;
                float loss = head.CrfLoss(g.Batch, output, g.StepTargets, dOutput, 1f / steps) / steps;
                var decoded = Workspace.Ensure(ref _labels, steps);
                head.Decode(g.Batch, output, decoded);
                for (int i = 0; i < steps; i++)
                    if (decoded[i] == g.StepTargets[i]) correct++;
                return loss;
            }
            case Objective.Tagging:
            {
                // Every step is an example; a sequence's weight applies to each of its steps.
                int steps = g.Batch.TotalSteps;
                ReadOnlySpan<float> stepWeights = default;
                if (g.Weights.Length != 0)
                {
                    var w = Workspace.Ensure(ref _stepWeights, steps);
                    for (int i = 0; i < g.Batch.BatchSize; i++)
                        w.Slice(g.Batch.SequenceStarts[i], g.Batch.Lengths[i]).Fill(g.Weights[i]);
                    stepWeights = w;
                }
                float loss = SoftmaxCrossEntropy.Forward(steps, classes, output, g.StepTargets, _settings.ClassWeights, stepWeights, probabilities, dOutput);
                correct += CountCorrect(output, g.StepTargets, classes);
                return loss;
            }
            case Objective.Binary:
            {
                float loss = BinaryLogisticLoss.Forward(output, g.Targets, g.Weights, probabilities, dOutput);
                for (int i = 0; i < g.Targets.Length; i++)
                    if ((output[i] > 0) == (g.Targets[i] > 0.5f)) correct++;
                return loss;
            }
            default:
                return SquaredLoss.Forward(output, g.Targets, g.Weights, dOutput);
        }
    }

    private static long CountCorrect(ReadOnlySpan<float> output, ReadOnlySpan<int> labels, int classes)
    {
        long correct = 0;
        for (int i = 0; i < labels.Length; i++)
            if (System.Numerics.Tensors.TensorPrimitives.IndexOfMax(output.Slice(i * classes, classes)) == labels[i]) correct++;
        return correct;
    }

    /// <summary>One batch collected from a dataset: the layout, the inputs and the targets, the sequences in the batch's order.</summary>
    internal readonly struct GatheredBatch
    {
        public RaggedBatch Batch { get; init; }
        public int[] Tokens { get; init; }
        public float[] Features { get; init; }
        /// <summary>Per-sequence targets [B] (empty for tagging).</summary>
        public float[] Targets { get; init; }
        /// <summary>Per-sequence weights [B], or empty.</summary>
        public float[] Weights { get; init; }
        /// <summary>Per-step targets [Σ lengths] (tagging), else empty.</summary>
        public int[] StepTargets { get; init; }
        /// <summary>Characters of every token, and each token's character count (character input), else empty.</summary>
        public int[] Characters { get; init; }
        public int[] CharacterLengths { get; init; }
        /// <summary>Wide features of the batch's sequences (wide &amp; deep), or null.</summary>
        public SparseRows? Wide { get; init; }

        public SequenceData Data => new()
        {
            Tokens = Tokens, Features = Features, Characters = Characters, CharacterLengths = CharacterLengths,
            WideStarts = Wide?.Starts, WideIndices = Wide?.Indices, WideValues = Wide?.Values,
        };
    }

    /// <summary>Collects the examples of one batch (in the given order) into a ragged batch.</summary>
    internal static GatheredBatch Gather(SequenceDataset data, int[] indices)
    {
        var lengths = new int[indices.Length];
        var targets = data.PerStepTargets ? [] : new float[indices.Length];
        var weights = data.Weights.Length == 0 ? [] : new float[indices.Length];
        for (int i = 0; i < indices.Length; i++)
        {
            lengths[i] = data.Lengths[indices[i]];
            if (!data.PerStepTargets) targets[i] = data.Targets[indices[i]];
            if (weights.Length != 0) weights[i] = data.Weights[indices[i]];
        }
        var batch = new RaggedBatch(lengths);
        int f = data.FeaturesPerStep;
        var tokens = data.TokenInput ? new int[batch.TotalSteps] : [];
        var features = data.TokenInput ? [] : new float[(long)batch.TotalSteps * f];
        var stepTargets = data.PerStepTargets ? new int[batch.TotalSteps] : [];
        var characterLengths = data.HasCharacters ? new int[batch.TotalSteps] : [];
        long characterCount = 0;
        if (data.HasCharacters)
            foreach (int index in indices)
                characterCount += data.CharacterStarts[data.Starts[index] + data.Lengths[index]] - data.CharacterStarts[data.Starts[index]];
        var characters = new int[characterCount];
        long characterAt = 0;
        for (int i = 0; i < indices.Length; i++)
        {
            long start = data.Starts[indices[i]];
            if (data.TokenInput)
                Array.Copy(data.Tokens, start, tokens, batch.SequenceStarts[i], lengths[i]);
            else
                Array.Copy(data.Features, start * f, features, (long)batch.SequenceStarts[i] * f, (long)lengths[i] * f);
            if (data.PerStepTargets)
                Array.Copy(data.StepTargets, start, stepTargets, batch.SequenceStarts[i], lengths[i]);
            if (data.HasCharacters)
            {
                Array.Copy(data.CharacterLengths, start, characterLengths, batch.SequenceStarts[i], lengths[i]);
                long first = data.CharacterStarts[start], count = data.CharacterStarts[start + lengths[i]] - first;
                Array.Copy(data.Characters, first, characters, characterAt, count);
                characterAt += count;
            }
        }
        return new GatheredBatch
        {
            Batch = batch, Tokens = tokens, Features = features, Targets = targets, Weights = weights, StepTargets = stepTargets,
            Characters = characters, CharacterLengths = characterLengths, Wide = data.Wide?.Subset(indices, data.WideSize),
        };
    }
}
