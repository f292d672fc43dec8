using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using Microsoft.ML.Recurrent;
using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Model;
using Microsoft.ML.Recurrent.Training;

namespace LanguageModel;

/// <summary>
/// The recipe in our library through the internal core API: <see cref="RecurrentNetwork"/> (token input, per-step
/// head over the vocabulary) initialized by <see cref="LanguageModelTrainer.Initialize"/> and trained by
/// <see cref="LanguageModelTrainer.Train"/>, validated after every epoch by the trainer itself. --max-steps stops the
/// trainer from its per-step cancellation hook; a partial last epoch is then validated with
/// <see cref="LanguageModelTrainer.Evaluate(int[])"/>. The trainer's schedule always spans whole epochs.
/// </summary>
internal static class OursLm
{
    private sealed class StopTraining : Exception;

    public static string Describe(int v, LmRecipe r) =>
        $"ours (Microsoft.ML.Recurrent LanguageModelTrainer): Embedding({v},{r.EmbeddingSize}) → Dropout({r.EmbeddingDropout}) → LSTM({r.EmbeddingSize},{r.HiddenSize}, layers {r.Layers}, dropout {r.LayerDropout}) → " +
        $"Dropout({r.OutputDropout}) → Linear({r.HiddenSize},{v}){(r.TieWeights ? " tied" : "")}; Adam, global-norm clip; kernels {Microsoft.ML.Recurrent.Kernels.FusedKernels.Current()}";

    // The trainer's current batch: its TotalSteps are the exact tokens of the step just taken (the first chunk of an
    // epoch is shorter by a random offset the trainer does not report). Falls back to B·T if the field ever goes away.
    private static readonly FieldInfo? BatchField = typeof(LanguageModelTrainer).GetField("_batch", BindingFlags.NonPublic | BindingFlags.Instance);

    public static void Run(LmRecipe r, CharData data, RunResult result, SpeedPlan? speedPlan = null)
    {
        bool speed = speedPlan is not null;
        int v = data.VocabularySize, n = data.Train.Length;
        var config = new NetworkConfig
        {
            Cell = RecurrentCellKind.Lstm,
            VocabularySize = v,
            OutputSize = v,
            InputSize = r.EmbeddingSize,
            HiddenSize = r.HiddenSize,
            NumLayers = r.Layers,
            Dropout = r.LayerDropout,
            InputDropout = r.EmbeddingDropout,
            HeadDropout = r.OutputDropout,
            Head = NetworkHeadKind.PerStep,
            TieWeights = r.TieWeights,
        };
        var network = new RecurrentNetwork(config);
        LanguageModelTrainer.Initialize(network, r.Seed);
        int epochs = r.EffectiveEpochs(n);
        var trainer = new LanguageModelTrainer(network, r.Settings(epochs), r.Bptt);
        result.Settings = Describe(v, r);
        result.Parameters = network.Parameters.Length;
        result.StepsPerEpoch = r.StepsPerEpoch(n);
        result.EpochsPlanned = epochs;
        result.ScheduleSteps = r.EpochScheduleSteps(n);
        long plannedSteps = speed ? 0 : r.MaxSteps > 0 ? Math.Min(r.MaxSteps, (long)epochs * result.StepsPerEpoch) : (long)epochs * result.StepsPerEpoch;
        long logEvery = speed ? long.MaxValue : Math.Max(1, Math.Min(100, plannedSteps / 10));

        var steps = new List<(double Loss, int Tokens)>();
        var stepSeconds = new List<double>();
        var record = new EpochRecord { Epoch = 1 };
        double lossSum = 0, validationSeconds = 0;
        long last = 0;
        int epochChunks = 0;
        var clock = Stopwatch.StartNew();
        double epochStart = 0;
        void OnStep(int k, int count, double loss)
        {
            long now = Stopwatch.GetTimestamp();
            stepSeconds.Add(Stopwatch.GetElapsedTime(last, now).TotalSeconds);   // checkCancelled → gather → forward → backward → step
            int tokens = BatchField?.GetValue(trainer) is RaggedBatch batch ? batch.TotalSteps : r.BatchSize * r.Bptt;
            steps.Add((loss, tokens));
            lossSum += loss * tokens;
            record.Steps++;
            record.Tokens += tokens;
            epochChunks = count;
            if (steps.Count % logEvery == 0)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  ours step {steps.Count}/{plannedSteps} (epoch {record.Epoch}): loss {loss:F4}, {record.Tokens / Math.Max(1e-9, clock.Elapsed.TotalSeconds - validationSeconds - epochStart):F0} tokens/s"));
            last = Stopwatch.GetTimestamp();
        }
        void OnEpoch(RecurrentEpochInfo e)
        {
            validationSeconds += e.ValidationElapsed.TotalSeconds;
            record.Epoch = e.Epoch;
            record.TrainLoss = lossSum / Math.Max(1, record.Tokens);
            record.ValidationLoss = e.ValidationLoss;
            record.TrainSeconds = (e.Elapsed - e.ValidationElapsed).TotalSeconds;
            record.Partial = false;
            result.Epochs.Add(record);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  ours epoch {e.Epoch}/{e.Epochs}: {record.Steps} steps, train loss {record.TrainLoss:F4} (trainer: {e.Loss:F4}), validation {e.ValidationLoss:F4} nats/char, {record.TrainSeconds:F1} s ({e.TokensPerSecond:F0} tokens/s)"));
            record = new EpochRecord { Epoch = e.Epoch + 1 };
            lossSum = 0;
            epochStart = clock.Elapsed.TotalSeconds - validationSeconds;
        }
        void CheckCancelled()
        {
            if (speed ? speedPlan!.Stop(steps.Count) : r.MaxSteps > 0 && steps.Count >= r.MaxSteps) throw new StopTraining();
            last = Stopwatch.GetTimestamp();
        }

        last = Stopwatch.GetTimestamp();
        try
        {
            trainer.Train(data.Train, speed ? null : data.Validation, CheckCancelled, OnEpoch, OnStep);
        }
        catch (StopTraining)
        {
        }
        result.TrainSeconds = clock.Elapsed.TotalSeconds - validationSeconds;
        if (record.Steps > 0)
        {
            // Stopped inside an epoch: validate the weights as they are (the trainer only validates whole epochs).
            record.Partial = record.Steps < epochChunks;
            record.TrainLoss = lossSum / record.Tokens;
            record.TrainSeconds = result.TrainSeconds - epochStart;
            if (!speed) record.ValidationLoss = trainer.Evaluate(data.Validation);
            result.Epochs.Add(record);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  ours epoch {record.Epoch}{(record.Partial ? " (partial)" : "")}: {record.Steps} steps, train loss {record.TrainLoss:F4}, validation {record.ValidationLoss:F4} nats/char, {record.TrainSeconds:F1} s ({record.Tokens / record.TrainSeconds:F0} tokens/s)"));
        }
        result.Summarize(steps);
        result.FinalValidationLoss = result.Epochs.Count > 0 ? result.Epochs[^1].ValidationLoss : double.NaN;
        if (speed) result.SummarizeSpeed(stepSeconds, steps.Select(s => s.Tokens).ToList(), speedPlan!.WarmupTaken);
    }
}
