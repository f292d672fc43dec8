namespace Microsoft.ML.Recurrent;

/// <summary>
/// How a forecaster normalizes each look-back window of each series before the network reads it, and restores the
/// forecast afterwards (per window and per series: instance normalization). The statistics are computed from the
/// look-back window only and are constants to the gradient (as in RevIN).
/// </summary>
public enum WindowNormalization
{
    /// <summary>None: the network reads the values as they are (after the forecaster's global scaling).</summary>
    None = 0,

    /// <summary>
    /// Subtract the window's last value and add it back to the forecast (SegRNN, NLinear): the network predicts the
    /// change from now.
    /// </summary>
    LastValue = 1,

    /// <summary>
    /// Subtract the window's mean and divide by its standard deviation (plus a small ε), and restore both on the forecast
    /// (RevIN, Kim et al. 2022, without the learnable affine part).
    /// </summary>
    MeanScale = 2,
}
