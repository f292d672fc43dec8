using Microsoft.ML.Data;

namespace Microsoft.ML.Recurrent.Tests.Forecasting;

/// <summary>The forecaster through ML.NET: training, Transform, the engine, checkpoints and bad input.</summary>
[TestClass]
public sealed class ForecastingEstimatorTests
{
    public sealed class Step
    {
        public float Load { get; set; }
        public float Temperature { get; set; }
        public float Hour { get; set; }
    }

    /// <summary>
    /// A daily-seasonal series (period 24) with a weekly swing and noise; <c>Temperature</c> leads the load by 3 rows (a past
    /// covariate that helps); <c>Hour</c> is the hour of day (a known future covariate).
    /// </summary>
    internal static Step[] Series(int rows, int seed = 1)
    {
        var random = new Random(seed);
        var steps = new Step[rows];
        for (int t = 0; t < rows; t++)
        {
            double day = 2 * Math.PI * t / 24, week = 2 * Math.PI * t / 168;
            steps[t] = new Step
            {
                Load = (float)(10 + 3 * Math.Sin(day) + 1.5 * Math.Sin(week) + 0.3 * (random.NextDouble() - 0.5)),
                Temperature = (float)(20 + 5 * Math.Sin(2 * Math.PI * (t + 3) / 24)),
                Hour = t % 24,
            };
        }
        return steps;
    }

    internal static RecurrentForecastingEstimator.Options SmallOptions(bool covariates = false, float interval = 0) => new()
    {
        TargetColumnNames = ["Load"],
        PastCovariateColumnNames = covariates ? ["Temperature"] : [],
        FutureCovariateColumnNames = covariates ? ["Hour"] : [],
        LookBack = 48, Horizon = 12, SegmentLength = 12, HiddenSize = 16, NumberOfEpochs = 8, BatchSize = 32,
        LearningRate = 3e-3f, IntervalCoverage = interval, NumberOfThreads = 1, Seed = 3,
    };

    /// <summary>Mean squared error of the Forecast column against the actual next rows, and of the last value, over rows with a forecast.</summary>
    private static (double Ours, double LastValue, int Rows) Errors(IDataView scored, Step[] steps, int horizon, int from)
    {
        var forecasts = scored.GetColumn<VBuffer<float>>("Forecast").Select(v => v.DenseValues().ToArray()).ToArray();
        double ours = 0, naive = 0;
        int rows = 0;
        for (int t = from; t + horizon < steps.Length; t++)
        {
            var f = forecasts[t];
            if (float.IsNaN(f[0])) continue;
            for (int r = 0; r < horizon; r++)
            {
                double actual = steps[t + 1 + r].Load;
                ours += (f[r] - actual) * (f[r] - actual);
                naive += (steps[t].Load - actual) * (steps[t].Load - actual);
            }
            rows++;
        }
        return (ours / (rows * horizon), naive / (rows * horizon), rows);
    }

    [TestMethod]
    public void ForecastsASeasonalSeriesFarBetterThanTheLastValue()
    {
        var ml = new MLContext(seed: 1);
        var steps = Series(700);
        var train = ml.Data.LoadFromEnumerable(steps[..560]);
        var model = ml.Forecasting.Recurrent(SmallOptions(covariates: true)).Fit(train);
        // Scored on the whole series, errors counted on the forecasts made from row 560 on (after the training rows).
        var scored = model.Transform(ml.Data.LoadFromEnumerable(steps));
        var (ours, naive, rows) = Errors(scored, steps, 12, from: 560);
        Assert.IsTrue(rows > 100);
        Assert.IsTrue(ours < 0.25 * naive, $"MSE {ours:F4} vs last value {naive:F4}");
        // Evaluate scores the same forecasts: given the look-back rows before row 560, its first forecast is row 560's.
        var metrics = model.Evaluate(ml.Data.LoadFromEnumerable(steps[(560 - 47)..]));
        Assert.AreEqual(rows, metrics.Forecasts);
        Assert.AreEqual(ours, metrics.TargetMeanSquaredError["Load"], 1e-9 * ours);
        Assert.AreEqual(metrics.TargetMeanSquaredError["Load"] / (model.Model.Scales[0] * (double)model.Model.Scales[0]), metrics.MeanSquaredError, 1e-6 * metrics.MeanSquaredError);
        Assert.IsTrue(double.IsNaN(metrics.IntervalCoverage));
    }

