namespace Microsoft.ML.Recurrent;

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
