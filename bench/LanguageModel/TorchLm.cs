using System.Diagnostics;
using System.Globalization;
using Accuracy;
using SeededRandom = Microsoft.ML.Recurrent.Core.SeededRandom;
using Microsoft.ML.Recurrent.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LanguageModel;

/// <summary>
/// The recipe in libtorch through TorchSharp-cpu: nn.Embedding → dropout → nn.LSTM (batch_first, dropout between
/// layers) → dropout → nn.Linear (optionally tied to the embedding), trained exactly as LanguageModelTrainer trains ours:
/// B columns, stateful TBPTT with detached carried states, a random first-chunk offset per epoch (drawn from the same
/// generator and seed as ours, so epoch 1's offset is the same), mean cross-entropy, optim.Adam, clip_grad_norm_, and
/// the learning rate of our own <see cref="LearningRateSchedules.Rate"/> set before every step.
/// </summary>
internal sealed class TorchLm : IDisposable
{
    private readonly Embedding _embedding;
    private readonly LSTM _lstm;
    private readonly Linear _decoder;
    private readonly Dropout _embeddingDropout, _outputDropout;
    private readonly int _layers, _hidden, _vocabulary;

    public List<Parameter> Parameters { get; }

    private TorchLm(int v, LmRecipe r)
    {
        _layers = r.Layers;
        _hidden = r.HiddenSize;
        _vocabulary = v;
        _embedding = nn.Embedding(v, r.EmbeddingSize);
        _embeddingDropout = nn.Dropout(r.EmbeddingDropout);
        _lstm = nn.LSTM(r.EmbeddingSize, r.HiddenSize, numLayers: r.Layers, bias: true, batchFirst: true, dropout: r.LayerDropout);
        _outputDropout = nn.Dropout(r.OutputDropout);
        _decoder = nn.Linear(r.HiddenSize, v);
        using (no_grad())
        {
            nn.init.uniform_(_embedding.weight, -0.1, 0.1);
            if (r.TieWeights)
                _decoder.weight = _embedding.weight!;
            else
                nn.init.uniform_(_decoder.weight, -0.1, 0.1);
            nn.init.zeros_(_decoder.bias);
        }
        // Each distinct parameter once: tied, the shared weight would otherwise get two Adam updates and count twice in
        // the clipping norm (the wrappers' handles differ, so the decoder's weight is left out by name).
        Parameters = _embedding.parameters().Concat(_lstm.parameters())
            .Concat(r.TieWeights ? [_decoder.bias!] : _decoder.parameters()).ToList();
        CheckTied(r);
    }

    /// <summary>Tied: the decoder's weight must be the embedding's (checked after the init and after training: one tensor, equal values).</summary>
    private void CheckTied(LmRecipe r)
    {
        if (!r.TieWeights) return;
        using var eq = _decoder.weight!.eq(_embedding.weight!);
        using var same = eq.all();
        if (!same.item<bool>())
            throw new InvalidOperationException("tied weights: the decoder's weight differs from the embedding's");
    }

    public static string Describe(int v, LmRecipe r) =>
        $"libtorch {__version__} (TorchSharp-cpu): Embedding({v},{r.EmbeddingSize}) → Dropout({r.EmbeddingDropout}) → LSTM({r.EmbeddingSize},{r.HiddenSize}, layers {r.Layers}, dropout {r.LayerDropout}) → " +
        $"Dropout({r.OutputDropout}) → Linear({r.HiddenSize},{v}){(r.TieWeights ? " tied" : "")}; Adam, clip_grad_norm_";

    public void Dispose()
    {
        _embedding.Dispose();
        _lstm.Dispose();
        _decoder.Dispose();
        _embeddingDropout.Dispose();
        _outputDropout.Dispose();
    }

    private void SetTraining(bool on)
    {
        foreach (nn.Module m in new nn.Module[] { _embedding, _embeddingDropout, _lstm, _outputDropout, _decoder })
            if (on) m.train(); else m.eval();
    }

    /// <summary>Logits [B·T, V] of inputs [B, T]; the final states replace <paramref name="h"/>/<paramref name="c"/> (not detached).</summary>
    private Tensor Forward(Tensor x, Tensor h, Tensor c, out Tensor hN, out Tensor cN)
    {
        var e = _embeddingDropout.call(_embedding.call(x));                  // [B, T, E]
        var (y, hn, cn) = _lstm.call(e, (h, c));                             // [B, T, H]
        hN = hn;
        cN = cn;
        return _decoder.call(_outputDropout.call(y)).reshape(-1, _vocabulary); // [B·T, V]
    }

