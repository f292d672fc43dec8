using Microsoft.ML.Recurrent;
using Microsoft.ML.Recurrent.Model;
using Microsoft.ML.Recurrent.Training;

namespace Forecasting;

/// <summary>The recipe of one run of ours (and of libtorch's twin).</summary>
internal sealed record Recipe
{
    public int LookBack { get; init; } = 720;
    public int Horizon { get; init; } = 96;
    public int Segment { get; init; } = 48;
    public int Hidden { get; init; } = 512;
    public int Layers { get; init; } = 1;
    public string Cell { get; init; } = "gru";
    public WindowNormalization Normalization { get; init; } = WindowNormalization.LastValue;
    public bool Skip { get; init; } = true;
    public float HeadDropout { get; init; }
    public int Epochs { get; init; } = 10;
    public int Patience { get; init; } = 3;
    public int BatchSize { get; init; } = 256;
    public float LearningRate { get; init; } = 1e-3f;
    public LearningRateSchedule Schedule { get; init; } = LearningRateSchedule.Cosine;
    public float WeightDecay { get; init; }
    public int Threads { get; init; } = 2;
    public long Seed { get; init; } = 1;
    public float[] Quantiles { get; init; } = [];
    /// <summary>Ridge of the least-squares start of the skip (negative = none).</summary>
    public double LinearStart { get; init; } = -1;
    /// <summary>Keep the least-squares skip fixed.</summary>
    public bool FreezeStart { get; init; }
}

internal static class OursForecast
{
    /// <summary>The layout and network shape of a recipe over <paramref name="columns"/> variables (all targets).</summary>
    public static (ForecastLayout Layout, NetworkConfig Config) Shapes(Recipe recipe, int columns)
    {
        var layout = new ForecastLayout
        {
            LookBack = recipe.LookBack, Horizon = recipe.Horizon, SegmentLength = recipe.Segment, Targets = columns,
            Normalization = recipe.Normalization, Quantiles = recipe.Quantiles,
        };
        var config = new NetworkConfig
        {
            Cell = Enum.Parse<RecurrentCellKind>(recipe.Cell, ignoreCase: true),
            InputSize = layout.FeaturesPerStep, HiddenSize = recipe.Hidden, NumLayers = recipe.Layers,
            Head = NetworkHeadKind.Forecast, OutputSize = layout.OutputSize, HeadDropout = recipe.HeadDropout,
            ForecastSteps = layout.Steps, SkipColumns = recipe.Skip ? layout.SegmentLength : 0,
        };
        return (layout, config);
    }

    public static TrainingSettings Settings(Recipe recipe) => new()
    {
        Epochs = recipe.Epochs, BatchSize = recipe.BatchSize, LearningRate = recipe.LearningRate, Schedule = recipe.Schedule,
        EarlyStoppingPatience = recipe.Patience, Threads = recipe.Threads, Seed = recipe.Seed, WeightDecay = recipe.WeightDecay,
        GradientClipNorm = 0,
    };

    public static RunResult Run(Ett ett, Recipe recipe, Action<string> log)
    {
        var (layout, config) = Shapes(recipe, ett.Columns.Length);
        var network = new RecurrentNetwork(config);
        network.Initialize(recipe.Seed);
        var settings = Settings(recipe);
        var trainer = new ForecastTrainer(network, layout, settings) { LinearStartRidge = recipe.LinearStart, FreezeLinearStart = recipe.FreezeStart };
        var train = new ForecastWindows(recipe.LookBack, recipe.Horizon, 0, Ett.TrainEnd);
        var validation = new ForecastWindows(recipe.LookBack, recipe.Horizon, Ett.TrainEnd, Ett.ValidationEnd);
        var test = new ForecastWindows(recipe.LookBack, recipe.Horizon, Ett.ValidationEnd, Ett.TestEnd);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        if (recipe.LinearStart >= 0) log("  (least-squares start: epoch 0 is the linear model)");
        var epochs = trainer.Train(ett.Values, train, validation, onEpoch: e =>
            log($"  epoch {e.Epoch}/{e.Epochs}: train loss {e.Loss:F4}, validation MSE {e.ValidationLoss:F4}{(e.IsBest ? " *" : "")}, {e.Elapsed.TotalSeconds:F1} s ({e.ValidationElapsed.TotalSeconds:F1} s validation)"));
        double trainSeconds = clock.Elapsed.TotalSeconds;
        var (mse, mae) = trainer.Evaluate(ett.Values, test);
        var (vmse, _) = trainer.Evaluate(ett.Values, validation);
        return new RunResult("ours", mse, mae, vmse, trainSeconds, trainer.BestEpoch, epochs.Count, network.Parameters.Length);
    }
}

internal sealed record RunResult(string System, double TestMse, double TestMae, double ValidationMse, double TrainSeconds,
    int BestEpoch, int Epochs, int Parameters);
