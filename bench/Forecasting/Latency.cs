using System.Diagnostics;
using Microsoft.ML.Recurrent;
using Microsoft.ML.Recurrent.Model;

namespace Forecasting;

/// <summary>
/// One forecast call as the engine makes it (ForecastModel.Scorer: scaling, window normalization, the network over
/// every target, restoring), for a recipe's shape with its initial weights: the time does not depend on the values.
/// </summary>
internal static class Latency
{
    public static (double MedianMs, double P90Ms) Measure(Recipe recipe, int targets, int calls = 2000)
    {
        var (layout, config) = OursForecast.Shapes(recipe with { }, targets);
        var network = new RecurrentNetwork(config);
        network.Initialize(recipe.Seed);
        var model = new ForecastModel([.. Enumerable.Range(0, targets).Select(i => $"y{i}")], [], [],
            Enumerable.Repeat(0f, targets).ToArray(), Enumerable.Repeat(1f, targets).ToArray(), layout, network.CreateInferenceSibling());
        var scorer = new ForecastModel.Scorer(model) { Threads = 1 };
        var rows = new float[model.RowsRead * layout.Columns];
        var random = new Random(1);
        for (int i = 0; i < rows.Length; i++) rows[i] = (float)random.NextDouble();
        var forecast = new float[targets * layout.Horizon];
        for (int i = 0; i < 200; i++) scorer.Forecast(rows, forecast, default, default);
        var times = new double[calls];
        for (int i = 0; i < calls; i++)
        {
            long start = Stopwatch.GetTimestamp();
            scorer.Forecast(rows, forecast, default, default);
            times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
        Array.Sort(times);
        return (times[calls / 2], times[calls * 9 / 10]);
    }
}
