using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Layers;
using Microsoft.ML.Recurrent.Model;
using Microsoft.ML.Recurrent.Training;

namespace Microsoft.ML.Recurrent.Tests.Forecasting;

/// <summary>The forecasting core: window arithmetic, window normalization, batch assembly, the head's and the losses' gradients.</summary>
[TestClass]
public sealed class ForecastCoreTests
{
    [TestMethod]
    public void WindowsAreExactlyTheTargetStartsThatFit()
    {
        // Property test over random series lengths, look-backs, horizons and target ranges, against brute force.
        var random = new Random(12);
        for (int trial = 0; trial < 2000; trial++)
        {
            int length = random.Next(1, 200), lookBack = random.Next(1, 60), horizon = random.Next(1, 60);
            int begin = random.Next(0, length + 1), end = random.Next(begin, length + 1);
            var windows = new ForecastWindows(lookBack, horizon, begin, end);
            var expected = new List<int>();
            for (int t0 = 0; t0 <= length; t0++)
                if (t0 >= begin && t0 - lookBack >= 0 && t0 + horizon <= end) expected.Add(t0);
            Assert.AreEqual(expected.Count, windows.Count, $"L {lookBack} H {horizon} [{begin}, {end})");
            for (int k = 0; k < windows.Count; k++)
            {
                Assert.AreEqual(expected[k], windows.TargetStart(k));
                Assert.AreEqual(expected[k] - lookBack, windows.InputStart(k));
                Assert.IsTrue(windows.InputStart(k) >= 0 && windows.TargetStart(k) + horizon <= end);
            }
            Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => windows.TargetStart(windows.Count));
            Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => windows.TargetStart(-1));
        }
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new ForecastWindows(0, 1, 0, 5));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new ForecastWindows(1, 0, 0, 5));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new ForecastWindows(1, 1, 4, 3));
    }

    [TestMethod]
    [DataRow(WindowNormalization.None)]
    [DataRow(WindowNormalization.LastValue)]
    [DataRow(WindowNormalization.MeanScale)]
    public void WindowNormalizationIsInvertedExactlyByRestore(WindowNormalization kind)
    {
        var random = new Random(3);
        for (int trial = 0; trial < 200; trial++)
        {
            int length = random.Next(1, 50), stride = random.Next(1, 4);
            var series = new float[length * stride];
            float level = (float)(random.NextDouble() * 200 - 100), spread = (float)Math.Pow(10, random.NextDouble() * 4 - 2);
            for (int i = 0; i < series.Length; i++) series[i] = level + spread * (float)(random.NextDouble() * 2 - 1);
            var (shift, scale) = InstanceNormalization.Statistics(kind, series, length, stride);
            var normalized = new float[length];
            InstanceNormalization.Normalize(series, stride, shift, scale, normalized);
            if (kind == WindowNormalization.LastValue) Assert.AreEqual(0f, normalized[^1]);
            if (kind == WindowNormalization.MeanScale && length > 1)
            {
                // Float inputs carry rounding of about 6e-8·|level|, which normalization magnifies by 1/spread.
                double tolerance = 1e-5 * (1 + Math.Abs(level) / spread);
                double mean = normalized.Average(), variance = normalized.Select(v => (v - mean) * (v - mean)).Average();
                Assert.AreEqual(0, mean, tolerance);
                double exact = variance * scale * scale / (scale * scale - InstanceNormalization.Epsilon); // without ε, the variance is 1
                Assert.AreEqual(1, exact, 1e-3 + tolerance, $"variance {variance}, scale {scale}");
            }
            var restored = (float[])normalized.Clone();
            InstanceNormalization.Restore(restored, shift, scale);
            for (int i = 0; i < length; i++)
                Assert.AreEqual(series[i * stride], restored[i], 1e-5f * (Math.Abs(level) + spread), $"{kind} trial {trial} at {i}");
        }
        // A constant window: scale √ε for MeanScale (never 0), normalized to zeros, restored to the constant.
        float[] flat = [4f, 4f, 4f];
        var (s0, s1) = InstanceNormalization.Statistics(kind, flat, 3, 1);
        Assert.IsTrue(s1 > 0);
        var z = new float[3];
        InstanceNormalization.Normalize(flat, 1, s0, s1, z);
        if (kind != WindowNormalization.None) CollectionAssert.AreEqual(new float[3], z);
        InstanceNormalization.Restore(z, s0, s1);
        CollectionAssert.AreEqual(flat, z);
    }

    /// <summary>A series [T, C] whose value at (row, column) is row + column/10, so every read can be checked by value.</summary>
    private static float[] IndexSeries(int rows, int columns)
    {
        var series = new float[rows * columns];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < columns; c++) series[r * columns + c] = r + c / 10f;
        return series;
    }

    [TestMethod]
    public void BatchReadsTheWindowsSegmentsCovariatesAndTargets()
    {
        // 2 targets, 1 past covariate, 2 future covariates; L 6 in segments of 3, H 2.
        var layout = new ForecastLayout { LookBack = 6, Horizon = 2, SegmentLength = 3, Targets = 2, PastCovariates = 1, FutureCovariates = 2, Normalization = WindowNormalization.None };
        var series = IndexSeries(20, layout.Columns);
        var batch = new ForecastBatch(layout);
        batch.Fill(series, [6, 10], [1, 0], withTargets: true);
        Assert.AreEqual(2, batch.Count);
        Assert.AreEqual(2, batch.Batch.MaxLength);
        var f = batch.Data.Features.ToArray();   // [B·n, w·(1 + Cp)] = [4, 6]
        // Sample 0: target column 1 over rows 0..5, then covariate column 2 over the same rows; step 1 = rows 3..5.
        CollectionAssert.AreEqual(new[] { 0.1f, 1.1f, 2.1f, 0.2f, 1.2f, 2.2f }, f[..6]);
        CollectionAssert.AreEqual(new[] { 3.1f, 4.1f, 5.1f, 3.2f, 4.2f, 5.2f }, f[6..12]);
        CollectionAssert.AreEqual(new[] { 7f, 8f, 9f, 7.2f, 8.2f, 9.2f }, f[18..24]);
        // Static: future covariates (columns 3, 4) over the horizon rows, row by row.
        CollectionAssert.AreEqual(new[] { 6.3f, 6.4f, 7.3f, 7.4f, 10.3f, 10.4f, 11.3f, 11.4f }, batch.Data.Static.ToArray());
        CollectionAssert.AreEqual(new[] { 6.1f, 7.1f, 10f, 11f }, batch.Targets.ToArray());
        // Too early (no full look-back) and too late (no full horizon) are refused, naming the rows.
        var early = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => batch.Fill(series, [5], [0], withTargets: true));
        StringAssert.Contains(early.Message, "rows [-1, 7)");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => batch.Fill(series, [19], [0], withTargets: true));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => batch.Fill(series, [6], [2], withTargets: true));
    }

    [TestMethod]
    public void BatchNormalizesEachWindowAndRestoresItsForecast()
    {
        var layout = new ForecastLayout { LookBack = 4, Horizon = 3, SegmentLength = 2, Targets = 1, PastCovariates = 1, Normalization = WindowNormalization.MeanScale };
        float[] series = [1, 10, 2, 30, 3, 20, 6, 40, 0, 0, 0, 0, 0, 0];   // [7, 2]
        var batch = new ForecastBatch(layout);
        batch.Fill(series, [4], [0], withTargets: false);
        var (shift, scale) = batch.Statistics(0);
        Assert.AreEqual(3f, shift);
        Assert.AreEqual(MathF.Sqrt(3.5f + InstanceNormalization.Epsilon), scale, 1e-6f);
        var f = batch.Data.Features;
        Assert.AreEqual((1 - 3) / scale, f[0], 1e-6f);
        Assert.AreEqual((6 - 3) / scale, f[5], 1e-6f);
        // The covariate has its own statistics: mean 25, so its values are centred.
        Assert.AreEqual(0f, f[2] + f[3] + f[6] + f[7], 1e-5f);
        float[] outputs = [0f, 1f, -1f];
        batch.Restore(outputs);
        CollectionAssert.AreEqual(new[] { 3f, 3f + scale, 3f - scale }, outputs);
    }

    [TestMethod]
    [DataRow(WindowNormalization.MeanScale, true, 0)]
    [DataRow(WindowNormalization.LastValue, false, 2)]
    [DataRow(WindowNormalization.None, true, 2)]
    public void ForecastGradientsMatchFiniteDifferences(WindowNormalization normalization, bool skip, int futureCovariates)
    {
        // The whole forecast path: window normalization → GRU → forecast head (final state + skip over the window and
        // the future covariates) → restore → point MSE + two pinball losses. Head dropout with a fixed mask.
        float[] quantiles = [0.1f, 0.9f];
        var layout = new ForecastLayout
        {
            LookBack = 6, Horizon = 2, SegmentLength = 2, Targets = 2, PastCovariates = 1, FutureCovariates = futureCovariates,
            Normalization = normalization, Quantiles = quantiles,
        };
        var network = new RecurrentNetwork(new NetworkConfig
        {
            Cell = RecurrentCellKind.Gru, InputSize = layout.FeaturesPerStep, HiddenSize = 3, NumLayers = 2, Dropout = 0.2f,
            Head = NetworkHeadKind.Forecast, OutputSize = layout.OutputSize, HeadDropout = 0.2f, ForecastSteps = layout.Steps,
            SkipColumns = skip ? layout.SegmentLength : 0, StaticSize = layout.StaticSize,
        });
        network.Initialize(3);
        new SeededRandom(4).FillUniform(network.Parameters.Values, -0.5f, 0.5f); // the skip starts at 0: give it values
        var random = new Random(5);
        var series = new float[12 * layout.Columns];
        for (int i = 0; i < series.Length; i++) series[i] = (float)(random.NextDouble() * 4 - 2);
        var batch = new ForecastBatch(layout);
        batch.Fill(series, [6, 9, 7], [0, 1, 1], withTargets: true);
        // Targets far from every forecast, so no pinball kink lies within the finite-difference step.
        var targets = MemoryMarshalTargets(batch);
        for (int i = 0; i < targets.Length; i++) targets[i] += i % 2 == 0 ? 6f : -6f;
        var loss = new ForecastLoss(layout.Horizon, quantiles);
        float[] outputs = [], dOutputs = [];
        double Loss() => ForecastTrainer.BatchLoss(network, batch, loss, ref outputs, ref dOutputs, new SeededRandom(8), backward: false);
        network.Parameters.ZeroGradients();
        ForecastTrainer.BatchLoss(network, batch, loss, ref outputs, ref dOutputs, new SeededRandom(8), backward: true);
        var ps = network.Parameters;
        var failures = new List<string>();
        foreach (var p in ps.Parameters)
            GradientCheckTests.CheckAll(p.Length, i => ps.Values[p.Offset + i], (i, v) => ps.Values[p.Offset + i] = v, ps.Gradient(p).ToArray(), Loss, p.Name, failures);
        Assert.AreEqual(0, failures.Count, string.Join("\n", failures.Take(20)));
        Assert.AreEqual(skip || futureCovariates > 0, ps.Parameters.Any(p => p.Name == "skip.weight"));
    }

    /// <summary>The batch's target buffer, writable (the test moves targets away from the forecasts).</summary>
    private static Span<float> MemoryMarshalTargets(ForecastBatch batch) =>
        System.Runtime.InteropServices.MemoryMarshal.CreateSpan(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(batch.Targets), batch.Targets.Length);

    [TestMethod]
    public void PinballLossHasTheQuantileAsItsMinimizer()
    {
        // Over a sample, the constant minimizing the mean pinball loss at q is the sample's q-quantile; its gradient
        // changes sign there.
        var values = Enumerable.Range(0, 101).Select(i => (float)i).ToArray();
        var d = new float[101];
        foreach (float q in new[] { 0.1f, 0.5f, 0.9f })
        {
            float Loss(float c) => PinballLoss.Forward(q, Enumerable.Repeat(c, 101).ToArray(), values, d);
            float best = Enumerable.Range(0, 101).Select(i => (float)i).MinBy(Loss);
            Assert.AreEqual(q * 100, best, 1f, $"q {q}");
            PinballLoss.Forward(q, Enumerable.Repeat(best - 5, 101).ToArray(), values, d);
            Assert.IsTrue(d.Sum() < 0);
            PinballLoss.Forward(q, Enumerable.Repeat(best + 5, 101).ToArray(), values, d);
            Assert.IsTrue(d.Sum() > 0);
        }
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => PinballLoss.Forward(1f, values, values, d));
    }

    [TestMethod]
    public void LeastSquaresRecoversAnExactLinearMap()
    {
        var random = new Random(4);
        var fit = new LeastSquares(4, 2);
        for (int batch = 0; batch < 3; batch++)
        {
            var x = new float[50 * 4];
            var y = new float[50 * 2];
            for (int i = 0; i < 50; i++)
            {
                for (int k = 0; k < 3; k++) x[i * 4 + k] = (float)(random.NextDouble() * 2 - 1);
                x[i * 4 + 3] = 1;   // the constant column
                y[i * 2] = 2 * x[i * 4] - x[i * 4 + 1] + 0.5f * x[i * 4 + 2] + 3;
                y[i * 2 + 1] = -x[i * 4 + 2] - 1;
            }
            fit.Add(50, x, y);
        }
        var w = fit.Solve(0);   // [4, 2]
        double[] expected = [2, 0, -1, 0, 0.5, -1, 3, -1];
        for (int i = 0; i < 8; i++) Assert.AreEqual(expected[i], w[i], 1e-4, $"w[{i}]");
        // A ridge shrinks the weights, not the constant.
        var shrunk = fit.Solve(10);
        Assert.IsTrue(Math.Abs(shrunk[0]) < 1);
        Assert.ThrowsExactly<InvalidOperationException>(() => new LeastSquares(2, 1).Solve(0));
    }

    [TestMethod]
    public void LeastSquaresStartIsTheLinearModelAndIsKeptWhenNothingBeatsIt()
    {
        // A noiseless daily sine: the next day is an exact linear function of the last one, so the start alone forecasts
        // it; a learning rate too small to move the weights leaves it the best epoch (0).
        int rows = 400;
        var series = new float[rows];
        for (int t = 0; t < rows; t++) series[t] = MathF.Sin(2 * MathF.PI * t / 24) + 0.01f * t;   // rank-deficient windows: the ridge is raised
        var layout = new ForecastLayout { LookBack = 48, Horizon = 24, SegmentLength = 12, Normalization = WindowNormalization.LastValue };
        var network = new RecurrentNetwork(new NetworkConfig
        {
            Cell = RecurrentCellKind.Gru, InputSize = layout.FeaturesPerStep, HiddenSize = 8, Head = NetworkHeadKind.Forecast,
            OutputSize = layout.OutputSize, ForecastSteps = layout.Steps, SkipColumns = layout.SegmentLength,
        });
        network.Initialize(1);
        var trainer = new ForecastTrainer(network, layout, new TrainingSettings { Epochs = 2, BatchSize = 32, LearningRate = 1e-12f, Seed = 1 })
        {
            LinearStartRidge = 1e-7,
        };
        var training = new ForecastWindows(48, 24, 0, 300);
        var validation = new ForecastWindows(48, 24, 300, rows);
        trainer.Train(series, training, validation);
        var (mse, _) = trainer.Evaluate(series, validation);
        Assert.IsTrue(mse < 1e-6, $"validation MSE {mse}");
        Assert.AreEqual(0, trainer.BestEpoch);
        var ps = network.Parameters;
        CollectionAssert.AreEqual(new float[ps["head.weight"].Length], ps.Value(ps["head.weight"]).ToArray(), "the head starts at zero");

        // Frozen, the skip keeps its least-squares values through training, weight decay included; the rest learns.
        var frozen = new RecurrentNetwork(network.Config);
        frozen.Initialize(1);
        var frozenTrainer = new ForecastTrainer(frozen, layout, new TrainingSettings { Epochs = 2, BatchSize = 32, LearningRate = 1e-2f, WeightDecay = 0.1f, Seed = 1 })
        {
            LinearStartRidge = 1e-4, FreezeLinearStart = true,
        };
        frozenTrainer.StartFromLeastSquares(series, training);
        var start = frozen.Parameters.Value(frozen.Parameters["skip.weight"]).ToArray();
        frozenTrainer.Train(series, training);
        CollectionAssert.AreEqual(start, frozen.Parameters.Value(frozen.Parameters["skip.weight"]).ToArray(), "the frozen skip moved");
        Assert.IsTrue(frozen.Parameters.Value(frozen.Parameters["head.weight"]).ToArray().Any(v => v != 0), "the head learned nothing");
    }
}
