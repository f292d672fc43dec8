namespace Microsoft.ML.Recurrent.Model;

/// <summary>
/// The shape of a forecasting problem, free of ML.NET types. The series is one row-major matrix [T, C] whose columns
/// are, in this order, the <see cref="Targets"/> series to forecast, the <see cref="PastCovariates"/> (observed up to
/// now) and the <see cref="FutureCovariates"/> (known ahead, e.g. calendar features). Each target is one sample of the
/// network (channel independence: the targets share the weights; each is forecast from its own look-back window and
/// the covariates):
/// <code>
///   step t of n = L / w  (segment t of the look-back window, w = SegmentLength):
///     features [w·(1 + Cp)] = the target's w values, then each past covariate's w values (all window-normalized)
///   static [H·Cf] = the future covariates over the horizon, row by row (globally scaled only)
///   output [O] = [H point forecasts, then H per quantile]   (window-normalized; restored afterwards)
/// </code>
/// </summary>
internal sealed record ForecastLayout
{
    /// <summary>Look-back L (rows read per forecast).</summary>
    public int LookBack { get; init; }
    /// <summary>Horizon H (rows forecast at once).</summary>
    public int Horizon { get; init; }
    /// <summary>Segment length w: the rows one recurrent step reads (1 = a step per row). Divides L.</summary>
    public int SegmentLength { get; init; } = 1;
    /// <summary>Target columns Ct (≥ 1).</summary>
    public int Targets { get; init; } = 1;
    /// <summary>Past-covariate columns Cp.</summary>
    public int PastCovariates { get; init; }
    /// <summary>Future-covariate columns Cf.</summary>
    public int FutureCovariates { get; init; }
    /// <summary>Per-window normalization of the targets and past covariates.</summary>
    public WindowNormalization Normalization { get; init; } = WindowNormalization.LastValue;
    /// <summary>Quantile levels forecast beside the point forecast, ascending in (0, 1); empty for none.</summary>
    public float[] Quantiles { get; init; } = [];

    /// <summary>Columns C = Ct + Cp + Cf of the series matrix.</summary>
    public int Columns => Targets + PastCovariates + FutureCovariates;
    /// <summary>Recurrent steps n = L / w per forecast.</summary>
    public int Steps => LookBack / SegmentLength;
    /// <summary>Features per step w·(1 + Cp).</summary>
    public int FeaturesPerStep => SegmentLength * (1 + PastCovariates);
    /// <summary>Forecasts per horizon row: the point forecast and one per quantile.</summary>
    public int OutputsPerRow => 1 + Quantiles.Length;
    /// <summary>Network outputs per sample O = H·(1 + quantiles).</summary>
    public int OutputSize => Horizon * OutputsPerRow;
    /// <summary>Static values per sample S = H·Cf.</summary>
    public int StaticSize => Horizon * FutureCovariates;

    /// <summary>Throws when the shape is not usable; messages name the setting.</summary>
    public void Validate()
    {
        if (LookBack <= 0) throw new ArgumentOutOfRangeException(nameof(LookBack), LookBack, "The look-back must be positive.");
        if (Horizon <= 0) throw new ArgumentOutOfRangeException(nameof(Horizon), Horizon, "The horizon must be positive.");
        if (SegmentLength <= 0 || LookBack % SegmentLength != 0)
            throw new ArgumentOutOfRangeException(nameof(SegmentLength), SegmentLength, $"The segment length must be positive and divide the look-back ({LookBack}).");
        if (Targets <= 0) throw new ArgumentOutOfRangeException(nameof(Targets), Targets, "At least one target column is needed.");
        if (PastCovariates < 0 || FutureCovariates < 0) throw new ArgumentOutOfRangeException(nameof(PastCovariates), "Covariate counts must not be negative.");
        if (!Enum.IsDefined(Normalization)) throw new ArgumentOutOfRangeException(nameof(Normalization), Normalization, "Unknown window normalization.");
        for (int q = 0; q < Quantiles.Length; q++)
            if (!(Quantiles[q] > 0 && Quantiles[q] < 1) || (q > 0 && !(Quantiles[q] > Quantiles[q - 1])))
                throw new ArgumentOutOfRangeException(nameof(Quantiles), Quantiles[q], "Quantiles must be in (0, 1), distinct and ascending.");
        if ((long)LookBack + Horizon > 1 << 24 || (long)OutputSize * Math.Max(1, FeaturesPerStep) > 1 << 28)
            throw new ArgumentOutOfRangeException(nameof(Horizon), Horizon, "The look-back and horizon are too large.");
    }
}
