using Microsoft.ML.Recurrent.Model;
using Microsoft.ML.Recurrent.Training;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// Trains a recurrent forecaster: direct multi-horizon, multivariate forecasts of one or more target series from their
/// look-back window, past covariates and known future covariates. Create it with
/// <c>mlContext.Forecasting.Recurrent(...)</c>. The fitted <see cref="RecurrentForecastingTransformer"/> adds each row's
/// forecast of the next <see cref="Options.Horizon"/> rows and serves forecasts through
/// <see cref="RecurrentForecastingTransformer.CreateForecastEngine"/>.
/// </summary>
/// <remarks>
/// <para>The input is one series: one row per time step, in time order, with a numeric column (Single or Double) per
/// variable. Windows are cut inside, as indices into one copy of the series: a training sample is the
/// <see cref="Options.LookBack"/> rows before a time t and the <see cref="Options.Horizon"/> rows from t.</para>
/// <para>The network (see docs/forecasting.md): every column is scaled by the training rows' mean and standard deviation;
/// each target is a sample of its own (the targets share the weights, as in PatchTST, DLinear and SegRNN): its window is
/// normalized per window (<see cref="Options.WindowNormalization"/>), cut into segments of
/// <see cref="Options.SegmentLength"/> rows — one recurrent step per segment, with the past covariates' values beside
/// it — and the top layer's final state gives all horizon rows at once through a linear head, added to a linear map of
/// the window (<see cref="Options.LinearSkip"/>, fitted first by least squares) and of the future covariates over the
/// horizon.</para>
/// <para>Missing values are refused, naming the row and column: impute them first (ML.NET's
/// <c>ReplaceMissingValues</c>).</para>
/// </remarks>
public sealed class RecurrentForecastingEstimator : IEstimator<RecurrentForecastingTransformer>
{
    /// <summary>Options of <see cref="RecurrentForecastingEstimator"/>. Defaults: see docs/forecasting.md for the study behind them.</summary>
    public sealed class Options
    {
        /// <summary>The series to forecast (at least one; Single or Double columns).</summary>
        public string[] TargetColumnNames = [];

        /// <summary>Covariates observed up to now (read over the look-back window only). Default none.</summary>
        public string[] PastCovariateColumnNames = [];

        /// <summary>
        /// Covariates known ahead, such as calendar features (read over the horizon; a forecast needs their values for the
        /// horizon's rows). Default none.
        /// </summary>
        public string[] FutureCovariateColumnNames = [];

        /// <summary>Rows of history each forecast reads. Default 336 (two weeks of hourly data).</summary>
        public int LookBack = 336;

        /// <summary>Rows forecast at once. Default 24.</summary>
        public int Horizon = 24;

        /// <summary>
        /// Rows per recurrent step (segment-wise recurrence, SegRNN): the window is read as LookBack / SegmentLength
        /// steps. Must divide <see cref="LookBack"/>; 1 reads a step per row. Default 24.
        /// </summary>
        public int SegmentLength = 24;

        /// <summary>Per-window normalization of each series (restored on the forecast). Default <see cref="WindowNormalization.LastValue"/>.</summary>
        public WindowNormalization WindowNormalization = WindowNormalization.LastValue;

        /// <summary>
        /// A linear map of the look-back window (DLinear's family) added to the recurrent forecast: fitted first by ridge
        /// least squares over every training window (closed form), then kept fixed while the recurrent part and its head,
        /// which start at zero, learn what the linear forecast leaves. With validation, the linear model alone is scored
        /// as epoch 0 and kept unless an epoch beats it. The future covariates always enter through a linear map. Default true.
        /// </summary>
        public bool LinearSkip = true;

        /// <summary>Ridge of the linear skip's least-squares fit, relative to the number of training samples. Default 0.01.</summary>
        public float LinearSkipRidge = 0.01f;

        /// <summary>
        /// Coverage of a prediction interval forecast beside the point forecast, e.g. 0.8 for the 10 % and 90 % quantiles
        /// (trained with the quantile loss); 0 for none. Default 0.
        /// </summary>
        public float IntervalCoverage;

        /// <summary>Recurrent cell. Default <see cref="RecurrentCellKind.Gru"/>.</summary>
        public RecurrentCellKind Cell = RecurrentCellKind.Gru;

        /// <summary>Hidden units of every layer. Default 256.</summary>
        public int HiddenSize = 256;

