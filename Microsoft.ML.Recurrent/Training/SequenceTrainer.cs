using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Layers;
using Microsoft.ML.Recurrent.Model;
using Microsoft.ML.Recurrent.Optimizers;

namespace Microsoft.ML.Recurrent.Training;

/// <summary>
/// The mini-batch training loop over an in-memory <see cref="SequenceDataset"/>: bucketed batches shuffled from the
/// seed, forward, loss, backward, gradient clipping, optimizer step. Deterministic for a given seed.
/// Knows nothing of ML.NET: progress and cancellation come in as delegates.
/// </summary>
internal sealed class SequenceTrainer
{
    private readonly RecurrentNetwork _network;
    private readonly Objective _objective;
    private readonly TrainingSettings _settings;
    private readonly Optimizer _optimizer;
    private readonly SeededRandom _random;

    public SequenceTrainer(RecurrentNetwork network, Objective objective, TrainingSettings settings)
    {
        if (settings.Epochs <= 0) throw new ArgumentOutOfRangeException(nameof(settings), settings.Epochs, "The number of epochs must be positive.");
        if (settings.BatchSize <= 0) throw new ArgumentOutOfRangeException(nameof(settings), settings.BatchSize, "The batch size must be positive.");
        _network = network;
        _objective = objective;
        _settings = settings;
        int length = network.Parameters.Length;
        _optimizer = settings.Optimizer switch
        {
            OptimizerKind.Adam => new Adam(length, settings.LearningRate, weightDecay: settings.WeightDecay),
            OptimizerKind.AdamW => new Adam(length, settings.LearningRate, weightDecay: settings.WeightDecay, decoupled: true),
            OptimizerKind.Sgd => new Sgd(length, settings.LearningRate, settings.Momentum, settings.WeightDecay),
            _ => throw new ArgumentOutOfRangeException(nameof(settings), settings.Optimizer, "Unknown optimizer."),
        };
        // One stream for the batch order and dropout, derived from the seed (the initial weights use the seed itself).
        _random = new SeededRandom(settings.Seed ^ 0x5DEECE66DL);
    }

    /// <summary>
    /// Trains for the configured number of epochs. <paramref name="checkCancelled"/> is called once per batch and
    /// may throw to stop; <paramref name="onEpoch"/> receives each epoch's report.
    /// </summary>
    /// <exception cref="InvalidOperationException">The loss or the gradients became NaN or infinite.</exception>
    public List<EpochReport> Train(SequenceDataset data, Action? checkCancelled = null, Action<EpochReport>? onEpoch = null)
    {
        var reports = new List<EpochReport>();
        int outputs = _network.Config.OutputSize;
        var outputBuffer = new float[_settings.BatchSize * outputs];
        var probabilities = new float[outputBuffer.Length];
        var dOutputs = new float[outputBuffer.Length];
        for (int epoch = 1; epoch <= _settings.Epochs; epoch++)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var batches = BatchPlanner.Plan(data.Lengths, _settings.BatchSize, _random);
            double lossSum = 0;
            long examples = 0, tokens = 0, correct = 0;
            for (int b = 0; b < batches.Count; b++)
            {
                checkCancelled?.Invoke();
                var indices = batches[b];
                var batch = Gather(data, indices, out var batchTokens, out var batchFeatures, out var targets, out var weights);
                int count = indices.Length;
                var output = outputBuffer.AsSpan(0, count * outputs);
                var dOutput = dOutputs.AsSpan(0, count * outputs);
                _network.Parameters.ZeroGradients();
                if (data.TokenInput) _network.Forward(batch, batchTokens, output, _random);
                else _network.Forward(batch, batchFeatures, output, _random);
                float loss = Loss(output, targets, weights, probabilities.AsSpan(0, count * outputs), dOutput, ref correct);
                if (!float.IsFinite(loss))
                    throw new InvalidOperationException($"Training diverged: the loss is {loss} in epoch {epoch}, batch {b + 1}. Try a lower learning rate or gradient clipping.");
                _network.Backward(batch, batchTokens, dOutput);
                float norm = _settings.GradientClipNorm > 0
                    ? GradientClipping.ClipByGlobalNorm(_network.Parameters.Gradients, _settings.GradientClipNorm)
                    : GradientNorm(_network.Parameters.Gradients);
                if (!float.IsFinite(norm))
                    throw new InvalidOperationException($"Training diverged: the gradient norm is {norm} in epoch {epoch}, batch {b + 1}. Try a lower learning rate or gradient clipping.");
                _optimizer.Step(_network.Parameters.Values, _network.Parameters.Gradients);
                lossSum += (double)loss * count;
                examples += count;
                tokens += batch.TotalSteps;
            }
            var report = new EpochReport(epoch, lossSum / Math.Max(1, examples),
                _objective == Objective.Regression ? double.NaN : (double)correct / Math.Max(1, examples), examples, tokens, clock.Elapsed);
            reports.Add(report);
            onEpoch?.Invoke(report);
        }
        return reports;
    }

    private float Loss(ReadOnlySpan<float> output, float[] targets, float[] weights, Span<float> probabilities, Span<float> dOutput, ref long correct)
    {
        int count = targets.Length, classes = _network.Config.OutputSize;
        switch (_objective)
        {
            case Objective.Multiclass:
            {
                var labels = new int[count];
                for (int i = 0; i < count; i++) labels[i] = (int)targets[i];
                float loss = SoftmaxCrossEntropy.Forward(count, classes, output, labels, default, weights, probabilities, dOutput);
                for (int i = 0; i < count; i++)
                    if (System.Numerics.Tensors.TensorPrimitives.IndexOfMax(output.Slice(i * classes, classes)) == labels[i]) correct++;
                return loss;
            }
            case Objective.Binary:
            {
                float loss = BinaryLogisticLoss.Forward(output, targets, weights, probabilities, dOutput);
                for (int i = 0; i < count; i++)
                    if ((output[i] > 0) == (targets[i] > 0.5f)) correct++;
                return loss;
            }
            default:
                return SquaredLoss.Forward(output, targets, weights, dOutput);
        }
    }

    private static float GradientNorm(ReadOnlySpan<float> gradients)
    {
        double sum = 0;
        foreach (float g in gradients) sum += (double)g * g;
        return (float)Math.Sqrt(sum);
    }

    /// <summary>Collects the examples of one batch (in the given order) into a ragged batch.</summary>
    internal static RaggedBatch Gather(SequenceDataset data, int[] indices, out int[] tokens, out float[] features, out float[] targets, out float[] weights)
    {
        var lengths = new int[indices.Length];
        targets = new float[indices.Length];
        weights = data.Weights.Length == 0 ? [] : new float[indices.Length];
        for (int i = 0; i < indices.Length; i++)
        {
            lengths[i] = data.Lengths[indices[i]];
            targets[i] = data.Targets[indices[i]];
            if (weights.Length != 0) weights[i] = data.Weights[indices[i]];
        }
        var batch = new RaggedBatch(lengths);
        int f = data.FeaturesPerStep;
        tokens = data.TokenInput ? new int[batch.TotalSteps] : [];
        features = data.TokenInput ? [] : new float[(long)batch.TotalSteps * f];
        for (int i = 0; i < indices.Length; i++)
        {
            long start = data.Starts[indices[i]];
            if (data.TokenInput)
                Array.Copy(data.Tokens, start, tokens, batch.SequenceStarts[i], lengths[i]);
            else
                Array.Copy(data.Features, start * f, features, (long)batch.SequenceStarts[i] * f, (long)lengths[i] * f);
        }
        return batch;
    }
}
