using System.Collections.Concurrent;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// Serves forecasts from a trained <see cref="RecurrentForecastingTransformer"/>: it keeps the latest
/// <see cref="RecurrentForecastingTransformer.LookBack"/> rows of the series, <see cref="Update(IDataView)"/> appends new
/// observations, <see cref="Predict"/> forecasts the next rows, and <see cref="Checkpoint(MLContext, Stream)"/> saves the
/// model together with this state. Thread-safe: updates are serialized, and concurrent predictions each use their own
/// activations over the shared weights.
/// </summary>
public sealed class RecurrentForecastEngine
{
    private readonly RecurrentForecastingTransformer _transformer;
    private readonly ForecastModel _model;
    private readonly object _gate = new();
    private readonly float[] _history;       // ring of the latest L rows [L, C], raw units
    private readonly ConcurrentBag<ForecastModel.Scorer> _scorers = new();
    private long _rows;                      // rows appended so far (including the initial state)

    internal RecurrentForecastEngine(RecurrentForecastingTransformer transformer, float[] initial)
    {
        _transformer = transformer;
        _model = transformer.Model;
        var l = _model.Layout;
        _history = new float[l.LookBack * l.Columns];
        for (int r = 0; r < initial.Length / l.Columns; r++)
            Append(initial.AsSpan(r * l.Columns, l.Columns));
    }

    /// <summary>Rows observed so far (a forecast needs at least the look-back).</summary>
    public long ObservationCount
    {
        get { lock (_gate) return _rows; }
    }

    /// <summary>
    /// Appends the rows of <paramref name="observations"/> (the series' next rows, in time order, with the model's
    /// target and covariate columns). Missing values are refused with their row and column, and then no row is appended.
    /// </summary>
    public void Update(IDataView observations)
    {
        ArgumentNullException.ThrowIfNull(observations);
        var names = _model.ColumnNames.ToArray();
        string[] roles = [.. _model.TargetNames.Select(_ => "target"), .. _model.PastNames.Select(_ => "past-covariate"), .. _model.FutureNames.Select(_ => "future-covariate")];
        var rows = SeriesReader.Read(observations, names, roles, "observations");
        lock (_gate)
            for (int r = 0; r < rows.Length / names.Length; r++)
                Append(rows.AsSpan(r * names.Length, names.Length));
    }

    /// <summary>
    /// Appends one row: the targets' values (in <see cref="RecurrentForecastingTransformer.TargetColumnNames"/>' order),
    /// the past covariates' and the future covariates' (null when the model has none; a row's own future covariates
    /// are not read by later forecasts and may be null).
    /// </summary>
    public void Update(float[] targets, float[]? pastCovariates = null, float[]? futureCovariates = null)
    {
        ArgumentNullException.ThrowIfNull(targets);
        var l = _model.Layout;
        Check(targets, l.Targets, "targets", _model.TargetNames);
        Check(pastCovariates ?? [], l.PastCovariates, "past covariates", _model.PastNames);
        if (futureCovariates is not null && futureCovariates.Length != l.FutureCovariates)
            throw new ArgumentException($"Expected {l.FutureCovariates} future covariate values, got {futureCovariates.Length}.", nameof(futureCovariates));
        var row = new float[l.Columns];
        targets.CopyTo(row, 0);
        pastCovariates?.CopyTo(row, l.Targets);
        if (futureCovariates is not null) futureCovariates.CopyTo(row, l.Targets + l.PastCovariates);
        else row.AsSpan(l.Targets + l.PastCovariates).Fill(float.NaN);
        lock (_gate) Append(row);
    }

