using System.Text.Json;
using System.Text.Json.Serialization;

namespace Accuracy;

internal sealed class EpochResult
{
    public int Epoch { get; set; }
    /// <summary>Test accuracy (%) after this epoch; NaN when the run did not evaluate per epoch.</summary>
    public double TestAccuracy { get; set; } = double.NaN;
    /// <summary>Wall time of the epoch including the per-epoch test evaluation.</summary>
    public double Seconds { get; set; }
    /// <summary>Wall time of the training part alone (libtorch only; ours reports the epoch as a whole).</summary>
    public double TrainSeconds { get; set; } = double.NaN;
    public double TokensPerSecond { get; set; }
    public double Loss { get; set; }
    public double TrainAccuracy { get; set; } = double.NaN;
    public double ValidationAccuracy { get; set; } = double.NaN;
}

internal sealed class RunResult
{
    public string Dataset { get; set; } = "";
    public string Model { get; set; } = "";
    public string Config { get; set; } = "";
    public string Settings { get; set; } = "";
    public int? Limit { get; set; }
    public int TrainRows { get; set; }
    public int TestRows { get; set; }
    public List<EpochResult> Epochs { get; set; } = new();
    /// <summary>Test accuracy (%) of the model Fit returns / of the last epoch.</summary>
    public double FinalAccuracy { get; set; }
    public double BestAccuracy { get; set; } = double.NaN;
    public int BestEpoch { get; set; }
    public double TrainSeconds { get; set; }
    public double TotalSeconds { get; set; }
    public double PeakMemoryMiB { get; set; }
    public string LoadStart { get; set; } = "";
    public string LoadEnd { get; set; } = "";
    public string Started { get; set; } = "";
    public string Commit { get; set; } = "";

    private static readonly JsonSerializerOptions Json = new()
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);
    public static RunResult FromJson(string json) => JsonSerializer.Deserialize<RunResult>(json, Json)!;
}
