using System.Text.Json;
using System.Text.Json.Serialization;

namespace Tagging;

/// <summary>One training epoch of a model that has epochs (libtorch, ours).</summary>
internal sealed class EpochResult
{
    public int Epoch { get; set; }
    public double Loss { get; set; }
    /// <summary>Dev token accuracy (%) after this epoch.</summary>
    public double DevAccuracy { get; set; } = double.NaN;
    /// <summary>Wall time of the epoch, training plus the dev evaluation.</summary>
    public double Seconds { get; set; }
    /// <summary>Wall time of the training part alone.</summary>
    public double TrainSeconds { get; set; }
    /// <summary>Training tokens / <see cref="TrainSeconds"/>.</summary>
    public double TrainTokensPerSecond { get; set; }
    /// <summary>Average number of cores kept busy by other processes during the epoch.</summary>
    public double ForeignCores { get; set; } = double.NaN;
}

/// <summary>One run of one model (one JSON line in bench/Tagging/results/*.jsonl).</summary>
internal sealed class TaggingResult
{
    public string Model { get; set; } = "";
    public string Config { get; set; } = "";
    public string Settings { get; set; } = "";
    /// <summary>The --quick subset instead of the full split.</summary>
    public bool Quick { get; set; }
    /// <summary>--tune: only dev was scored (test untouched).</summary>
    public bool Tune { get; set; }
    /// <summary>brown (186 tags) or universal (12); absent in runs made before the option existed = brown.</summary>
    public string Tagset { get; set; } = "brown";
    public int TrainSentences { get; set; }
    public long TrainTokens { get; set; }
    public long DevTokens { get; set; }
    public long TestTokens { get; set; }
    public double DevAccuracy { get; set; } = double.NaN;
    public double DevUnseenAccuracy { get; set; } = double.NaN;
    public double TestAccuracy { get; set; } = double.NaN;
    public double TestUnseenAccuracy { get; set; } = double.NaN;
    /// <summary>Test tokens whose word form never occurs in training (dev tokens with --tune).</summary>
    public long UnseenTokens { get; set; }
    public List<EpochResult> Epochs { get; set; } = new();
    /// <summary>The epoch whose weights were kept (best dev accuracy); 0 for models without epochs.</summary>
    public int BestEpoch { get; set; }
    /// <summary>Wall time of Train (for epoch models: every epoch, dev evaluations included).</summary>
    public double TrainSeconds { get; set; }
    /// <summary>Training tokens per second of training time (epoch models: mean over the epochs, dev evaluations excluded).</summary>
    public double TrainTokensPerSecond { get; set; } = double.NaN;
    /// <summary>Wall time of Predict on the test part (dev with --tune), feature extraction included.</summary>
    public double InferenceSeconds { get; set; }
    /// <summary>Ours with the CRF: the network's forward pass and the Viterbi decode over the scored part, timed apart (median of 5).</summary>
    public double ForwardSeconds { get; set; } = double.NaN;
    public double DecodeSeconds { get; set; } = double.NaN;
    public double InferenceTokensPerSecond { get; set; }
    /// <summary>Threads the model was asked to use (0 = the library's default).</summary>
    public int Threads { get; set; }
    public double PeakMemoryMiB { get; set; }
    public double TotalSeconds { get; set; }
    /// <summary>Average number of cores kept busy by OTHER processes during the run (/proc/stat minus this process), 2 = both cores.</summary>
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
    public static TaggingResult FromJson(string json) => JsonSerializer.Deserialize<TaggingResult>(json, Json)!;
}