    private static void Check(float[] values, int expected, string what, string[] names)
    {
        if (values.Length != expected)
            throw new ArgumentException($"Expected {expected} {what} ({string.Join(", ", names)}), got {values.Length}.", what);
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i]))
                throw new ArgumentException($"The value of '{names[i]}' is {values[i]}; the forecaster does not impute missing values.", what);
    }

    private void Append(ReadOnlySpan<float> row)
    {
        int slot = (int)(_rows % _model.Layout.LookBack);
        row.CopyTo(_history.AsSpan(slot * _model.Layout.Columns));
        _rows++;
    }

    /// <summary>
    /// Forecasts the next <see cref="RecurrentForecastingTransformer.Horizon"/> rows of every target from the latest
    /// rows. With future covariates, pass their values over the horizon as [H, Cf] row-major (horizon row by row).
    /// </summary>
    /// <exception cref="InvalidOperationException">Fewer rows than the look-back have been observed.</exception>
    /// <exception cref="ArgumentException">The future covariates are missing, of the wrong size, or not finite.</exception>
    public RecurrentForecast Predict(float[]? futureCovariates = null)
    {
        var l = _model.Layout;
        int c = l.Columns, rowsRead = _model.RowsRead;
        if (l.FutureCovariates > 0 && (futureCovariates is null || futureCovariates.Length != l.Horizon * l.FutureCovariates))
            throw new ArgumentException($"This model reads {l.FutureCovariates} future covariate(s) ({string.Join(", ", _model.FutureNames)}) over the horizon: pass {l.Horizon} × {l.FutureCovariates} values, row by row.", nameof(futureCovariates));
        if (l.FutureCovariates == 0 && futureCovariates is { Length: > 0 })
            throw new ArgumentException("This model has no future covariates.", nameof(futureCovariates));
        var rows = new float[rowsRead * c];
        lock (_gate)
        {
            if (_rows < l.LookBack)
                throw new InvalidOperationException($"A forecast reads the latest {l.LookBack} rows; {_rows} have been observed. Update the engine with more history.");
            long first = _rows - l.LookBack;
            for (int i = 0; i < l.LookBack; i++)
                _history.AsSpan((int)((first + i) % l.LookBack) * c, c).CopyTo(rows.AsSpan(i * c));
        }
        for (int r = 0; r < rowsRead - l.LookBack; r++)
            futureCovariates.AsSpan(r * l.FutureCovariates, l.FutureCovariates).CopyTo(rows.AsSpan((l.LookBack + r) * c + l.Targets + l.PastCovariates));
        int size = l.Targets * l.Horizon;
        var values = new float[size];
        var lower = _model.HasInterval ? new float[size] : null;
        var upper = _model.HasInterval ? new float[size] : null;
        if (!_scorers.TryTake(out var scorer))
            scorer = new ForecastModel.Scorer(_model) { Threads = 1 };
        try
        {
            var (row, column) = scorer.Forecast(rows, values, lower, upper);
            if (row >= l.LookBack)
                throw new ArgumentException($"The future covariate '{_model.ColumnNames.ElementAt(column)}' is not finite at horizon row {row - l.LookBack}.", nameof(futureCovariates));
            if (row >= 0)   // observations are checked when they arrive; a state that holds one anyway is reported as such
                throw new InvalidOperationException($"The engine's state holds a value of '{_model.ColumnNames.ElementAt(column)}' that is not finite, {l.LookBack - row} rows back.");
        }
        finally
        {
            _scorers.Add(scorer);
        }
        return new RecurrentForecast(_model.TargetNames, l.Horizon, values, lower, upper);
    }

    /// <summary>
    /// Saves the model together with the engine's state (its latest rows) as an ML.NET model zip; load it with
    /// <c>mlContext.Model.Load</c> and call <see cref="RecurrentForecastingTransformer.CreateForecastEngine"/> to continue
    /// from where this engine is.
    /// </summary>
    public void Checkpoint(MLContext mlContext, Stream stream)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(stream);
        var l = _model.Layout;
        float[] state;
        lock (_gate)
        {
            int count = (int)Math.Min(_rows, l.LookBack);
            state = new float[count * l.Columns];
            long first = _rows - count;
            for (int i = 0; i < count; i++)
                _history.AsSpan((int)((first + i) % l.LookBack) * l.Columns, l.Columns).CopyTo(state.AsSpan(i * l.Columns));
        }
        mlContext.Model.Save(_transformer.WithHistory(state), null, stream);
    }

    /// <summary>Saves the model and the engine's state to a file (see <see cref="Checkpoint(MLContext, Stream)"/>).</summary>
    public void Checkpoint(MLContext mlContext, string path)
    {
        using var stream = File.Create(path);
        Checkpoint(mlContext, stream);
    }
}