        /// <summary>Stacked layers. Default 1.</summary>
        public int NumberOfLayers = 1;

        /// <summary>Dropout between recurrent layers during training. Default 0.</summary>
        public float Dropout;

        /// <summary>Dropout on the final state before the head during training. Default 0.</summary>
        public float HeadDropout;

        /// <summary>Samples (window, target) per step. Default 256.</summary>
        public int BatchSize = 256;

        /// <summary>Passes over the training windows (the learning rate decays to zero over them). Default 5.</summary>
        public int NumberOfEpochs = 5;

        /// <summary>Peak learning rate (Adam). Default 0.001.</summary>
        public float LearningRate = 1e-3f;

        /// <summary>Learning-rate schedule. Default <see cref="LearningRateSchedule.Cosine"/>.</summary>
        public LearningRateSchedule LearningRateSchedule = LearningRateSchedule.Cosine;

        /// <summary>Weight decay (L2). Default 0.</summary>
        public float WeightDecay;

        /// <summary>
        /// Without validation data: the last fraction of the rows whose windows validate each epoch (chronological split;
        /// the best epoch is kept and training stops early). 0 trains on every row and keeps the last epoch. Default 0.2.
        /// </summary>
        public float ValidationFraction = 0.2f;

        /// <summary>Stop after this many epochs without a lower validation error (the best epoch is kept either way); 0 = never. Default 3.</summary>
        public int EarlyStoppingPatience = 3;

        /// <summary>Threads for training; null = all processors (scoring uses one thread per cursor or engine call). Default null.</summary>
        public int? NumberOfThreads;

        /// <summary>Seed for initialization, sample order and dropout; null takes one from the <c>MLContext</c>'s seed. Default null.</summary>
        public int? Seed;

        /// <summary>Stops training (with <see cref="OperationCanceledException"/>) within one step when cancelled.</summary>
        public CancellationToken CancellationToken;

        /// <summary>Called after every epoch; <see cref="RecurrentEpochInfo.ValidationLoss"/> is the validation mean squared error in the scaled units.</summary>
        public Action<RecurrentEpochInfo>? EpochCallback;

        /// <summary>Output column of the forecasts: a vector of targets × horizon (target-major). Default <c>Forecast</c>.</summary>
        public string ForecastColumnName = "Forecast";

        /// <summary>Output column of the interval's lower bounds (with <see cref="IntervalCoverage"/>). Default <c>LowerBound</c>.</summary>
        public string LowerBoundColumnName = "LowerBound";

        /// <summary>Output column of the interval's upper bounds (with <see cref="IntervalCoverage"/>). Default <c>UpperBound</c>.</summary>
        public string UpperBoundColumnName = "UpperBound";

