using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Model.OnnxConverter;
using Microsoft.ML.Recurrent;
using Microsoft.ML.Runtime;

[assembly: LoadableClass(typeof(RecurrentForecastingTransformer), null, typeof(SignatureLoadModel),
    "Recurrent Forecasting", RecurrentForecastingTransformer.LoaderSignature)]

namespace Microsoft.ML.Recurrent;

/// <summary>
/// A trained recurrent forecaster (see <see cref="RecurrentForecastingEstimator"/>). As a transformer it reads a series
/// (one row per time step, in time order) and adds to each row t the forecast of rows t + 1 … t + H made from the
/// look-back rows up to and including t; <see cref="CreateForecastEngine"/> serves forecasts from the latest rows.
/// </summary>
/// <remarks>
/// <para>Output columns: <c>Forecast</c>, a vector of targets × horizon (target-major: the first target's H values,
/// then the next target's), and with an interval <c>LowerBound</c> and <c>UpperBound</c> of the same shape.</para>
/// <para>Scoring never throws on a row's content. A row gets NaN forecasts when fewer than <see cref="LookBack"/> rows
/// end at it, when a value its forecast reads is missing (NaN or infinite), or — with future covariates — when fewer
/// than <see cref="Horizon"/> rows follow it (the covariates over the horizon are read from the rows that follow).</para>
/// <para>Transform reads the input in order; when a forecast column is read, a second cursor over the model's columns
/// keeps the look-back rows (and, with future covariates, runs ahead by the horizon). The view it returns is read by
/// one cursor at a time (no shuffling, no parallel cursor set).</para>
/// </remarks>
public sealed class RecurrentForecastingTransformer : ITransformer
{
    internal const string LoaderSignature = "RecurrentForecasting";

    private static VersionInfo GetVersionInfo() => new(
        modelSignature: "RNNFRCST",
        verWrittenCur: 0x00010001, // Initial
        verReadableCur: 0x00010001,
        verWeCanReadBack: 0x00010001,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(RecurrentForecastingTransformer).Assembly.GetName().Name);

    private readonly IHost _host;
    private readonly ForecastModel _model;

    internal ForecastModel Model => _model;

    /// <summary>The engine state saved with the model by <see cref="RecurrentForecastEngine.Checkpoint(MLContext, Stream)"/>: the latest rows [count, C], raw units, or empty.</summary>
    internal float[] History { get; }

    /// <summary>The series forecast, in the order of the output vectors.</summary>
    public IReadOnlyList<string> TargetColumnNames => _model.TargetNames;

    /// <summary>The covariates read over the look-back window.</summary>
    public IReadOnlyList<string> PastCovariateColumnNames => _model.PastNames;

    /// <summary>The covariates read over the horizon.</summary>
    public IReadOnlyList<string> FutureCovariateColumnNames => _model.FutureNames;

    /// <summary>Rows of history each forecast reads.</summary>
    public int LookBack => _model.Layout.LookBack;

    /// <summary>Rows forecast at once.</summary>
    public int Horizon => _model.Layout.Horizon;

    /// <summary>Whether the forecasts come with an interval (<see cref="RecurrentForecastingEstimator.Options.IntervalCoverage"/>).</summary>
    public bool HasInterval => _model.HasInterval;

    /// <summary>The interval's coverage (its upper quantile minus its lower), or 0 without an interval.</summary>
    public float IntervalCoverage => HasInterval ? _model.Layout.Quantiles[^1] - _model.Layout.Quantiles[0] : 0;

    /// <summary>Output column of the forecasts.</summary>
    public string ForecastColumnName { get; }

    /// <summary>Output column of the lower bounds (with an interval).</summary>
    public string LowerBoundColumnName { get; }

    /// <summary>Output column of the upper bounds (with an interval).</summary>
    public string UpperBoundColumnName { get; }

    /// <summary>The trainer's thread count, or 0 for all processors.</summary>
    internal int NumberOfThreads { get; }