    /// <summary>The stream cut into <paramref name="b"/> columns: [B, N / B] (the remainder dropped); row j = column j.</summary>
    private static Tensor Columns(int[] stream, int b, int columnLength)
    {
        var values = new long[(long)b * columnLength];
        for (int i = 0; i < values.Length; i++) values[i] = stream[i];
        return tensor(values, [b, columnLength]);
    }

    /// <summary>Mean nats per token over <paramref name="stream"/> as LanguageModelTrainer.Evaluate: B columns, chunks of max(T, 64), state carried, no dropout.</summary>
    private double Evaluate(int[] stream, int columns, int chunk)
    {
        int b = Math.Max(1, Math.Min(columns, stream.Length / 2));
        int columnLength = stream.Length / b;
        SetTraining(false);
        try
        {
            using var noGrad = no_grad();
            using var data = Columns(stream, b, columnLength);
            var h = zeros(_layers, b, _hidden);
            var c = zeros(_layers, b, _hidden);
            double total = 0;
            long count = 0;
            for (int start = 0; start < columnLength - 1; start += chunk)
            {
                using var scope = NewDisposeScope();
                int length = Math.Min(chunk, columnLength - 1 - start);
                var logits = Forward(data.narrow(1, start, length), h, c, out var hN, out var cN);
                var loss = nn.functional.cross_entropy(logits, data.narrow(1, start + 1, length).reshape(-1));
                total += (double)loss.item<float>() * b * length;
                count += (long)b * length;
                h.Dispose();
                c.Dispose();
                h = hN.MoveToOuterDisposeScope();
                c = cN.MoveToOuterDisposeScope();
            }
            h.Dispose();
            c.Dispose();
            return total / count;
        }
        finally
        {
            SetTraining(true);
        }
    }

    /// <summary>The chunks (start, length) of a column's predictions: a first one of <paramref name="offset"/> tokens (if any), then T each (LanguageModelTrainer.Chunks).</summary>
    internal static List<(int Start, int Length)> Chunks(int predictions, int offset, int bptt)
    {
        var chunks = new List<(int, int)>();
        int at = 0;
        if (offset > 0 && offset < predictions)
        {
            chunks.Add((0, offset));
            at = offset;
        }
        for (; at < predictions; at += bptt)
            chunks.Add((at, Math.Min(bptt, predictions - at)));
        return chunks;
    }