    [TestMethod]
    public void TransformAgreesWithTheEngineAndMarksRowsWithoutAFullWindow()
    {
        var ml = new MLContext(seed: 1);
        var steps = Series(300);
        var options = SmallOptions(covariates: true, interval: 0.8f);
        options.NumberOfEpochs = 40;   // 5 steps per epoch: the quantile outputs need a few hundred steps
        var model = ml.Forecasting.Recurrent(options).Fit(ml.Data.LoadFromEnumerable(steps[..240]));
        Assert.IsTrue(model.HasInterval);
        Assert.AreEqual(0.8f, model.IntervalCoverage, 1e-6f);
        var scored = model.Transform(ml.Data.LoadFromEnumerable(steps));
        Assert.AreEqual(12, ((VectorDataViewType)scored.Schema["Forecast"].Type).Size);
        var forecasts = scored.GetColumn<VBuffer<float>>("Forecast").Select(v => v.DenseValues().ToArray()).ToArray();
        var lower = scored.GetColumn<VBuffer<float>>("LowerBound").Select(v => v.DenseValues().ToArray()).ToArray();
        var upper = scored.GetColumn<VBuffer<float>>("UpperBound").Select(v => v.DenseValues().ToArray()).ToArray();
        Assert.AreEqual(300, forecasts.Length);
        // Rows 0–46 have fewer than 48 rows of history; rows 288–299 have fewer than 12 rows of future covariates after them.
        for (int t = 0; t < 300; t++)
            Assert.AreEqual(t < 47 || t > 287, forecasts[t].All(float.IsNaN), $"row {t}");
        // Row t's forecast is the engine's after observing rows 0..t, given the hours of rows t + 1..t + 12.
        var engine = model.CreateForecastEngine();
        int inside = 0, total = 0;
        for (int t = 0; t <= 287; t++)
        {
            engine.Update([steps[t].Load], [steps[t].Temperature], [steps[t].Hour]);
            if (t < 47) continue;
            var hours = Enumerable.Range(t + 1, 12).Select(r => steps[r].Hour).ToArray();
            var f = engine.Predict(hours);
            CollectionAssert.AreEqual(forecasts[t], f.Values, $"row {t}");
            CollectionAssert.AreEqual(lower[t], f.LowerBounds, $"row {t}");
            CollectionAssert.AreEqual(upper[t], f.UpperBounds, $"row {t}");
            for (int r = 0; r < 12; r++)
            {
                Assert.IsTrue(f.LowerBounds![r] <= f.UpperBounds![r]);
                if (steps[t + 1 + r].Load >= f.LowerBounds[r] && steps[t + 1 + r].Load <= f.UpperBounds[r]) inside++;
                total++;
            }
        }
        // An 80 % interval from a small model after 8 epochs: its coverage is in a wide band around 80 %.
        double coverage = (double)inside / total;
        Console.WriteLine($"coverage of the 80 % interval: {coverage:P1} over {total} forecasts");
        Assert.IsTrue(coverage > 0.5 && coverage < 0.99, $"coverage {coverage:P1}");
        var metrics = model.Evaluate(ml.Data.LoadFromEnumerable(steps));
        Assert.AreEqual(288 - 47, metrics.Forecasts);
        Assert.AreEqual(coverage, metrics.IntervalCoverage, 1e-12);
        Assert.AreEqual(12, engine.Predict(Enumerable.Repeat(1f, 12).ToArray())["Load"].Length);
    }