    internal RecurrentForecastingTransformer(IHostEnvironment env, ForecastModel model, string forecastColumnName,
        string lowerBoundColumnName, string upperBoundColumnName, int numberOfThreads, float[]? history = null)
    {
        _host = env.Register(nameof(RecurrentForecastingTransformer));
        _model = model;
        ForecastColumnName = forecastColumnName;
        LowerBoundColumnName = lowerBoundColumnName;
        UpperBoundColumnName = upperBoundColumnName;
        NumberOfThreads = numberOfThreads;
        History = history ?? [];
    }

    /// <summary>
    /// A forecast engine that starts from the rows of <paramref name="history"/> (the series up to now, same columns;
    /// only its last <see cref="LookBack"/> rows are kept), or from the state this model was checkpointed with, or empty.
    /// </summary>
    public RecurrentForecastEngine CreateForecastEngine(IDataView? history = null)
    {
        var engine = new RecurrentForecastEngine(this, History);
        if (history is not null) engine.Update(history);
        return engine;
    }

    /// <summary>
    /// Scores the forecasts this model makes over <paramref name="series"/> (one row per time step, in time order, with
    /// the model's columns) against what followed: every row with a forecast whose <see cref="Horizon"/> rows all lie in
    /// the series counts; rows whose forecast is NaN (no full window, a missing value) or whose actual values are
    /// missing are left out. Give it the look-back rows before the part to evaluate, so its first row has a forecast.
    /// </summary>
    public ForecastingMetrics Evaluate(IDataView series)
    {
        ArgumentNullException.ThrowIfNull(series);
        var l = _model.Layout;
        int ct = l.Targets, h = l.Horizon;
        // The targets' actual values, in order (NaN kept: they are skipped below).
        var actual = new List<float>();
        SeriesReader.CheckColumns(series.Schema, [.. _model.ColumnNames], Roles, "series");
        using (var cursor = series.GetRowCursor(_model.TargetNames.Select(n => series.Schema[n])))
        {
            var getters = SeriesReader.Getters(cursor, _model.TargetNames);
            while (cursor.MoveNext())
                foreach (var get in getters) actual.Add(get());
        }
        long rows = actual.Count / ct;
        var scored = Transform(series);
        var columns = new List<DataViewSchema.Column> { scored.Schema[ForecastColumnName] };
        if (HasInterval) columns.AddRange([scored.Schema[LowerBoundColumnName], scored.Schema[UpperBoundColumnName]]);
        var squares = new double[ct];
        var absolutes = new double[ct];
        double scaledSquares = 0, scaledAbsolutes = 0;
        long forecasts = 0, inside = 0;
        using (var cursor = scored.GetRowCursor(columns))
        {
            var forecast = cursor.GetGetter<VBuffer<float>>(columns[0]);
            var lower = HasInterval ? cursor.GetGetter<VBuffer<float>>(columns[1]) : null;
            var upper = HasInterval ? cursor.GetGetter<VBuffer<float>>(columns[2]) : null;
            VBuffer<float> f = default, lo = default, hi = default;
            for (long t = 0; cursor.MoveNext() && t + h < rows; t++)
            {
                forecast(ref f);
                var values = f.GetValues();
                bool usable = !float.IsNaN(values[0]);
                for (int k = 0; usable && k < ct; k++)
                    for (int r = 1; r <= h; r++)
                        if (!float.IsFinite(actual[(int)((t + r) * ct + k)])) usable = false;
                if (!usable) continue;
                lower?.Invoke(ref lo);
                upper?.Invoke(ref hi);
                for (int k = 0; k < ct; k++)
                    for (int r = 0; r < h; r++)
                    {
                        double y = actual[(int)((t + 1 + r) * ct + k)], e = values[k * h + r] - y;
                        squares[k] += e * e;
                        absolutes[k] += Math.Abs(e);
                        double z = e / _model.Scales[k];
                        scaledSquares += z * z;
                        scaledAbsolutes += Math.Abs(z);
                        if (HasInterval && lo.GetValues()[k * h + r] <= y && y <= hi.GetValues()[k * h + r]) inside++;
                    }
                forecasts++;
            }
        }
        double perTarget = Math.Max(1, forecasts * h), all = perTarget * ct;
        var names = _model.TargetNames;
        return new ForecastingMetrics(forecasts, h, names, forecasts == 0 ? double.NaN : scaledSquares / all, forecasts == 0 ? double.NaN : scaledAbsolutes / all,
            names.Select((n, k) => (n, k)).ToDictionary(x => x.n, x => forecasts == 0 ? double.NaN : squares[x.k] / perTarget),
            names.Select((n, k) => (n, k)).ToDictionary(x => x.n, x => forecasts == 0 ? double.NaN : absolutes[x.k] / perTarget),
            HasInterval && forecasts > 0 ? inside / all : double.NaN);
    }

