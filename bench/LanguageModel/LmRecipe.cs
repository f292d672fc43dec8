using System.Globalization;
using Microsoft.ML.Recurrent;
using Microsoft.ML.Recurrent.Training;

namespace LanguageModel;

/// <summary>
/// The recipe both implementations follow (the command-line options). Network: Embedding(V, E) → dropout
/// (<see cref="EmbeddingDropout"/>) → LSTM(E, H, L layers, dropout between layers <see cref="LayerDropout"/>) → dropout
/// (<see cref="OutputDropout"/>) → Linear(H, V), optionally tied to the embedding (E = H). Embedding and decoder weights
/// U(−0.1, 0.1), decoder bias 0, LSTM PyTorch's default. Stateful truncated BPTT over <see cref="BatchSize"/> columns
/// with a random first-chunk offset per epoch; mean cross-entropy; Adam (0.9, 0.999, 1e-8, no weight decay);
/// global-norm clipping; linear warm-up then constant or cosine (Training/LearningRateSchedules.cs).
/// </summary>
internal sealed record LmRecipe
{
    public int EmbeddingSize { get; init; } = 64;
    public int HiddenSize { get; init; } = 256;
    public int Layers { get; init; } = 2;
    public int BatchSize { get; init; } = 32;
    public int Bptt { get; init; } = 100;
    public float LearningRate { get; init; } = 2e-3f;
    public string Schedule { get; init; } = "constant";
    public float WarmupFraction { get; init; }
    public float GradientClipNorm { get; init; } = 5f;
    public float EmbeddingDropout { get; init; }
    public float LayerDropout { get; init; }
    public float OutputDropout { get; init; }
    public bool TieWeights { get; init; }
    /// <summary>Epochs; 0 = as many as <see cref="MaxSteps"/> needs (1 without it).</summary>
    public int Epochs { get; init; }
    /// <summary>Stop after this many training steps (0 = none).</summary>
    public int MaxSteps { get; init; }
    /// <summary>
    /// What the learning-rate schedule spans for libtorch: "epochs" (default: steps-per-epoch × epochs, exactly as
    /// LanguageModelTrainer computes it, so both follow the same schedule) or "max-steps" (just <see cref="MaxSteps"/>;
    /// ours cannot, its schedule always spans whole epochs).
    /// </summary>
    public string ScheduleSpan { get; init; } = "epochs";
    public int Threads { get; init; } = 1;
    public int Seed { get; init; } = 1;
    /// <summary>libtorch only: also evaluate on the validation stream every this many steps (0 = per epoch only).</summary>
    public int EvalEvery { get; init; }

    public LearningRateSchedule ScheduleKind => Schedule switch
    {
        "constant" => LearningRateSchedule.Constant,
        "cosine" => LearningRateSchedule.Cosine,
        "linear" => LearningRateSchedule.Linear,
        _ => throw new ArgumentException($"--schedule {Schedule}: constant, cosine or linear"),
    };

    /// <summary>Steps per epoch as LanguageModelTrainer counts them (an upper bound: one more for the random first chunk).</summary>
    public int StepsPerEpoch(int trainTokens)
    {
        int predictions = trainTokens / BatchSize - 1;
        return (predictions + Bptt - 1) / Bptt + 1;
    }

    /// <summary>The number of epochs actually run: <see cref="Epochs"/>, or enough for <see cref="MaxSteps"/>.</summary>
    public int EffectiveEpochs(int trainTokens) =>
        Epochs > 0 ? Epochs : MaxSteps > 0 ? (MaxSteps + StepsPerEpoch(trainTokens) - 1) / StepsPerEpoch(trainTokens) : 1;

    /// <summary>The steps our trainer's schedule spans (whole epochs).</summary>
    public long EpochScheduleSteps(int trainTokens) => (long)StepsPerEpoch(trainTokens) * EffectiveEpochs(trainTokens);

    /// <summary>Our training settings (libtorch uses them for <see cref="LearningRateSchedules.Rate"/>, the same function).</summary>
    public TrainingSettings Settings(int epochs) => new()
    {
        Epochs = epochs,
        BatchSize = BatchSize,
        LearningRate = LearningRate,
        Optimizer = OptimizerKind.Adam,
        WeightDecay = 0,
        GradientClipNorm = GradientClipNorm,
        Schedule = ScheduleKind,
        WarmupFraction = WarmupFraction,
        EarlyStoppingPatience = 0,
        Threads = Threads,
        Seed = Seed,
    };

    public void Validate()
    {
        if (TieWeights && EmbeddingSize != HiddenSize)
            throw new ArgumentException($"--tie needs --embed = --hidden (now {EmbeddingSize} and {HiddenSize})");
        if (EmbeddingSize <= 0 || HiddenSize <= 0 || Layers <= 0 || BatchSize <= 0 || Bptt <= 0 || Threads <= 0)
            throw new ArgumentException("--embed, --hidden, --layers, --batch, --bptt and --threads must be positive");
        if (ScheduleSpan is not ("epochs" or "max-steps"))
            throw new ArgumentException($"--schedule-span {ScheduleSpan}: epochs or max-steps");
        _ = ScheduleKind;
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"E={EmbeddingSize} H={HiddenSize} L={Layers} B={BatchSize} T={Bptt} lr={LearningRate} {Schedule} warmup={WarmupFraction} clip={GradientClipNorm} " +
        $"drop={EmbeddingDropout}/{LayerDropout}/{OutputDropout}{(TieWeights ? " tied" : "")} epochs={(Epochs == 0 ? "auto" : Epochs.ToString(CultureInfo.InvariantCulture))}" +
        $"{(MaxSteps > 0 ? $" max-steps={MaxSteps}" : "")} threads={Threads} seed={Seed}");
}