    /// <summary>
    /// Trains (and validates) per the recipe into <paramref name="result"/>. With <paramref name="speedPlan"/>: speed
    /// mode (no validation; the plan's warm-up steps, untimed, then its timed steps).
    /// </summary>
    public static void Run(LmRecipe r, CharData data, RunResult result, SpeedPlan? speedPlan = null)
    {
        TorchNative.Load();
        set_num_threads(r.Threads);
        manual_seed(r.Seed);
        bool speed = speedPlan is not null;
        int v = data.VocabularySize, b = r.BatchSize, bptt = r.Bptt;
        int n = data.Train.Length, columnLength = n / b, predictions = columnLength - 1;
        if (columnLength < 2) throw new ArgumentException($"{n} training tokens are too few for {b} columns");
        using var model = new TorchLm(v, r);
        result.Settings = Describe(v, r);
        result.TorchVersion = __version__;
        result.Parameters = model.Parameters.Sum(p => p.numel());
        int epochs = r.EffectiveEpochs(n);
        long scheduleSteps = r.ScheduleSpan == "max-steps" && r.MaxSteps > 0 ? r.MaxSteps : r.EpochScheduleSteps(n);
        result.StepsPerEpoch = r.StepsPerEpoch(n);
        result.EpochsPlanned = epochs;
        result.ScheduleSteps = scheduleSteps;
        var settings = r.Settings(epochs);
        var optimizer = optim.Adam(model.Parameters, lr: r.LearningRate, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0);
        var offsets = new SeededRandom(r.Seed ^ 0x5DEECE66DL);   // LanguageModelTrainer's generator: epoch 1's offset is ours
        using var train = Columns(data.Train, b, columnLength);
        long plannedSteps = speed ? 0 : r.MaxSteps > 0 ? Math.Min(r.MaxSteps, (long)epochs * result.StepsPerEpoch) : (long)epochs * result.StepsPerEpoch;
        long logEvery = speed ? long.MaxValue : Math.Max(1, Math.Min(100, plannedSteps / 10));

        var steps = new List<(double Loss, int Tokens)>();
        var stepSeconds = new List<double>();
        var trainClock = new Stopwatch();
        long step = 0;
        bool stop = false;
        model.SetTraining(true);
        for (int epoch = 1; epoch <= epochs && !stop; epoch++)
        {
            int offset = bptt > 1 ? offsets.NextInt(bptt) : 0;
            var chunks = Chunks(predictions, offset, bptt);
            var h = zeros(r.Layers, b, r.HiddenSize);
            var c = zeros(r.Layers, b, r.HiddenSize);
            var record = new EpochRecord { Epoch = epoch };
            double lossSum = 0;
            double epochStart = trainClock.Elapsed.TotalSeconds;
            foreach (var (start, length) in chunks)
            {
                if (speed ? speedPlan!.Stop(step) : r.MaxSteps > 0 && step >= r.MaxSteps) { stop = true; break; }
                long t0 = Stopwatch.GetTimestamp();
                trainClock.Start();
                float lossValue;
                using (var scope = NewDisposeScope())
                {
                    optimizer.zero_grad();
                    var logits = model.Forward(train.narrow(1, start, length), h, c, out var hN, out var cN);
                    var loss = nn.functional.cross_entropy(logits, train.narrow(1, start + 1, length).reshape(-1));
                    lossValue = loss.item<float>();
                    if (!float.IsFinite(lossValue))
                        throw new InvalidOperationException($"Training diverged: the loss is {lossValue} at step {step + 1}.");
                    loss.backward();
                    // The next chunk continues every column from here, detached.
                    h.Dispose();
                    c.Dispose();
                    h = hN.detach().MoveToOuterDisposeScope();
                    c = cN.detach().MoveToOuterDisposeScope();
                    if (r.GradientClipNorm > 0) nn.utils.clip_grad_norm_(model.Parameters, r.GradientClipNorm);
                    float rate = LearningRateSchedules.Rate(settings, step, scheduleSteps);
                    foreach (var group in optimizer.ParamGroups) group.LearningRate = rate;
                    optimizer.step();
                }
                trainClock.Stop();
                stepSeconds.Add(Stopwatch.GetElapsedTime(t0).TotalSeconds);
                // TorchSharp's optim.Adam.step leaves native memory (about the activations' size per step) to .NET
                // finalizers, so without this the peak working set grows with the steps (655 MiB after 300 steps of the
                // smoke model instead of 220) and depends on when the GC happens to run. Python would free it at once:
                // collected here, outside the timed part of the step.
                GC.Collect();
                GC.WaitForPendingFinalizers();
                step++;
                int tokens = b * length;
                steps.Add((lossValue, tokens));
                lossSum += (double)lossValue * tokens;
                record.Steps++;
                record.Tokens += tokens;
                if (step % logEvery == 0)
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  torch step {step}/{plannedSteps} (epoch {epoch}): loss {lossValue:F4}, {record.Tokens / Math.Max(1e-9, trainClock.Elapsed.TotalSeconds - epochStart):F0} tokens/s"));
                if (!speed && r.EvalEvery > 0 && step % r.EvalEvery == 0)
                {
                    double loss = model.Evaluate(data.Validation, b, Math.Max(bptt, 64));
                    result.Evaluations.Add(new EvalRecord { Step = step, ValidationLoss = loss });
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  torch step {step}: validation {loss:F4} nats/char"));
                }
            }
            h.Dispose();
            c.Dispose();
            if (record.Steps == 0) break;
            record.Partial = record.Steps < chunks.Count;
            record.TrainLoss = lossSum / record.Tokens;
            record.TrainSeconds = trainClock.Elapsed.TotalSeconds - epochStart;
            if (!speed)
            {
                record.ValidationLoss = result.Evaluations.Count > 0 && result.Evaluations[^1].Step == step
                    ? result.Evaluations[^1].ValidationLoss
                    : model.Evaluate(data.Validation, b, Math.Max(bptt, 64));
                if (result.Evaluations.Count == 0 || result.Evaluations[^1].Step != step)
                    result.Evaluations.Add(new EvalRecord { Step = step, ValidationLoss = record.ValidationLoss });
            }
            result.Epochs.Add(record);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  torch epoch {epoch}/{epochs}{(record.Partial ? " (partial)" : "")}: {record.Steps} steps, train loss {record.TrainLoss:F4}, validation {record.ValidationLoss:F4} nats/char, {record.TrainSeconds:F1} s ({record.Tokens / record.TrainSeconds:F0} tokens/s)"));
        }
        model.CheckTied(r);
        result.TrainSeconds = trainClock.Elapsed.TotalSeconds;
        result.Summarize(steps);
        result.FinalValidationLoss = result.Epochs.Count > 0 ? result.Epochs[^1].ValidationLoss : double.NaN;
        if (speed) result.SummarizeSpeed(stepSeconds, steps.Select(s => s.Tokens).ToList(), speedPlan!.WarmupTaken);
    }
}
