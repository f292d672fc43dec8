using System.Diagnostics;
using Microsoft.ML.Recurrent;
using Microsoft.ML.Recurrent.Model;
using Microsoft.ML.Recurrent.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using SeededRandom = Microsoft.ML.Recurrent.Core.SeededRandom;

namespace Forecasting;

/// <summary>
/// The same recipe in libtorch through TorchSharp-cpu: nn.GRU/LSTM (batch_first) over the window's segments → final
/// state of the top layer → dropout → nn.Linear(H, H_out), plus a bias-free linear skip over the window → restore the
/// window normalization → MSE. It starts from our initial weights (copied by PyTorch name) and reads exactly our
/// batches in our order (ForecastBatch, the trainer's shuffle from the same seed), with our learning-rate schedule set
/// before every step and optim.Adam; validation after every epoch, early stopping, best epoch kept — so the only
/// differences are the arithmetic and the dropout masks.
/// </summary>
internal static class TorchForecast
{
    public static RunResult Run(Ett ett, Recipe recipe, Action<string> log)
    {
        Accuracy.TorchNative.Load();
        set_num_threads(recipe.Threads);
        manual_seed(recipe.Seed);
        int c = ett.Columns.Length;
        var (layout, config) = OursForecast.Shapes(recipe, c);
        var ours = new RecurrentNetwork(config);
        ours.Initialize(recipe.Seed);                   // the initial weights both start from
        var train = new ForecastWindows(recipe.LookBack, recipe.Horizon, 0, Ett.TrainEnd);
        if (recipe.LinearStart >= 0 && recipe.Skip)     // the same least-squares start (computed by our trainer)
            new ForecastTrainer(ours, layout, OursForecast.Settings(recipe)) { LinearStartRidge = recipe.LinearStart }.StartFromLeastSquares(ett.Values, train);
        var cell = config.Cell;
        nn.Module<Tensor, Tensor?, (Tensor, Tensor)>? gru = cell == RecurrentCellKind.Gru
            ? nn.GRU(layout.FeaturesPerStep, recipe.Hidden, numLayers: recipe.Layers, batchFirst: true) : null;
        LSTM? lstm = cell == RecurrentCellKind.Lstm ? nn.LSTM(layout.FeaturesPerStep, recipe.Hidden, numLayers: recipe.Layers, batchFirst: true) : null;
        if (gru is null && lstm is null) throw new ArgumentException("The libtorch twin runs GRU or LSTM.");
        nn.Module rnn = (nn.Module?)gru ?? lstm!;
        var head = nn.Linear(recipe.Hidden, layout.OutputSize);
        var dropout = nn.Dropout(recipe.HeadDropout);
        var skip = recipe.Skip ? nn.Linear(layout.LookBack, layout.OutputSize, hasBias: false) : null;
        using (no_grad())
        {
            var ps = ours.Parameters;
            void Copy(Tensor target, string name) => target.copy_(tensor(ps.Value(ps[name]).ToArray(), target.shape));
            foreach (var (name, p) in rnn.named_parameters()) Copy(p, "rnn." + name);
            Copy(head.weight!, "head.weight");
            Copy(head.bias!, "head.bias");
            if (skip is not null) Copy(skip.weight!, "skip.weight");
        }
        // A frozen least-squares skip is left out of the optimizer (as ours clears its gradient).
        var parameters = rnn.parameters().Concat(head.parameters()).Concat(recipe.FreezeStart ? [] : skip?.parameters() ?? []).ToList();
        var optimizer = optim.Adam(parameters, lr: recipe.LearningRate, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: recipe.WeightDecay);
        var settings = OursForecast.Settings(recipe);
        var validation = new ForecastWindows(recipe.LookBack, recipe.Horizon, Ett.TrainEnd, Ett.ValidationEnd);
        var test = new ForecastWindows(recipe.LookBack, recipe.Horizon, Ett.ValidationEnd, Ett.TestEnd);
        int n = layout.Steps, f = layout.FeaturesPerStep, w = layout.SegmentLength, o = layout.OutputSize, h = layout.Horizon;

        // Outputs [B, O] restored to the series' units.
        Tensor Forward(ForecastBatch batch, bool training)
        {
            int b = batch.Count;
            var x = tensor(batch.Data.Features.ToArray(), [b, n, f]);
            var top = gru is not null ? gru.call(x, null).Item2[-1] : lstm!.call(x).Item2[-1];   // [B, H]
            if (training) dropout.train(); else dropout.eval();
            var output = head.call(dropout.call(top));
            if (skip is not null)
                output = output + skip.call(x.narrow(2, 0, w).reshape(b, n * w));
            var stats = Enumerable.Range(0, b).Select(batch.Statistics).ToArray();
            var scale = tensor(stats.Select(s => s.Scale).ToArray(), [b, 1]);
            var shift = tensor(stats.Select(s => s.Shift).ToArray(), [b, 1]);
            return output * scale + shift;
        }

        (double Mse, double Mae) Evaluate(ForecastWindows windows)
        {
            using var noGrad = no_grad();
            rnn.eval();
            var batch = new ForecastBatch(layout);
            long count = (long)windows.Count * c;
            double squares = 0, absolutes = 0;
            for (long first = 0; first < count; first += 256)
            {
                using var scope = NewDisposeScope();
                int b = (int)Math.Min(256, count - first);
                var starts = new int[b];
                var channels = new int[b];
                for (int i = 0; i < b; i++) { starts[i] = windows.TargetStart((int)((first + i) / c)); channels[i] = (int)((first + i) % c); }
                batch.Fill(ett.Values, starts, channels, withTargets: true);
                var error = Forward(batch, false).narrow(1, 0, h) - tensor(batch.Targets.ToArray(), [b, h]);
                squares += error.square().sum().item<float>();
                absolutes += error.abs().sum().item<float>();
            }
            rnn.train();
            return (squares / (count * h), absolutes / (count * h));
        }

        // Our trainer's order: the same generator, seed and shuffle of the sample indices.
        var random = new SeededRandom(recipe.Seed ^ 0x5DEECE66DL);
        var samples = Enumerable.Range(0, train.Count * c).ToArray();
        int batches = (samples.Length + recipe.BatchSize - 1) / recipe.BatchSize;
        long totalSteps = (long)batches * recipe.Epochs, step = 0;
        var trainBatch = new ForecastBatch(layout);
        double best = double.MaxValue;
        Dictionary<string, Tensor>? bestState = null;
        int bestEpoch = 0, sinceBest = 0, epochsRun = 0;
        var clock = Stopwatch.StartNew();
        Dictionary<string, Tensor> Snapshot() =>
            rnn.named_parameters().Select(p => ("rnn." + p.name, p.parameter.detach().clone()))
                .Concat(head.named_parameters().Select(p => ("head." + p.name, p.parameter.detach().clone())))
                .Concat(skip?.named_parameters().Select(p => ("skip." + p.name, p.parameter.detach().clone())) ?? [])
                .ToDictionary(p => p.Item1, p => p.Item2);
        if (recipe.LinearStart >= 0 && recipe.Skip)
        {
            (best, _) = Evaluate(validation);     // epoch 0: the least-squares start, as ours
            bestState = Snapshot();
            log($"  libtorch epoch 0 (least-squares start): validation MSE {best:F4} *");
        }
        rnn.train();
        for (int epoch = 1; epoch <= recipe.Epochs; epoch++)
        {
            var epochClock = Stopwatch.StartNew();
            random.Shuffle(samples);
            double lossSum = 0;
            for (int first = 0; first < samples.Length; first += recipe.BatchSize)
            {
                using var scope = NewDisposeScope();
                int b = Math.Min(recipe.BatchSize, samples.Length - first);
                var starts = new int[b];
                var channels = new int[b];
                for (int i = 0; i < b; i++) { starts[i] = train.TargetStart(samples[first + i] / c); channels[i] = samples[first + i] % c; }
                trainBatch.Fill(ett.Values, starts, channels, withTargets: true);
                var loss = nn.functional.mse_loss(Forward(trainBatch, true).narrow(1, 0, h), tensor(trainBatch.Targets.ToArray(), [b, h]));
                optimizer.zero_grad();
                loss.backward();
                foreach (var group in optimizer.ParamGroups) group.LearningRate = LearningRateSchedules.Rate(settings, step, totalSteps);
                step++;
                optimizer.step();
                lossSum += loss.item<float>() * b;
            }
            var (vmse, _) = Evaluate(validation);
            epochsRun = epoch;
            bool isBest = vmse < best;
            if (isBest)
            {
                best = vmse;
                bestEpoch = epoch;
                sinceBest = 0;
                foreach (var t in bestState?.Values ?? Enumerable.Empty<Tensor>()) t.Dispose();
                bestState = Snapshot();
            }
            else
            {
                sinceBest++;
            }
            log($"  libtorch epoch {epoch}/{recipe.Epochs}: train loss {lossSum / samples.Length:F4}, validation MSE {vmse:F4}{(isBest ? " *" : "")}, {epochClock.Elapsed.TotalSeconds:F1} s");
            if (recipe.Patience > 0 && sinceBest >= recipe.Patience) break;
        }
        double seconds = clock.Elapsed.TotalSeconds;
        using (no_grad())
        {
            foreach (var (name, p) in rnn.named_parameters()) p.copy_(bestState!["rnn." + name]);
            foreach (var (name, p) in head.named_parameters()) p.copy_(bestState!["head." + name]);
            if (skip is not null) foreach (var (name, p) in skip.named_parameters()) p.copy_(bestState!["skip." + name]);
        }
        var (mse, mae) = Evaluate(test);
        return new RunResult("libtorch", mse, mae, best, seconds, bestEpoch, epochsRun, (int)parameters.Sum(p => p.numel()));
    }
}
