using ScottPlot;

namespace ForecastingDemo;

/// <summary>Draws the recent actual values of a series with one forecast, its interval and the actual values over its horizon.</summary>
internal static class ForecastChart
{
    public static void Save(string path, DateTime[] times, float[] actual, DateTime[] horizonTimes, float[] forecast,
        float[] lower, float[] upper, string title)
    {
        static double[] Doubles(IEnumerable<float> values) => [.. values.Select(v => (double)v)];
        double[] xs = [.. times.Select(t => t.ToOADate())];
        double[] hs = [.. horizonTimes.Select(t => t.ToOADate())];
        double[] truth = [.. horizonTimes.Select(t => (double)actual[Array.IndexOf(times, t)])];

        var plot = new Plot();
        var band = plot.Add.FillY(hs, Doubles(lower), Doubles(upper));
        band.FillColor = Colors.Orange.WithAlpha(0.3);
        band.LineColor = Colors.Transparent;
        band.LegendText = "80 % interval";

        var history = plot.Add.ScatterLine(xs, Doubles(actual), Colors.Gray);
        history.LineWidth = 1.5f;
        history.LegendText = "actual";

        var happened = plot.Add.ScatterLine(hs, truth, Colors.Black);
        happened.LineWidth = 2.5f;
        happened.LegendText = "actual over the forecast's horizon";

        var predicted = plot.Add.Scatter(hs, Doubles(forecast), Colors.OrangeRed);
        predicted.LineWidth = 2.5f;
        predicted.MarkerSize = 4;
        predicted.LegendText = "forecast";

        var start = plot.Add.VerticalLine(hs[0] - 1 / 24.0, 1, Colors.Gray);
        start.LinePattern = LinePattern.Dashed;

        var axis = plot.Axes.DateTimeTicksBottom();
        if (axis.TickGenerator is ScottPlot.TickGenerators.DateTimeAutomatic ticks)
            ticks.LabelFormatter = t => t.ToString("ddd d MMM", System.Globalization.CultureInfo.InvariantCulture);
        plot.Title(title);
        plot.YLabel("OT (°C)");
        plot.ShowLegend(Alignment.LowerLeft);
        plot.SavePng(path, 1100, 500);
    }
}