    /// <summary>This model with <paramref name="history"/> as its saved engine state.</summary>
    internal RecurrentForecastingTransformer WithHistory(float[] history) =>
        new(_host, _model, ForecastColumnName, LowerBoundColumnName, UpperBoundColumnName, NumberOfThreads, history);

    // Factory method for SignatureLoadModel.
    private static RecurrentForecastingTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(ctx);
        ctx.CheckAtModel(GetVersionInfo());
        var reader = ModelEntry.Open(ctx, enveloped: true);
        string forecast = reader.ReadString("forecast column name", 1024);
        string lower = reader.ReadString("lower-bound column name", 1024);
        string upper = reader.ReadString("upper-bound column name", 1024);
        if (forecast.Length == 0 || lower.Length == 0 || upper.Length == 0 || forecast == lower || forecast == upper || lower == upper)
            throw reader.Error("output column names", "are empty or the same.");
        int threads = reader.ReadInt32("number of threads", 0, RecurrentModel.MaxThreads);
        var model = ForecastModel.Read(reader);
        int c = model.Layout.Columns;
        int rows = reader.ReadInt32("engine history rows", 0, model.Layout.LookBack);
        if ((long)rows * c * sizeof(float) > reader.Remaining)
            throw reader.Error("engine history rows", $"are {rows} of {c} values, more than the {reader.Remaining:N0} bytes left.");
        var history = new float[rows * c];
        reader.ReadSingles("engine history", history);
        int observed = model.Layout.Targets + model.Layout.PastCovariates;   // future covariates of past rows are never read
        for (int r = 0; r < rows; r++)
            for (int k = 0; k < observed; k++)
                if (!float.IsFinite(history[r * c + k]))
                    throw reader.Error("engine history", $"holds {history[r * c + k]} in row {r}, column {k}; observations are finite.");
        reader.ExpectEnd();
        return new RecurrentForecastingTransformer(env, model, forecast, lower, upper, threads, history);
    }

    // *** Binary format *** (inside ModelEntry's envelope)
    // string: forecast, lower-bound and upper-bound column names
    // i32: number of threads (0 = all processors)
    // forecast model: see ForecastModel.Write
    // i32: engine history rows R (≤ look-back); f32 × R·C: the rows, raw units (a checkpoint's state; 0 rows otherwise)
    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());
        ModelEntry.Write(ctx.Writer, writer =>
        {
            writer.Write(ForecastColumnName);
            writer.Write(LowerBoundColumnName);
            writer.Write(UpperBoundColumnName);
            writer.Write(NumberOfThreads);
            _model.Write(writer);
            writer.Write(History.Length / _model.Layout.Columns);
            foreach (float v in History) writer.Write(v);
        });
    }

    /// <summary>Not a row-to-row mapper: a row's forecast reads the rows before it.</summary>
    public bool IsRowToRowMapper => false;

    /// <summary>Not supported: a row's forecast reads the rows before it (use <see cref="CreateForecastEngine"/> to serve).</summary>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) =>
        throw new InvalidOperationException("A forecaster is not a row-to-row mapper: each row's forecast reads the rows before it. Use Transform on a series, or CreateForecastEngine to serve forecasts.");

    /// <summary>The input schema plus the forecast column (and the bounds, with an interval).</summary>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        SeriesReader.CheckColumns(inputSchema, [.. _model.ColumnNames], Roles, "input");
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(inputSchema);
        var type = new VectorDataViewType(NumberDataViewType.Single, _model.Layout.Targets * _model.Layout.Horizon);
        foreach (var name in OutputNames) builder.AddColumn(name, type);
        return builder.ToSchema();
    }

    private string[] OutputNames => HasInterval ? [ForecastColumnName, LowerBoundColumnName, UpperBoundColumnName] : [ForecastColumnName];

    private string[] Roles =>
    [
        .. _model.TargetNames.Select(_ => "target"), .. _model.PastNames.Select(_ => "past-covariate"), .. _model.FutureNames.Select(_ => "future-covariate"),
    ];

    /// <summary>Adds each row's forecast (see the class remarks).</summary>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new ForecastView(this, input, GetOutputSchema(input.Schema));
    }

    /// <summary>
    /// The transformed view: the input's columns, then the forecast columns; one cursor at a time, in order. ML.NET's
    /// ONNX converter finds it as a step of the pipeline and is told why it cannot be written.
    /// </summary>
    private sealed class ForecastView(RecurrentForecastingTransformer parent, IDataView input, DataViewSchema schema) : ITransformCanSaveOnnx
    {
        public IDataView Source => input;

        public bool CanSaveOnnx(OnnxContext ctx) => true; // so that SaveAsOnnx can say why not

        public void SaveAsOnnx(OnnxContext ctx) =>
            throw new NotSupportedException(
                $"{nameof(RecurrentForecastingTransformer)} cannot be exported to ONNX: each row's forecast reads the {parent._model.Layout.LookBack} rows before it " +
                "(and, with future covariates, the rows of the horizon after it), which a row-to-row ONNX graph never sees. Score it in ML.NET " +
                "(Transform, or CreateForecastEngine for one series at a time).");

        // Saved as a transformer (mlContext.Model.Save), never as a data transform.
        void ICanSaveModel.Save(ModelSaveContext ctx) =>
            throw new NotSupportedException($"The view of a {nameof(RecurrentForecastingTransformer)} is not saved on its own: save the transformer (mlContext.Model.Save).");

        public bool CanShuffle => false;

        public DataViewSchema Schema => schema;

        public long? GetRowCount() => input.GetRowCount();

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) =>
            new Cursor(parent, input, schema, columnsNeeded);

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
            [GetRowCursor(columnsNeeded, rand)];
    }

    /// <summary>
    /// Reads the input with a main cursor (the columns the caller asked for) and, when a forecast column is active, a
    /// second cursor over the model's columns that keeps the rows [t − L + 1, t + lookahead] in a ring buffer, the
    /// lookahead being the horizon with future covariates and 0 without.
    /// </summary>
    private sealed class Cursor : DataViewRowCursor
    {
        private readonly RecurrentForecastingTransformer _parent;
        private readonly DataViewRowCursor _main;
        private readonly DataViewSchema _schema;
        private readonly int _inputCount;
        private readonly bool[] _outputActive;
        private readonly DataViewRowCursor? _ahead;
        private readonly Func<float>[] _aheadGetters = [];
        private readonly ForecastModel.Scorer? _scorer;
        private readonly float[] _ring = [], _rows = [], _forecast = [], _lower = [], _upper = [];
        private readonly int _ringRows, _lookahead, _columns;
        private long _aheadRead;       // rows the ahead cursor has read
        private bool _aheadDone;
        private long _computedFor = -1;

        public Cursor(RecurrentForecastingTransformer parent, IDataView input, DataViewSchema schema, IEnumerable<DataViewSchema.Column> columnsNeeded)
        {
            _parent = parent;
            _schema = schema;
            _inputCount = input.Schema.Count;
            var needed = columnsNeeded.ToArray();
            _outputActive = new bool[schema.Count - _inputCount];
            foreach (var column in needed)
                if (column.Index >= _inputCount) _outputActive[column.Index - _inputCount] = true;
            _main = input.GetRowCursor(needed.Where(c => c.Index < _inputCount).Select(c => input.Schema[c.Index]));
            try
            {
                if (!_outputActive.Any(a => a)) return;
                var model = parent._model;
                var l = model.Layout;
                _columns = l.Columns;
                _lookahead = l.FutureCovariates > 0 ? l.Horizon : 0;
                _ringRows = l.LookBack + _lookahead;
                _ring = new float[_ringRows * _columns];
                _rows = new float[model.RowsRead * _columns];
                int size = l.Targets * l.Horizon;
                _forecast = new float[size];
                _lower = new float[model.HasInterval ? size : 0];
                _upper = new float[model.HasInterval ? size : 0];
                var names = model.ColumnNames.ToArray();
                _ahead = input.GetRowCursor(names.Select(n => input.Schema[n]));
                _aheadGetters = SeriesReader.Getters(_ahead, names);
                _scorer = new ForecastModel.Scorer(model) { Threads = 1 };
            }
            catch
            {
                _ahead?.Dispose();
                _main.Dispose();
                throw;
            }
        }

        public override DataViewSchema Schema => _schema;

        public override long Position => _main.Position;

        public override long Batch => _main.Batch;

        public override ValueGetter<DataViewRowId> GetIdGetter() => _main.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) =>
            column.Index < _inputCount ? _main.IsColumnActive(_main.Schema[column.Index]) : _outputActive[column.Index - _inputCount];

        public override bool MoveNext() => _main.MoveNext();

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index < _inputCount)
                return _main.GetGetter<TValue>(_main.Schema[column.Index]);
            int k = column.Index - _inputCount;
            if (!_outputActive[k]) throw new InvalidOperationException($"Column '{column.Name}' was not requested from this cursor.");
            if (typeof(TValue) != typeof(VBuffer<float>)) throw new InvalidOperationException($"Column '{column.Name}' holds VBuffer<float>, not {typeof(TValue).Name}.");
            ValueGetter<VBuffer<float>> getter = (ref VBuffer<float> value) =>
            {
                Compute();
                var source = k == 0 ? _forecast : k == 1 ? _lower : _upper;
                var editor = VBufferEditor.Create(ref value, source.Length);
                source.CopyTo(editor.Values);
                value = editor.Commit();
            };
            return (ValueGetter<TValue>)(Delegate)getter;
        }

        /// <summary>The forecast from the rows up to the current one (NaN when it cannot be made), once per row.</summary>
        private void Compute()
        {
            long t = _main.Position;
            if (t == _computedFor) return;
            _computedFor = t;
            var l = _parent._model.Layout;
            // Read ahead to row t + lookahead (or the end).
            while (!_aheadDone && _aheadRead <= t + _lookahead)
            {
                if (!_ahead!.MoveNext())
                {
                    _aheadDone = true;
                    break;
                }
                int slot = (int)(_aheadRead % _ringRows);
                for (int c = 0; c < _columns; c++) _ring[slot * _columns + c] = _aheadGetters[c]();
                _aheadRead++;
            }
            bool enough = t + 1 >= l.LookBack && _aheadRead > t + _lookahead;
            if (!enough)
            {
                _forecast.AsSpan().Fill(float.NaN);
                _lower.AsSpan().Fill(float.NaN);
                _upper.AsSpan().Fill(float.NaN);
                return;
            }
            // Rows [t − L + 1, t + lookahead] from the ring, in time order.
            long first = t - l.LookBack + 1;
            int count = l.LookBack + _lookahead;
            for (int i = 0; i < count; i++)
                _ring.AsSpan((int)((first + i) % _ringRows) * _columns, _columns).CopyTo(_rows.AsSpan(i * _columns));
            _scorer!.Forecast(_rows, _forecast, _lower, _upper);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _main.Dispose();
                _ahead?.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
