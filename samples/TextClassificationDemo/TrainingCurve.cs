using Microsoft.ML.Recurrent;
using ScottPlot;

namespace TextClassificationDemo;

/// <summary>Draws the per-epoch training loss and the training and validation accuracy with ScottPlot.</summary>
internal static class TrainingCurve
{
    private const int Width = 720, Height = 440;

    /// <summary>Writes the chart to <paramref name="path"/> as SVG (PNG when the path ends in .png).</summary>
    public static void Save(string path, IReadOnlyList<RecurrentEpochInfo> epochs, string title)
    {
        var plot = new Plot();
        plot.Title(title);

        // Loss on the left axis, accuracies on the right (0–100 %); epochs where a value is NaN are left out.
        var loss = Line(plot, epochs, e => e.Loss, "training loss (left axis)", Color.FromHex("#c0392b"));
        loss.Axes.YAxis = plot.Axes.Left;
        var training = Line(plot, epochs, e => e.Accuracy, "training accuracy", Color.FromHex("#2471a3"));
        training.MarkerShape = MarkerShape.OpenSquare; // not a dashed line: Skia's SVG canvas has no dash patterns
        training.Axes.YAxis = plot.Axes.Right;
        var validation = Line(plot, epochs, e => e.ValidationAccuracy, "validation accuracy", Color.FromHex("#1e8449"));
        validation.Axes.YAxis = plot.Axes.Right;

        plot.XLabel("epoch");
        plot.Axes.Left.Label.Text = "loss";
        plot.Axes.Right.Label.Text = "accuracy";
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericFixedInterval(1);
        plot.Axes.Right.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { LabelFormatter = v => $"{v:P0}" };
        double maxLoss = Math.Max(1e-6, epochs.Max(e => e.Loss)) * 1.1;
        plot.Axes.SetLimitsY(0, maxLoss, plot.Axes.Left);
        plot.Axes.SetLimitsY(0, 1, plot.Axes.Right);
        plot.Axes.SetLimitsX(0.5, Math.Max(1, epochs.Count) + 0.5);
        plot.ShowLegend(Alignment.LowerRight);

        if (path.EndsWith(".png", StringComparison.OrdinalIgnoreCase)) plot.SavePng(path, Width, Height);
        else plot.SaveSvg(path, Width, Height);
    }

    private static ScottPlot.Plottables.Scatter Line(Plot plot, IReadOnlyList<RecurrentEpochInfo> epochs, Func<RecurrentEpochInfo, double> value,
        string label, Color color)
    {
        var points = epochs.Where(e => !double.IsNaN(value(e))).ToArray();
        var line = plot.Add.Scatter(points.Select(e => (double)e.Epoch).ToArray(), points.Select(value).ToArray(), color);
        line.LineWidth = 2.5f;
        line.MarkerSize = 7;
        line.LegendText = label;
        return line;
    }
}