        internal void Validate()
        {
            static void Positive(int value, string name)
            {
                if (value <= 0) throw new ArgumentOutOfRangeException(name, value, $"{name} must be positive.");
            }
            static void Fraction(float value, string name)
            {
                if (!(value >= 0 && value < 1)) throw new ArgumentOutOfRangeException(name, value, $"{name} must be in [0, 1).");
            }
            if (PastCovariateColumnNames is null || FutureCovariateColumnNames is null)
                throw new ArgumentNullException(PastCovariateColumnNames is null ? nameof(PastCovariateColumnNames) : nameof(FutureCovariateColumnNames), "Use an empty array for no covariates.");
            if (TargetColumnNames is null || TargetColumnNames.Length == 0)
                throw new ArgumentException("TargetColumnNames must name at least one column to forecast.", nameof(TargetColumnNames));
            var all = TargetColumnNames.Concat(PastCovariateColumnNames).Concat(FutureCovariateColumnNames).ToArray();
            foreach (var name in all)
                if (string.IsNullOrWhiteSpace(name)) throw new ArgumentException("Column names must not be empty.", nameof(TargetColumnNames));
            var repeated = all.GroupBy(n => n, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
            if (repeated is not null)
                throw new ArgumentException($"Column '{repeated.Key}' is named more than once among the targets and covariates.", nameof(TargetColumnNames));
            if (all.Length > ForecastModel.MaxColumns) throw new ArgumentException($"At most {ForecastModel.MaxColumns} columns.", nameof(TargetColumnNames));
            Positive(LookBack, nameof(LookBack));
            Positive(Horizon, nameof(Horizon));
            Positive(SegmentLength, nameof(SegmentLength));
            if (LookBack % SegmentLength != 0)
                throw new ArgumentOutOfRangeException(nameof(SegmentLength), SegmentLength, $"SegmentLength ({SegmentLength}) must divide LookBack ({LookBack}).");
            if ((long)LookBack + Horizon > ForecastModel.MaxWindow)
                throw new ArgumentOutOfRangeException(nameof(Horizon), Horizon, $"LookBack + Horizon must be at most {ForecastModel.MaxWindow}.");
            if (((long)LookBack + Horizon) * all.Length > ForecastModel.MaxWindowValues)
                throw new ArgumentOutOfRangeException(nameof(LookBack), LookBack, $"(LookBack + Horizon) × columns must be at most {ForecastModel.MaxWindowValues:N0}.");
            if (LinearSkip && (long)LookBack + (long)Horizon * FutureCovariateColumnNames.Length >= ForecastTrainer.MaxLeastSquaresInputs)
                throw new ArgumentOutOfRangeException(nameof(LinearSkip), LinearSkip,
                    $"LinearSkip fits a least-squares model of LookBack + Horizon × future covariates = {(long)LookBack + (long)Horizon * FutureCovariateColumnNames.Length:N0} inputs; at most {ForecastTrainer.MaxLeastSquaresInputs - 1:N0}. Turn LinearSkip off for such long windows.");
            Positive(HiddenSize, nameof(HiddenSize));
            Positive(NumberOfLayers, nameof(NumberOfLayers));
            Positive(BatchSize, nameof(BatchSize));
            Positive(NumberOfEpochs, nameof(NumberOfEpochs));
            if (BatchSize > RecurrentModel.MaxBatchSize) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, $"BatchSize must be at most {RecurrentModel.MaxBatchSize}.");
            if (!Enum.IsDefined(Cell)) throw new ArgumentOutOfRangeException(nameof(Cell), Cell, "Unknown cell kind.");
            if (!Enum.IsDefined(WindowNormalization)) throw new ArgumentOutOfRangeException(nameof(WindowNormalization), WindowNormalization, "Unknown window normalization.");
            if (!Enum.IsDefined(LearningRateSchedule)) throw new ArgumentOutOfRangeException(nameof(LearningRateSchedule), LearningRateSchedule, "Unknown schedule.");
            Fraction(IntervalCoverage, nameof(IntervalCoverage));
            Fraction(Dropout, nameof(Dropout));
            Fraction(HeadDropout, nameof(HeadDropout));
            Fraction(ValidationFraction, nameof(ValidationFraction));
            if (!(LearningRate > 0 && float.IsFinite(LearningRate))) throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "LearningRate must be positive.");
            if (!(LinearSkipRidge >= 0 && float.IsFinite(LinearSkipRidge))) throw new ArgumentOutOfRangeException(nameof(LinearSkipRidge), LinearSkipRidge, "LinearSkipRidge must be a non-negative number.");
            if (!(WeightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(WeightDecay), WeightDecay, "WeightDecay must not be negative.");
            if (EarlyStoppingPatience < 0) throw new ArgumentOutOfRangeException(nameof(EarlyStoppingPatience), EarlyStoppingPatience, "EarlyStoppingPatience must not be negative.");
            if (NumberOfThreads is <= 0 or > RecurrentModel.MaxThreads) throw new ArgumentOutOfRangeException(nameof(NumberOfThreads), NumberOfThreads, $"NumberOfThreads must be between 1 and {RecurrentModel.MaxThreads}.");
            var outputs = new[] { ForecastColumnName, LowerBoundColumnName, UpperBoundColumnName };
            if (outputs.Any(string.IsNullOrWhiteSpace) || outputs.Distinct(StringComparer.Ordinal).Count() != 3)
                throw new ArgumentException("ForecastColumnName, LowerBoundColumnName and UpperBoundColumnName must be set and different.", nameof(ForecastColumnName));
        }

        /// <summary>The quantile levels of the interval: (1 − coverage)/2 and (1 + coverage)/2, or none.</summary>
        internal float[] Quantiles => IntervalCoverage > 0 ? [(1 - IntervalCoverage) / 2, (1 + IntervalCoverage) / 2] : [];
    }

    private readonly IHost _host;
    private readonly Options _options;

