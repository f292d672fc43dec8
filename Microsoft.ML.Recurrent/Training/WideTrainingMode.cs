namespace Microsoft.ML.Recurrent;

/// <summary>
/// How the two parts of a wide &amp; deep head learn (<see cref="RecurrentTrainerOptions.WideFeatureColumnName"/>). In
/// every mode the model's output is one sum of the recurrent head's output and the wide linear part's, so scoring,
/// the model format and the speed do not depend on the mode.
/// </summary>
public enum WideTrainingMode
{
    /// <summary>
    /// One loss on the sum (Cheng et al. 2016): each part learns what the other leaves. Where the wide part fits the
    /// training rows quickly, the recurrent part gets little gradient and learns less.
    /// </summary>
    Joint,

    /// <summary>
    /// Two models side by side: the recurrent part (with the head's bias) learns the labels alone, the wide part
    /// (reading the head's bias, which it does not change) learns them alone, each with its own loss. After training,
    /// both are halved into one output: the normalized geometric mean of the two models' probabilities (for
    /// regression, the mean of the two predictions). Neither part can starve the other.
    /// </summary>
    Ensemble,

    /// <summary>
    /// The recurrent part learns the labels alone; the wide part learns the residual: its loss is on the sum, with the
    /// recurrent part's output held fixed. The recurrent part is exactly what it would be without a wide part.
    /// </summary>
    Boosted,
}
