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
    public long Seed { get; init; }
}

/// <summary>What one epoch did.</summary>
/// <param name="Epoch">1-based epoch number.</param>
/// <param name="Loss">Mean training loss over the epoch's batches (weighted by batch size).</param>
/// <param name="Accuracy">Training accuracy for classification, NaN for regression.</param>
/// <param name="Examples">Examples seen.</param>
/// <param name="Tokens">Steps (tokens) processed.</param>
/// <param name="Elapsed">Wall time of the epoch.</param>
public sealed record EpochReport(int Epoch, double Loss, double Accuracy, long Examples, long Tokens, TimeSpan Elapsed)
{
    /// <summary>Throughput in steps (tokens) per second.</summary>
    public double TokensPerSecond => Elapsed.TotalSeconds > 0 ? Tokens / Elapsed.TotalSeconds : 0;
}
