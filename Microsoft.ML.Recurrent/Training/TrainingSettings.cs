namespace Microsoft.ML.Recurrent.Training;

/// <summary>Which optimizer updates the weights.</summary>
public enum OptimizerKind
{
    /// <summary>Adam with L2 weight decay added to the gradient (<c>torch.optim.Adam</c>).</summary>
    Adam,
    /// <summary>Adam with decoupled weight decay (<c>torch.optim.AdamW</c>).</summary>
    AdamW,
    /// <summary>Stochastic gradient descent with momentum (<c>torch.optim.SGD</c>).</summary>
    Sgd,
}

/// <summary>How the learning rate changes over training (after the optional linear warm-up).</summary>
public enum LearningRateSchedule
{
    /// <summary>Constant.</summary>
    Constant,
    /// <summary>Linear decay to zero at the last step.</summary>
    Linear,
    /// <summary>Cosine decay to zero at the last step.</summary>
    Cosine,
}

/// <summary>The validation metric that early stopping and "best epoch" selection watch.</summary>
public enum EarlyStoppingMetric
{
    /// <summary>Accuracy for classification, loss for regression.</summary>
    Auto,
    /// <summary>Validation loss (lower is better).</summary>
    Loss,
    /// <summary>Validation accuracy (higher is better; classification only).</summary>
    Accuracy,
}

/// <summary>The training recipe, free of ML.NET types.</summary>
internal sealed record TrainingSettings
{
    public int Epochs { get; init; } = 5;
    public int BatchSize { get; init; } = 32;
    public float LearningRate { get; init; } = 2e-3f;
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Adam;
    public float Momentum { get; init; } = 0.9f;
    public float WeightDecay { get; init; }
    /// <summary>Global gradient-norm limit; 0 disables clipping.</summary>
    public float GradientClipNorm { get; init; } = 5f;
    public LearningRateSchedule Schedule { get; init; } = LearningRateSchedule.Constant;
    /// <summary>Fraction of all steps spent warming the learning rate up linearly from 0.</summary>
    public float WarmupFraction { get; init; }
    /// <summary>Per-class loss weights (multiclass), or empty.</summary>
    public float[] ClassWeights { get; init; } = [];
    /// <summary>Epochs without improvement of the validation metric before stopping; 0 disables early stopping.</summary>
    public int EarlyStoppingPatience { get; init; }
    public EarlyStoppingMetric EarlyStoppingMetric { get; init; } = EarlyStoppingMetric.Auto;
    /// <summary>Threads for forward and backward (results do not depend on it).</summary>
    public int Threads { get; init; } = 1;
    public long Seed { get; init; }
}

/// <summary>What one training epoch did.</summary>
/// <param name="Epoch">1-based epoch number.</param>
/// <param name="Epochs">Epochs planned.</param>
/// <param name="Loss">Mean training loss over the epoch's batches (weighted by batch size; includes dropout).</param>
/// <param name="Accuracy">Training accuracy for classification, NaN for regression.</param>
/// <param name="ValidationLoss">Loss on the validation data, NaN without validation data.</param>
/// <param name="ValidationAccuracy">Accuracy on the validation data (classification), NaN otherwise.</param>
/// <param name="IsBest">Whether this epoch is the best so far by the validation metric (the weights kept).</param>
/// <param name="LearningRate">Learning rate at the epoch's last step.</param>
/// <param name="Examples">Training rows seen.</param>
/// <param name="Tokens">Steps (tokens) processed.</param>
/// <param name="Elapsed">Wall time of the epoch, validation included.</param>
/// <param name="Remaining">Estimated time for the remaining epochs.</param>
public sealed record RecurrentEpochInfo(int Epoch, int Epochs, double Loss, double Accuracy, double ValidationLoss,
    double ValidationAccuracy, bool IsBest, float LearningRate, long Examples, long Tokens, TimeSpan Elapsed, TimeSpan Remaining)
{
    /// <summary>Training throughput in steps (tokens) per second.</summary>
    public double TokensPerSecond => Elapsed.TotalSeconds > 0 ? Tokens / Elapsed.TotalSeconds : 0;
}