    [TestMethod]
    public void EnginePredictionsAreIdenticalFromManyThreads()
    {
        var ml = new MLContext(seed: 1);
        var steps = Series(200);
        var model = ml.Forecasting.Recurrent(SmallOptions()).Fit(ml.Data.LoadFromEnumerable(steps));
        var engine = model.CreateForecastEngine(ml.Data.LoadFromEnumerable(steps[..100]));
        Assert.AreEqual(100, engine.ObservationCount);
        var expected = engine.Predict().Values;
        var results = new float[8][][];
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            results[i] = new float[50][];
            for (int k = 0; k < 50; k++) results[i][k] = engine.Predict().Values;
        });
        foreach (var perThread in results)
            foreach (var values in perThread)
                CollectionAssert.AreEqual(expected, values);
        // Updates from several threads while predicting: every row lands once, and predictions never fail.
        Parallel.For(0, 4, i =>
        {
            for (int k = 0; k < 25; k++)
            {
                engine.Update([steps[100 + i].Load]);
                Assert.AreEqual(12, engine.Predict().Values.Length);
            }
        });
        Assert.AreEqual(200, engine.ObservationCount);
    }

    [TestMethod]
    public void CheckpointSavesTheModelWithTheEnginesState()
    {
        var ml = new MLContext(seed: 1);
        var steps = Series(260);
        var model = ml.Forecasting.Recurrent(SmallOptions(covariates: true)).Fit(ml.Data.LoadFromEnumerable(steps[..200]));
        var engine = model.CreateForecastEngine(ml.Data.LoadFromEnumerable(steps[..230]));
        var hours = Enumerable.Range(230, 12).Select(r => (float)(r % 24)).ToArray();
        var expected = engine.Predict(hours).Values;
        using var checkpoint = new MemoryStream();
        engine.Checkpoint(ml, checkpoint);
        checkpoint.Position = 0;
        var loaded = (RecurrentForecastingTransformer)new MLContext(seed: 5).Model.Load(checkpoint, out _);
        var resumed = loaded.CreateForecastEngine();
        Assert.AreEqual(48, resumed.ObservationCount); // the look-back is all the state there is
        CollectionAssert.AreEqual(expected, resumed.Predict(hours).Values);
        // Both continue identically.
        engine.Update([steps[230].Load], [steps[230].Temperature], null);
        resumed.Update([steps[230].Load], [steps[230].Temperature], null);
        hours = Enumerable.Range(231, 12).Select(r => (float)(r % 24)).ToArray();
        CollectionAssert.AreEqual(engine.Predict(hours).Values, resumed.Predict(hours).Values);
        // The plain model saves no state.
        using var plain = new MemoryStream();
        ml.Model.Save(model, null, plain);
        plain.Position = 0;
        Assert.AreEqual(0, ((RecurrentForecastingTransformer)ml.Model.Load(plain, out _)).CreateForecastEngine().ObservationCount);
    }

    [TestMethod]
    public void BadInputGetsClearErrors()
    {
        var ml = new MLContext(seed: 1);
        var steps = Series(200);
        steps[137].Temperature = float.NaN;
        var nan = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Forecasting.Recurrent(SmallOptions(covariates: true)).Fit(ml.Data.LoadFromEnumerable(steps)));
        StringAssert.Contains(nan.Message, "'Temperature'");
        StringAssert.Contains(nan.Message, "row 137");
        StringAssert.Contains(nan.Message, "ReplaceMissingValues");

        var shortSeries = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Forecasting.Recurrent(SmallOptions()).Fit(ml.Data.LoadFromEnumerable(Series(70))));
        StringAssert.Contains(shortSeries.Message, "at least 60 training rows");

        var options = SmallOptions();
        options.PastCovariateColumnNames = ["Humidity"];
        var missing = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Forecasting.Recurrent(options).Fit(ml.Data.LoadFromEnumerable(Series(200))));
        StringAssert.Contains(missing.Message, "past-covariate column 'Humidity'");

        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Forecasting.Recurrent(new RecurrentForecastingEstimator.Options { TargetColumnNames = ["Load"], LookBack = 50, SegmentLength = 24 }));
        Assert.ThrowsExactly<ArgumentException>(() => ml.Forecasting.Recurrent(new RecurrentForecastingEstimator.Options { TargetColumnNames = ["Load"], PastCovariateColumnNames = ["Load"] }));
        Assert.ThrowsExactly<ArgumentException>(() => ml.Forecasting.Recurrent(new RecurrentForecastingEstimator.Options()));
        Assert.ThrowsExactly<ArgumentNullException>(() => ml.Forecasting.Recurrent(new RecurrentForecastingEstimator.Options { TargetColumnNames = ["Load"], PastCovariateColumnNames = null! }));
        var tooLong = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Forecasting.Recurrent(new RecurrentForecastingEstimator.Options { TargetColumnNames = ["Load"], LookBack = 8760 }));
        StringAssert.Contains(tooLong.Message, "Turn LinearSkip off");

        var model = ml.Forecasting.Recurrent(SmallOptions(covariates: true)).Fit(ml.Data.LoadFromEnumerable(Series(200)));
        var engine = model.CreateForecastEngine();
        var early = Assert.ThrowsExactly<InvalidOperationException>(() => engine.Predict(new float[12]));
        StringAssert.Contains(early.Message, "latest 48 rows; 0 have been observed");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => engine.Update([float.NaN], [1f])).Message, "'Load'");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => engine.Update([1f, 2f], [1f])).Message, "Expected 1 targets");
        engine.Update(ml.Data.LoadFromEnumerable(Series(60)));
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => engine.Predict()).Message, "12 × 1 values");
        var hours = new float[12];
        hours[5] = float.PositiveInfinity;
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => engine.Predict(hours)).Message, "'Hour' is not finite at horizon row 5");

        // Scoring never throws on content: a missing value in a window gives NaN forecasts for the rows that read it.
        var scoredSteps = Series(120);
        scoredSteps[70].Load = float.NaN;
        var forecasts = model.Transform(ml.Data.LoadFromEnumerable(scoredSteps)).GetColumn<VBuffer<float>>("Forecast").Select(v => v.GetItemOrDefault(0)).ToArray();
        for (int t = 47; t < 108; t++)
            Assert.AreEqual(t >= 70 && t < 70 + 48, float.IsNaN(forecasts[t]), $"row {t}");
        // A missing column at scoring time is named.
        var noHour = ml.Data.LoadFromEnumerable(Series(100).Select(s => new { s.Load, s.Temperature }));
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => model.Transform(noHour)).Message, "future-covariate column 'Hour'");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => model.Evaluate(noHour)).Message, "future-covariate column 'Hour'");
    }
}
