using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Layers;
using Microsoft.ML.Recurrent.Model;
using Microsoft.ML.Recurrent.Optimizers;

namespace Microsoft.ML.Recurrent.Training;

/// <summary>
/// Trains a forecast network (<see cref="ForecastHead"/>) on the windows of one series matrix [T, C] held once in
/// memory (<see cref="ForecastLayout"/>): every (window, target column) pair is a sample; each epoch visits them all in
/// an order shuffled from the seed. The loss is computed on the restored forecast (the window normalization undone),
/// in the series' units:
/// <code>
///   loss = mean over B·H of (ŷ − y)²   [+ Σ_q mean pinball_q(ŷ_q, y)  for each quantile output]
/// </code>
/// Validation after every epoch scores the validation windows' point forecasts (mean squared error); training stops
/// early after <see cref="TrainingSettings.EarlyStoppingPatience"/> epochs without improvement and keeps the best
/// epoch's weights. Deterministic for a given seed, and independent of the thread count. Knows nothing of ML.NET.
/// </summary>
internal sealed class ForecastTrainer
{
    private readonly RecurrentNetwork _network;
    private readonly ForecastLayout _layout;
    private readonly TrainingSettings _settings;
    private readonly Optimizer _optimizer;
    private readonly SeededRandom _random;
    private readonly ForecastBatch _batch;
    private readonly ForecastLoss _loss;
    private float[] _outputs = [], _dOutputs = [];
    private int[] _starts = [], _channels = [];

    public ForecastTrainer(RecurrentNetwork network, ForecastLayout layout, TrainingSettings settings)
    {
        if (network.Config.Head != NetworkHeadKind.Forecast || network.Config.OutputSize != layout.OutputSize
            || network.Config.ForecastSteps != layout.Steps || network.Config.InputSize != layout.FeaturesPerStep)
            throw new ArgumentException("The network's forecast head does not match the layout.", nameof(network));
        if (settings.Epochs <= 0) throw new ArgumentOutOfRangeException(nameof(settings), settings.Epochs, "The number of epochs must be positive.");
        if (settings.BatchSize <= 0) throw new ArgumentOutOfRangeException(nameof(settings), settings.BatchSize, "The batch size must be positive.");
        _network = network;
        _layout = layout;
        _settings = settings;
        _optimizer = Optimizer.Create(settings, network.Parameters.Length);
        _random = new SeededRandom(settings.Seed ^ 0x5DEECE66DL);
        _batch = new ForecastBatch(layout);
        _loss = new ForecastLoss(layout.Horizon, layout.Quantiles);
        network.Threads = settings.Threads;
    }

    /// <summary>Epoch whose weights were kept (the best validation epoch, or the last; 0 = the least-squares start).</summary>
    public int BestEpoch { get; private set; }

    /// <summary>
    /// Ridge of the least-squares start (relative to the number of samples), or a negative value for none. With a
    /// window skip, training starts from the linear model: the skip is fitted by ridge least squares to the training
    /// samples (closed form), the head's weight is zero and its bias the fit's constant, so the network's first output is
    /// that linear forecast and the recurrent part learns what it leaves. With validation, the start is scored as
    /// epoch 0 and kept if no epoch beats it.
    /// </summary>
    public double LinearStartRidge { get; init; } = -1;

    /// <summary>
    /// With <see cref="LinearStartRidge"/>: keep the skip at its least-squares values (the recurrent part and the head
    /// learn the residual of the linear forecast) instead of training it further.
    /// </summary>
    public bool FreezeLinearStart { get; init; }

    /// <summary>Largest least-squares system of the start (inputs + the constant): XᵀX is 8·P² bytes and its Cholesky P³/6 steps.</summary>
    public const int MaxLeastSquaresInputs = 4097;

