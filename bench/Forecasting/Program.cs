using System.Globalization;
using System.Text.Json;
using Forecasting;
using Microsoft.ML.Recurrent;
using Microsoft.ML.Recurrent.Training;

// Usage: dotnet run -c Release --project bench/Forecasting -- [--horizons 96,192,336,720] [--lookback 720] [--segment 48]
//   [--hidden 512] [--epochs 10] [--patience 3] [--batch 256] [--lr 1e-3] [--norm last|meanscale|none] [--skip on|off]
//   [--cell gru|lstm|rnntanh] [--threads 2] [--seed 1] [--baselines-only] [--no-ours] [--tag name]
var options = new Dictionary<string, string>(StringComparer.Ordinal);
for (int i = 0; i < args.Length; i++)
{
    if (!args[i].StartsWith("--", StringComparison.Ordinal)) throw new ArgumentException($"Unexpected argument '{args[i]}'.");
    string key = args[i][2..];
    options[key] = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : "true";
}
string Get(string key, string fallback) => options.TryGetValue(key, out var v) ? v : fallback;
var path = Ett.Find();
if (path is null)
{
    Console.WriteLine("SKIPPED: ETTh1 not found (../shared/datasets/ett/ETTh1.csv or $RECURRENT_DATASETS/ett/ETTh1.csv).");
    return;
}
var ett = Ett.Load(path);
int c = ett.Columns.Length;
var horizons = Get("horizons", "96,192,336,720").Split(',').Select(int.Parse).ToArray();
int lookBack = int.Parse(Get("lookback", "720"), CultureInfo.InvariantCulture);
var baseRecipe = new Recipe
{
    LookBack = lookBack,
    Segment = int.Parse(Get("segment", "48"), CultureInfo.InvariantCulture),
    Hidden = int.Parse(Get("hidden", "512"), CultureInfo.InvariantCulture),
    Layers = int.Parse(Get("layers", "1"), CultureInfo.InvariantCulture),
    Cell = Get("cell", "gru"),
    Normalization = Get("norm", "last") switch { "last" => WindowNormalization.LastValue, "meanscale" => WindowNormalization.MeanScale, "none" => WindowNormalization.None, var n => throw new ArgumentException($"--norm {n}") },
    Skip = Get("skip", "on") == "on",
    HeadDropout = float.Parse(Get("dropout", "0"), CultureInfo.InvariantCulture),
    Epochs = int.Parse(Get("epochs", "10"), CultureInfo.InvariantCulture),
    Patience = int.Parse(Get("patience", "3"), CultureInfo.InvariantCulture),
    BatchSize = int.Parse(Get("batch", "256"), CultureInfo.InvariantCulture),
    LearningRate = float.Parse(Get("lr", "1e-3"), CultureInfo.InvariantCulture),
    Schedule = Enum.Parse<LearningRateSchedule>(Get("schedule", "Cosine"), ignoreCase: true),
    WeightDecay = float.Parse(Get("wd", "0"), CultureInfo.InvariantCulture),
    Threads = int.Parse(Get("threads", "2"), CultureInfo.InvariantCulture),
    Seed = long.Parse(Get("seed", "1"), CultureInfo.InvariantCulture),
    LinearStart = double.Parse(Get("linear-start", "-1"), CultureInfo.InvariantCulture),
    FreezeStart = options.ContainsKey("freeze-start"),
};
string tag = Get("tag", "run");
var resultsDir = Path.Combine(Accuracy.Machine.RepositoryRoot(), "bench", "Forecasting", "results");
Directory.CreateDirectory(resultsDir);
var resultsFile = Path.Combine(resultsDir, "runs.jsonl");
if (options.ContainsKey("latency"))
{
    foreach (int h in horizons)
    {
        var (median, p90) = Latency.Measure(baseRecipe with { Horizon = h }, c);
        Console.WriteLine($"latency: look-back {lookBack}, horizon {h}, segment {baseRecipe.Segment}, hidden {baseRecipe.Hidden}, {c} targets: median {median:F3} ms, p90 {p90:F3} ms per forecast call (1 thread)");
        File.AppendAllText(resultsFile, JsonSerializer.Serialize(new { tag, horizon = h, lookBack, system = "latency", median, p90, recipe = baseRecipe,
            cpu = System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? "avx512" : "avx2", date = DateTime.UtcNow.ToString("u") }) + "\n");
    }
    return;
}
Console.WriteLine($"ETTh1: {ett.Rows} rows × {c} variables, look-back {lookBack}; {Environment.ProcessorCount} cores; load {Accuracy.Machine.LoadAverage()}");
foreach (int h in horizons)
{
    var train = new ForecastWindows(lookBack, h, 0, Ett.TrainEnd);
    var validation = new ForecastWindows(lookBack, h, Ett.TrainEnd, Ett.ValidationEnd);
    var test = new ForecastWindows(lookBack, h, Ett.ValidationEnd, Ett.TestEnd);
    Console.WriteLine($"horizon {h}: {train.Count} training, {validation.Count} validation, {test.Count} test windows × {c} variables");
    var rows = new List<object>();
    void Report(string system, double mse, double mae, double seconds, object? extra = null)
    {
        Console.WriteLine($"  {system,-28} MSE {mse:F4}  MAE {mae:F4}  ({seconds:F1} s)");
        var record = new { tag, horizon = h, lookBack, system, mse, mae, seconds, extra, commit = Accuracy.Machine.GitCommit(Accuracy.Machine.RepositoryRoot()),
            cpu = System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? "avx512" : "avx2",
            load = Accuracy.Machine.LoadAverage(), peakMiB = Accuracy.Machine.PeakMemoryMiB(), date = DateTime.UtcNow.ToString("u") };
        File.AppendAllText(resultsFile, JsonSerializer.Serialize(record) + "\n");
    }
    if (!options.ContainsKey("no-baselines"))
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (m, a) = Baselines.Naive(ett.Values, c, test);
        Report("(a) last value", m, a, clock.Elapsed.TotalSeconds);
        clock.Restart();
        (m, a) = Baselines.SeasonalNaive(ett.Values, c, test);
        Report("(b) seasonal naive (24)", m, a, clock.Elapsed.TotalSeconds);
        // (c) ridge least squares, raw and relative to the last value; the ridge and the variant chosen on validation.
        double bestValidation = double.MaxValue;
        (double Mse, double Mae, string Name) best = default;
        foreach (bool relative in new[] { false, true })
        {
            clock.Restart();
            foreach (var model in Baselines.FitLinear(ett.Values, c, train, [1e-4, 1e-3, 1e-2, 1e-1, 1], relative))
            {
                var (vm, _) = model.Score(ett.Values, c, validation);
                var (tm, ta) = model.Score(ett.Values, c, test);
                Console.WriteLine($"    {model.Name}: validation MSE {vm:F4}, test MSE {tm:F4} MAE {ta:F4}");
                if (vm < bestValidation) (bestValidation, best) = (vm, (tm, ta, model.Name));
            }
            Console.WriteLine($"    ({clock.Elapsed.TotalSeconds:F1} s for the {(relative ? "relative" : "raw")} fits)");
        }
        Report("(c) least-squares linear", best.Mse, best.Mae, 0, new { chosen = best.Name, validationMse = bestValidation });
    }
    if (options.ContainsKey("torch"))
    {
        var recipe = baseRecipe with { Horizon = h };
        var r = TorchForecast.Run(ett, recipe, Console.WriteLine);
        Report("(d) libtorch", r.TestMse, r.TestMae, r.TrainSeconds, new { recipe, r.ValidationMse, r.BestEpoch, r.Epochs, r.Parameters });
    }
    if (!options.ContainsKey("no-ours"))
    {
        var recipe = baseRecipe with { Horizon = h };
        Console.WriteLine($"  ours: {JsonSerializer.Serialize(recipe)}");
        var r = OursForecast.Run(ett, recipe, Console.WriteLine);
        Report("(e) ours", r.TestMse, r.TestMae, r.TrainSeconds, new { recipe, r.ValidationMse, r.BestEpoch, r.Epochs, r.Parameters });
    }
}
