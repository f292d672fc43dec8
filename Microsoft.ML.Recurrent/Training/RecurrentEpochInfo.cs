namespace Microsoft.ML.Recurrent;

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
    /// <summary>The part of <see cref="Elapsed"/> spent scoring the validation data (zero without validation data).</summary>
    public TimeSpan ValidationElapsed { get; init; }

    /// <summary>
    /// exp(<see cref="ValidationLoss"/>): the validation perplexity of a language model, whose loss is the mean
    /// cross-entropy in nats per token (NaN without validation data; not meaningful for the other tasks).
    /// </summary>
    public double ValidationPerplexity => Math.Exp(ValidationLoss);

    /// <summary>Training throughput in steps (tokens) per second, over the epoch's training time (validation excluded).</summary>
    public double TokensPerSecond => (Elapsed - ValidationElapsed).TotalSeconds is > 0 and var seconds ? Tokens / seconds : 0;
}
