namespace Microsoft.ML.Recurrent;

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