    internal RecurrentForecastingEstimator(IHostEnvironment env, Options options)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _host = env.Register(nameof(RecurrentForecastingEstimator));
        _options = options;
    }

    private string[] Names => [.. _options.TargetColumnNames, .. _options.PastCovariateColumnNames, .. _options.FutureCovariateColumnNames];

    private string[] Roles =>
    [
        .. _options.TargetColumnNames.Select(_ => "target"), .. _options.PastCovariateColumnNames.Select(_ => "past-covariate"),
        .. _options.FutureCovariateColumnNames.Select(_ => "future-covariate"),
    ];

    /// <summary>Trains on the series <paramref name="input"/> (validating on its last <see cref="Options.ValidationFraction"/>).</summary>
    public RecurrentForecastingTransformer Fit(IDataView input) => Fit(input, null);

    /// <summary>
    /// Trains on the series <paramref name="input"/>; with <paramref name="validationData"/> — the rows that follow
    /// it in time, same columns — scores the windows whose horizon lies in the validation rows after every epoch and keeps the best epoch.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or not numeric.</exception>
    /// <exception cref="InvalidOperationException">A value is missing (NaN), or the series is shorter than a window.</exception>
    public RecurrentForecastingTransformer Fit(IDataView input, IDataView? validationData)
    {
        ArgumentNullException.ThrowIfNull(input);
        using var channel = _host.Start("Training");
        var names = Names;
        var roles = Roles;
        var o = _options;
        var series = SeriesReader.Read(input, names, roles, "training data", _host.CheckAlive);
        int c = names.Length, rows = series.Length / c;
        int trainEnd = rows, validationEnd = rows;
        if (validationData is not null)
        {
            var more = SeriesReader.Read(validationData, names, roles, "validation data", _host.CheckAlive);
            series = [.. series, .. more];
            validationEnd = series.Length / c;
        }
        else if (o.ValidationFraction > 0)
        {
            trainEnd = rows - (int)Math.Round(rows * (double)o.ValidationFraction);
        }
        var training = new ForecastWindows(o.LookBack, o.Horizon, 0, trainEnd);
        if (training.Count == 0)
            throw new InvalidOperationException($"The series has {rows:N0} rows{(trainEnd < rows ? $", {trainEnd:N0} of them for training (ValidationFraction {o.ValidationFraction})" : "")}: " +
                $"a look-back of {o.LookBack} and a horizon of {o.Horizon} need at least {o.LookBack + o.Horizon:N0} training rows. Lower LookBack or Horizon, or provide a longer history.");
        ForecastWindows? validation = new ForecastWindows(o.LookBack, o.Horizon, trainEnd, validationEnd);
        if (validation.Value.Count == 0)
        {
            if (trainEnd < validationEnd)
                channel.Warning($"The validation rows ({validationEnd - trainEnd:N0}) hold no full horizon of {o.Horizon}: training without validation; the last epoch is kept.");
            validation = null;
        }

        // Global scaling by the training rows' statistics (the validation rows are not looked at).
        var means = new float[c];
        var scales = new float[c];
        for (int k = 0; k < c; k++)
        {
            double sum = 0, squares = 0;
            for (int r = 0; r < trainEnd; r++) sum += series[r * c + k];
            double mean = sum / trainEnd;
            for (int r = 0; r < trainEnd; r++) squares += (series[r * c + k] - mean) * (series[r * c + k] - mean);
            double std = Math.Sqrt(squares / trainEnd);
            if (!(std > 1e-12 * Math.Max(1, Math.Abs(mean))))
            {
                channel.Warning($"The {roles[k]} column '{names[k]}' is constant over the training rows; it is scaled by 1.");
                std = 1;
            }
            means[k] = (float)mean;
            scales[k] = (float)std;
        }
        for (int r = 0; r < series.Length / c; r++)
            for (int k = 0; k < c; k++) series[r * c + k] = (series[r * c + k] - means[k]) / scales[k];

        var layout = new ForecastLayout
        {
            LookBack = o.LookBack, Horizon = o.Horizon, SegmentLength = o.SegmentLength, Targets = o.TargetColumnNames.Length,
            PastCovariates = o.PastCovariateColumnNames.Length, FutureCovariates = o.FutureCovariateColumnNames.Length,
            Normalization = o.WindowNormalization, Quantiles = o.Quantiles,
        };
        var network = new RecurrentNetwork(new NetworkConfig
        {
            Cell = o.Cell, InputSize = layout.FeaturesPerStep, HiddenSize = o.HiddenSize, NumLayers = o.NumberOfLayers, Dropout = o.Dropout,
            Head = NetworkHeadKind.Forecast, OutputSize = layout.OutputSize, HeadDropout = o.HeadDropout, ForecastSteps = layout.Steps,
            SkipColumns = o.LinearSkip ? layout.SegmentLength : 0, StaticSize = layout.StaticSize,
        });
        long seed = o.Seed ?? _host.Rand.Next();
        int threads = o.NumberOfThreads ?? Environment.ProcessorCount;
        network.Initialize(seed);
        channel.Info($"Training a {o.NumberOfLayers}-layer {o.Cell} forecaster (hidden {o.HiddenSize}, {network.Parameters.Length:N0} parameters): " +
            $"{layout.Targets} target(s), {layout.PastCovariates} past and {layout.FutureCovariates} future covariate(s); look-back {o.LookBack} in {layout.Steps} segments of {o.SegmentLength}, horizon {o.Horizon}; " +
            $"{training.Count:N0} training windows{(validation is null ? "" : $", {validation.Value.Count:N0} validation windows")}; {threads} thread(s), seed {seed}.");
        var trainer = new ForecastTrainer(network, layout, new TrainingSettings
        {
            Epochs = o.NumberOfEpochs, BatchSize = o.BatchSize, LearningRate = o.LearningRate, Schedule = o.LearningRateSchedule,
            WeightDecay = o.WeightDecay, GradientClipNorm = 0, EarlyStoppingPatience = validation is null ? 0 : o.EarlyStoppingPatience,
            Threads = threads, Seed = seed,
        })
        {
            LinearStartRidge = o.LinearSkip ? o.LinearSkipRidge : -1,
            FreezeLinearStart = true,
        };
        var token = o.CancellationToken;
        trainer.Train(series, training, validation, () =>
        {
            _host.CheckAlive();
            token.ThrowIfCancellationRequested();
        }, report =>
        {
            channel.Info($"Epoch {report.Epoch}/{report.Epochs}: loss {report.Loss:F4}" +
                (double.IsNaN(report.ValidationLoss) ? "" : $", validation MSE {report.ValidationLoss:F4}{(report.IsBest ? " (best)" : "")}") +
                $", lr {report.LearningRate:G3}, {report.Elapsed.TotalSeconds:F1} s, ETA {report.Remaining:hh\\:mm\\:ss}");
            o.EpochCallback?.Invoke(report);
        });
        if (validation is not null)
            channel.Info(trainer.BestEpoch == 0
                ? "Keeping the linear skip alone (epoch 0): no epoch of the recurrent part beat it on the validation windows."
                : $"Keeping the weights of epoch {trainer.BestEpoch}, the best on the validation windows.");
        var model = new ForecastModel(o.TargetColumnNames.ToArray(), o.PastCovariateColumnNames.ToArray(), o.FutureCovariateColumnNames.ToArray(),
            means, scales, layout, network.CreateInferenceSibling());
        return new RecurrentForecastingTransformer(_host, model, o.ForecastColumnName, o.LowerBoundColumnName, o.UpperBoundColumnName,
            o.NumberOfThreads ?? 0);
    }

    /// <summary>The input columns it needs and the output columns it adds.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        var columns = inputSchema.ToDictionary(col => col.Name);
        var names = Names;
        var roles = Roles;
        for (int i = 0; i < names.Length; i++)
        {
            if (!inputSchema.TryFindColumn(names[i], out var column))
                throw new ArgumentOutOfRangeException(nameof(inputSchema), $"The {roles[i]} column '{names[i]}' is not in the input.");
            if (column.Kind != SchemaShape.Column.VectorKind.Scalar || (column.ItemType != Data.NumberDataViewType.Single && column.ItemType != Data.NumberDataViewType.Double))
                throw new ArgumentOutOfRangeException(nameof(inputSchema), $"The {roles[i]} column '{names[i]}' has type {column.ItemType}; a forecaster reads Single or Double values.");
        }
        var output = new Dictionary<string, SchemaShape.Column>(columns);
        foreach (var name in _options.IntervalCoverage > 0
            ? new[] { _options.ForecastColumnName, _options.LowerBoundColumnName, _options.UpperBoundColumnName }
            : [_options.ForecastColumnName])
            output[name] = new SchemaShape.Column(name, SchemaShape.Column.VectorKind.Vector, Data.NumberDataViewType.Single, false);
        return new SchemaShape(output.Values);
    }
}
