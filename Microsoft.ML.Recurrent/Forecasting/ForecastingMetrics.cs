namespace Microsoft.ML.Recurrent;

/// <summary>
/// How well a forecaster's forecasts of a series matched what happened (see
/// <see cref="RecurrentForecastingTransformer.Evaluate"/>): every forecast whose horizon lies inside the series, every
/// target and every horizon row counts once.
/// </summary>
public sealed class ForecastingMetrics
{
    internal ForecastingMetrics(long forecasts, int horizon, IReadOnlyList<string> targets, double mse, double mae,
        IReadOnlyDictionary<string, double> targetMse, IReadOnlyDictionary<string, double> targetMae, double coverage)
    {
        Forecasts = forecasts;
        Horizon = horizon;
        TargetColumnNames = targets;
        MeanSquaredError = mse;
        MeanAbsoluteError = mae;
        TargetMeanSquaredError = targetMse;
        TargetMeanAbsoluteError = targetMae;
        IntervalCoverage = coverage;
    }

    /// <summary>Forecasts scored (rows with a forecast and all of its horizon's actual values).</summary>
    public long Forecasts { get; }

    /// <summary>Rows per forecast.</summary>
    public int Horizon { get; }

    /// <summary>The targets scored.</summary>
    public IReadOnlyList<string> TargetColumnNames { get; }

    /// <summary>
    /// Mean squared error over all targets, on each target scaled by the model's training statistics (z-scores), so
    /// targets of different units weigh alike — the long-horizon literature's figure when the model was trained on
    /// the same split.
    /// </summary>
    public double MeanSquaredError { get; }

    /// <summary>Mean absolute error over all targets, scaled as <see cref="MeanSquaredError"/>.</summary>
    public double MeanAbsoluteError { get; }

    /// <summary>√<see cref="MeanSquaredError"/>.</summary>
    public double RootMeanSquaredError => Math.Sqrt(MeanSquaredError);

    /// <summary>Mean squared error of each target, in its own units.</summary>
    public IReadOnlyDictionary<string, double> TargetMeanSquaredError { get; }

    /// <summary>Mean absolute error of each target, in its own units.</summary>
    public IReadOnlyDictionary<string, double> TargetMeanAbsoluteError { get; }

    /// <summary>The fraction of actual values inside the forecast interval, or NaN when the model has none.</summary>
    public double IntervalCoverage { get; }
}
