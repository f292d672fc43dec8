using Microsoft.ML.Data;
using Microsoft.ML.Recurrent;

namespace Microsoft.ML;

// The recurrent forecaster's catalog methods.
public static partial class RecurrentCatalog
{
    /// <summary>
    /// A recurrent forecaster (a GRU over segments of the look-back window, with a linear skip) that forecasts the next
    /// <paramref name="horizon"/> rows of <paramref name="targetColumnName"/> at once.
    /// </summary>
    /// <param name="catalog">The forecasting catalog.</param>
    /// <param name="targetColumnName">The series to forecast (Single or Double).</param>
    /// <param name="horizon">Rows forecast at once.</param>
    /// <param name="lookBack">Rows of history each forecast reads.</param>
    /// <param name="outputColumnName">The forecast vector's column.</param>
    public static RecurrentForecastingEstimator Recurrent(this ForecastingCatalog catalog, string targetColumnName, int horizon = 24,
        int lookBack = 336, string outputColumnName = "Forecast")
        => catalog.Recurrent(new RecurrentForecastingEstimator.Options
        {
            TargetColumnNames = [targetColumnName], Horizon = horizon, LookBack = lookBack, ForecastColumnName = outputColumnName,
        });

    /// <summary>A recurrent forecaster configured by <paramref name="options"/> (several targets, covariates, intervals).</summary>
    /// <param name="catalog">The forecasting catalog.</param>
    /// <param name="options">Columns, window, network and training options.</param>
    public static RecurrentForecastingEstimator Recurrent(this ForecastingCatalog catalog, RecurrentForecastingEstimator.Options options)
        => new(CatalogUtils.GetEnvironment(catalog ?? throw new ArgumentNullException(nameof(catalog))), options);
}
