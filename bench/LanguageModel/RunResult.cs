using System.Text.Json;
using System.Text.Json.Serialization;

namespace LanguageModel;

/// <summary>One epoch (the last one may be partial when --max-steps stops the run).</summary>
internal sealed class EpochRecord
{
    public int Epoch { get; set; }
    /// <summary>Training steps taken in this epoch.</summary>
    public int Steps { get; set; }
    public long Tokens { get; set; }
    /// <summary>Mean training loss (nats/char) over the epoch's steps, weighted by tokens.</summary>
    public double TrainLoss { get; set; } = double.NaN;
    /// <summary>Validation loss (nats/char) after the epoch.</summary>
    public double ValidationLoss { get; set; } = double.NaN;
    /// <summary>Training time of the epoch, validation excluded.</summary>
    public double TrainSeconds { get; set; }
    public bool Partial { get; set; }
}

/// <summary>A validation point (libtorch, --eval-every).</summary>
internal sealed class EvalRecord
{
    public long Step { get; set; }
    public double ValidationLoss { get; set; }
}

/// <summary>One run of one implementation: a JSON line in the --out file.</summary>
internal sealed class RunResult
{
    /// <summary>"train" or "speed".</summary>
    public string Mode { get; set; } = "train";
    /// <summary>"torch" or "ours".</summary>
    public string Implementation { get; set; } = "";
    public string Settings { get; set; } = "";
    public LmRecipe Recipe { get; set; } = new();
    public int Vocabulary { get; set; }
    public int TrainChars { get; set; }
    public int ValidationChars { get; set; }
    public long Parameters { get; set; }
    public int StepsPerEpoch { get; set; }
    public int EpochsPlanned { get; set; }
    /// <summary>Steps the learning-rate schedule spans (warm-up and decay are fractions of it).</summary>
    public long ScheduleSteps { get; set; }
    /// <summary>Training steps taken.</summary>
    public long Steps { get; set; }
    /// <summary>Training tokens (predictions) processed.</summary>
    public long Tokens { get; set; }
    /// <summary>Training wall time, validation excluded.</summary>
    public double TrainSeconds { get; set; }
    public double TokensPerSecond { get; set; }
    /// <summary>Validation loss (nats/char) of the final weights.</summary>
    public double FinalValidationLoss { get; set; } = double.NaN;
    /// <summary>The same in bits per character.</summary>
    public double FinalValidationBpc => FinalValidationLoss / Math.Log(2);
    /// <summary>Mean training loss over the last 10 % of the steps (at least 1).</summary>
    public double FinalTrainLoss { get; set; } = double.NaN;
    /// <summary>Training loss of the first step (about ln V = 4.17 at initialization).</summary>
    public double FirstStepLoss { get; set; } = double.NaN;
    public List<EpochRecord> Epochs { get; set; } = new();
    public List<EvalRecord> Evaluations { get; set; } = new();
    /// <summary>Speed mode: untimed warm-up steps, then timed steps.</summary>
    public int WarmupSteps { get; set; }
    public int TimedSteps { get; set; }
    /// <summary>Speed mode: every timed step's wall time (ms) and the median.</summary>
    public List<double> StepMilliseconds { get; set; } = new();
    public double MedianStepMilliseconds { get; set; } = double.NaN;
    /// <summary>Speed mode: B·T tokens per median step.</summary>
    public double MedianTokensPerSecond { get; set; } = double.NaN;
    public int Threads { get; set; }
    /// <summary>Peak resident set (VmHWM) of the run's own process, MiB.</summary>
    public double PeakWorkingSetMiB { get; set; } = double.NaN;
    public string CpuModel { get; set; } = "";
    public bool Avx512F { get; set; }
    public int ProcessorCount { get; set; }
    public string TorchVersion { get; set; } = "";
    /// <summary>Average number of cores kept busy by OTHER processes during the run.</summary>
    public double ForeignCores { get; set; } = double.NaN;
    public string LoadStart { get; set; } = "";
    public string LoadEnd { get; set; } = "";
    public string Started { get; set; } = "";
    public string Commit { get; set; } = "";
    /// <summary>Environment variables that change how a library runs (OMP_*, MKL_*, DOTNET_*), as NAME=value.</summary>
    public string Environment { get; set; } = "";

    private static readonly JsonSerializerOptions Json = new()
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);
    public static RunResult FromJson(string json) => JsonSerializer.Deserialize<RunResult>(json, Json)!;

    /// <summary>Fills the training totals from the per-step record.</summary>
    public void Summarize(List<(double Loss, int Tokens)> steps)
    {
        Steps = steps.Count;
        Tokens = steps.Sum(s => (long)s.Tokens);
        TokensPerSecond = TrainSeconds > 0 ? Tokens / TrainSeconds : double.NaN;
        if (steps.Count == 0) return;
        FirstStepLoss = steps[0].Loss;
        var tail = steps.Skip(steps.Count - Math.Max(1, steps.Count / 10)).ToList();
        FinalTrainLoss = tail.Sum(s => s.Loss * s.Tokens) / tail.Sum(s => (double)s.Tokens);
    }

    /// <summary>Speed mode: step times after the warm-up.</summary>
    public void SummarizeSpeed(List<double> stepSeconds, List<int> stepTokens, int warmup)
    {
        WarmupSteps = warmup;
        var timed = stepSeconds.Skip(warmup).ToList();
        TimedSteps = timed.Count;
        StepMilliseconds = timed.Select(s => Math.Round(s * 1000, 3)).ToList();
        if (timed.Count == 0) return;
        double median = timed.Order().ElementAt(timed.Count / 2);
        MedianStepMilliseconds = median * 1000;
        MedianTokensPerSecond = stepTokens.Skip(warmup).Max() / median;   // the timed steps are all full B·T chunks
        TrainSeconds = timed.Sum();
        TokensPerSecond = stepTokens.Skip(warmup).Sum() / TrainSeconds;
    }
}