    /// <summary>
    /// Trains on the windows <paramref name="training"/> of <paramref name="series"/> [T, C]; with
    /// <paramref name="validation"/>, scores those windows after every epoch. <paramref name="checkCancelled"/> runs once
    /// per batch and may throw. <see cref="RecurrentEpochInfo.ValidationLoss"/> is the validation mean squared error.
    /// </summary>
    /// <exception cref="ArgumentException">There are no training windows.</exception>
    /// <exception cref="InvalidOperationException">The loss or the gradients became NaN or infinite.</exception>
    public List<RecurrentEpochInfo> Train(float[] series, ForecastWindows training, ForecastWindows? validation = null,
        Action? checkCancelled = null, Action<RecurrentEpochInfo>? onEpoch = null)
    {
        if (training.Count == 0)
            throw new ArgumentException($"No training window fits: a window needs {training.LookBack} + {training.Horizon} rows.", nameof(training));
        int ct = _layout.Targets;
        long sampleCount = (long)training.Count * ct;
        if (sampleCount > int.MaxValue) throw new ArgumentException($"{sampleCount:N0} training samples are too many.", nameof(training));
        var samples = Enumerable.Range(0, (int)sampleCount).ToArray();   // sample s = window s / Ct, target s % Ct
        int batches = (samples.Length + _settings.BatchSize - 1) / _settings.BatchSize;
        long totalSteps = (long)batches * _settings.Epochs, step = 0;
        var reports = new List<RecurrentEpochInfo>();
        var best = new EarlyStopping(_network.Parameters, _settings.EarlyStoppingPatience);
        var started = System.Diagnostics.Stopwatch.StartNew();
        Parameter? frozenSkip = null;
        float[] frozenValues = [];
        if (LinearStartRidge >= 0 && _network.Config.SkipColumns > 0)
        {
            if (FreezeLinearStart) frozenSkip = _network.Parameters["skip.weight"];
            StartFromLeastSquares(series, training, samples.Length, checkCancelled);
            if (frozenSkip is not null) frozenValues = _network.Parameters.Value(frozenSkip).ToArray();
            if (validation is { } v0)
                best.Offer(0, Evaluate(series, v0).MeanSquaredError);
        }
        for (int epoch = 1; epoch <= _settings.Epochs; epoch++)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            _random.Shuffle(samples);
            double lossSum = 0;
            for (int first = 0; first < samples.Length; first += _settings.BatchSize)
            {
                checkCancelled?.Invoke();
                int b = Math.Min(_settings.BatchSize, samples.Length - first);
                var starts = Workspace.Ensure(ref _starts, b);
                var channels = Workspace.Ensure(ref _channels, b);
                for (int i = 0; i < b; i++)
                {
                    int s = samples[first + i];
                    starts[i] = training.TargetStart(s / ct);
                    channels[i] = s % ct;
                }
                _batch.Fill(series, starts, channels, withTargets: true);
                _network.Parameters.ZeroGradients();
                float loss = BatchLoss(_network, _batch, _loss, ref _outputs, ref _dOutputs, _random, backward: true);
                if (frozenSkip is { } skipRange)
                    _network.Parameters.Gradients.AsSpan(skipRange.Offset, skipRange.Length).Clear();   // no update, no share of the clipping norm
                if (!float.IsFinite(loss))
                    throw new InvalidOperationException($"Training diverged: the loss is {loss} in epoch {epoch}, batch {first / _settings.BatchSize + 1}. The model is not kept; try a lower learning rate.");
                OptimizerStep.ClipAndStep(_optimizer, _settings, _network.Parameters, step++, totalSteps, epoch, "batch", first / _settings.BatchSize + 1);
                if (frozenSkip is { } kept)
                    frozenValues.CopyTo(_network.Parameters.Values.AsSpan(kept.Offset, kept.Length));   // undo weight decay there
                lossSum += (double)loss * b;
            }

            double validationLoss = double.NaN;
            bool isBest = true;
            var validationClock = System.Diagnostics.Stopwatch.StartNew();
            if (validation is { } v)
            {
                validationLoss = Evaluate(series, v).MeanSquaredError;
                isBest = best.Offer(epoch, validationLoss);
            }
            else
            {
                best.Unvalidated(epoch);
            }
            BestEpoch = best.Epoch;
            var remaining = TimeSpan.FromTicks(started.Elapsed.Ticks / epoch * (_settings.Epochs - epoch));
            var report = new RecurrentEpochInfo(epoch, _settings.Epochs, lossSum / samples.Length, double.NaN,
                validationLoss, double.NaN, isBest, _optimizer.LearningRate, samples.Length, (long)samples.Length * _layout.Steps,
                clock.Elapsed, remaining)
            { ValidationElapsed = validation is null ? TimeSpan.Zero : validationClock.Elapsed };
            reports.Add(report);
            onEpoch?.Invoke(report);
            if (best.ShouldStop)
                break;
        }
        best.Restore();
        return reports;
    }

    /// <summary>
    /// The least-squares start (see <see cref="LinearStartRidge"/>): accumulates XᵀX and XᵀY over every training sample —
    /// X the skip's input (the window-normalized window and the future covariates) plus a constant, Y the
    /// window-normalized targets — solves, and writes the skip's weights (the same for the point forecast and every
    /// quantile), the head's bias, and a zero head weight.
    /// </summary>
    internal void StartFromLeastSquares(float[] series, ForecastWindows training, Action? checkCancelled = null)
    {
        if (LinearStartRidge < 0) throw new InvalidOperationException("Set LinearStartRidge (≥ 0) for a least-squares start.");
        StartFromLeastSquares(series, training, training.Count * _layout.Targets, checkCancelled);
    }


    private void StartFromLeastSquares(float[] series, ForecastWindows training, int sampleCount, Action? checkCancelled)
    {
        var head = (ForecastHead)_network.Head;
        int ct = _layout.Targets, h = _layout.Horizon, s = head.SkipSize, p = s + 1, f = _layout.FeaturesPerStep, n = _layout.Steps;
        if (p > MaxLeastSquaresInputs)
            throw new ArgumentException($"A least-squares start over {p - 1:N0} skip inputs (look-back + horizon × future covariates) is too large; at most {MaxLeastSquaresInputs - 1:N0}.", nameof(training));
        var fit = new LeastSquares(p, h);
        int batchSize = Math.Max(_settings.BatchSize, 256);
        var x = new float[batchSize * p];
        var y = new float[batchSize * h];
        var starts = new int[batchSize];
        var channels = new int[batchSize];
        // Every sample once, in index order (sample s = window s / Ct, target s % Ct); the order does not matter.
        for (int first = 0; first < sampleCount; first += batchSize)
        {
            checkCancelled?.Invoke();
            int b = Math.Min(batchSize, sampleCount - first);
            for (int i = 0; i < b; i++)
            {
                starts[i] = training.TargetStart((first + i) / ct);
                channels[i] = (first + i) % ct;
            }
            _batch.Fill(series, starts.AsSpan(0, b), channels.AsSpan(0, b), withTargets: true);
            var data = _batch.Data;
            for (int i = 0; i < b; i++)
            {
                var row = x.AsSpan(i * p, p);
                head.SkipRow(data.Features.Slice(i * n * f), f, data.Static.IsEmpty ? default : data.Static.Slice(i * _layout.StaticSize, _layout.StaticSize), row[..s]);
                row[s] = 1;
                var (shift, scale) = _batch.Statistics(i);
                for (int r = 0; r < h; r++) y[i * h + r] = (_batch.Targets[i * h + r] - shift) / scale;
            }
            fit.Add(b, x.AsSpan(0, b * p), y.AsSpan(0, b * h));
        }
        // A window of few degrees of freedom (a noiseless or constant series) makes XᵀX singular: raise the ridge until it solves.
        double[]? w = null;
        for (double ridge = LinearStartRidge; w is null; ridge = Math.Max(ridge * 10, 1e-6))
        {
            try
            {
                w = fit.Solve(ridge);   // [p, H]
            }
            catch (InvalidOperationException) when (ridge < 1e3)
            {
            }
        }
        var ps = _network.Parameters;
        var skip = ps.Value(ps["skip.weight"]);  // [O, s], O = (1 + Q)·H
        var bias = ps.Value(ps["head.bias"]);
        for (int k = 0; k < _layout.OutputsPerRow; k++)
            for (int r = 0; r < h; r++)
            {
                int o = k * h + r;
                for (int i = 0; i < s; i++) skip[o * s + i] = (float)w[i * h + r];
                bias[o] = (float)w[s * h + r];
            }
        ps.Value(ps["head.weight"]).Clear();
    }

    /// <summary>
    /// One batch's loss and, with <paramref name="backward"/>, its gradients (added into the network's): forward,
    /// restore the window normalization, <see cref="ForecastLoss"/> on the restored forecast, and back. The window
    /// statistics are constants: ∂/∂(network output) = scale · ∂/∂(restored forecast).
    /// </summary>
    internal static float BatchLoss(RecurrentNetwork network, ForecastBatch batch, ForecastLoss loss, ref float[] outputs, ref float[] dOutputs,
        SeededRandom? dropout, bool backward)
    {
        int b = batch.Count, o = loss.OutputSize;
        var output = Workspace.Ensure(ref outputs, b * o);
        var dOutput = Workspace.Ensure(ref dOutputs, b * o);
        network.Forward(batch.Batch, batch.Data, output, dropout);
        batch.Restore(output);
        float value = loss.Forward(b, output, batch.Targets, dOutput);
        if (backward && float.IsFinite(value))
        {
            for (int i = 0; i < b; i++)
                System.Numerics.Tensors.TensorPrimitives.Multiply(dOutput.Slice(i * o, o), batch.Statistics(i).Scale, dOutput.Slice(i * o, o));
            network.Backward(batch.Batch, batch.Data, dOutput);
        }
        return value;
    }

    /// <summary>
    /// The point forecasts' mean squared and absolute error over every (window, target) of <paramref name="windows"/>,
    /// in the series' units, with the current weights (no dropout).
    /// </summary>
    public (double MeanSquaredError, double MeanAbsoluteError) Evaluate(float[] series, ForecastWindows windows)
    {
        var network = _network.CreateInferenceSibling();
        network.Threads = _settings.Threads;
        return Evaluate(network, _layout, series, windows, Math.Max(_settings.BatchSize, 64));
    }

    /// <summary>
    /// <see cref="Evaluate(float[], ForecastWindows)"/> for any forecast network: errors of the point forecasts over every
    /// (window, target), accumulated in double.
    /// </summary>
    public static (double MeanSquaredError, double MeanAbsoluteError) Evaluate(RecurrentNetwork network, ForecastLayout layout,
        float[] series, ForecastWindows windows, int batchSize = 256)
    {
        int ct = layout.Targets, h = layout.Horizon, o = layout.OutputSize;
        long count = (long)windows.Count * ct;
        var batch = new ForecastBatch(layout);
        var starts = new int[batchSize];
        var channels = new int[batchSize];
        var outputs = new float[batchSize * o];
        double squares = 0, absolutes = 0;
        for (long first = 0; first < count; first += batchSize)
        {
            int b = (int)Math.Min(batchSize, count - first);
            for (int i = 0; i < b; i++)
            {
                long s = first + i;
                starts[i] = windows.TargetStart((int)(s / ct));
                channels[i] = (int)(s % ct);
            }
            batch.Fill(series, starts.AsSpan(0, b), channels.AsSpan(0, b), withTargets: true);
            network.Forward(batch.Batch, batch.Data, outputs);
            batch.Restore(outputs.AsSpan(0, b * o));
            var targets = batch.Targets;
            for (int i = 0; i < b; i++)
                for (int r = 0; r < h; r++)
                {
                    double e = outputs[i * o + r] - targets[i * h + r];
                    squares += e * e;
                    absolutes += Math.Abs(e);
                }
        }
        if (count == 0) return (double.NaN, double.NaN);
        double n = (double)count * h;
        return (squares / n, absolutes / n);
    }
}
