using System.Globalization;
using System.Text;
using Microsoft.ML.Recurrent;

namespace TextClassificationDemo;

/// <summary>Draws the per-epoch training loss and the training and validation accuracy as a small SVG chart.</summary>
internal static class TrainingCurve
{
    private const int Width = 720, Height = 440, Left = 70, Right = 70, Top = 75, Bottom = 60;

    public static string Svg(IReadOnlyList<RecurrentEpochInfo> epochs, string title)
    {
        var inv = CultureInfo.InvariantCulture;
        int n = epochs.Count;
        double plotWidth = Width - Left - Right, plotHeight = Height - Top - Bottom;
        double maxLoss = Math.Max(1e-6, epochs.Max(e => e.Loss)) * 1.1;
        double X(int epoch) => Left + (n == 1 ? plotWidth / 2 : (epoch - 1) * plotWidth / (n - 1));
        double YLoss(double loss) => Top + plotHeight * (1 - loss / maxLoss);
        double YAccuracy(double accuracy) => Top + plotHeight * (1 - accuracy);
        string Line(Func<RecurrentEpochInfo, double> y, string color, string dash = "") =>
            $"<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2.5\" {dash} points=\"" +
            string.Join(' ', epochs.Where(e => !double.IsNaN(y(e))).Select(e => string.Format(inv, "{0:F1},{1:F1}", X(e.Epoch), y(e)))) + "\"/>" +
            string.Concat(epochs.Where(e => !double.IsNaN(y(e))).Select(e => string.Format(inv, "<circle cx=\"{0:F1}\" cy=\"{1:F1}\" r=\"3.5\" fill=\"{2}\"/>", X(e.Epoch), y(e), color)));

        var svg = new StringBuilder();
        svg.Append($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{Height}\" font-family=\"sans-serif\" font-size=\"13\">");
        svg.Append($"<rect width=\"{Width}\" height=\"{Height}\" fill=\"white\"/>");
        svg.Append($"<text x=\"{Width / 2}\" y=\"28\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">{Escape(title)}</text>");
        // Axes and grid.
        for (int i = 0; i <= 5; i++)
        {
            double fraction = i / 5.0, y = Top + plotHeight * (1 - fraction);
            svg.Append(string.Format(inv, "<line x1=\"{0}\" x2=\"{1}\" y1=\"{2:F1}\" y2=\"{2:F1}\" stroke=\"#ddd\"/>", Left, Width - Right, y));
            svg.Append(string.Format(inv, "<text x=\"{0}\" y=\"{1:F1}\" text-anchor=\"end\" fill=\"#c0392b\">{2:F2}</text>", Left - 8, y + 4, maxLoss * fraction));
            svg.Append(string.Format(inv, "<text x=\"{0}\" y=\"{1:F1}\" fill=\"#2471a3\">{2:P0}</text>", Width - Right + 8, y + 4, fraction));
        }
        foreach (var e in epochs)
            svg.Append(string.Format(inv, "<text x=\"{0:F1}\" y=\"{1}\" text-anchor=\"middle\">{2}</text>", X(e.Epoch), Height - Bottom + 20, e.Epoch));
        svg.Append($"<text x=\"{Left + plotWidth / 2}\" y=\"{Height - 15}\" text-anchor=\"middle\">epoch</text>");
        svg.Append($"<rect x=\"{Left}\" y=\"{Top}\" width=\"{plotWidth}\" height=\"{plotHeight}\" fill=\"none\" stroke=\"#555\"/>");
        svg.Append(Line(e => YLoss(e.Loss), "#c0392b"));
        svg.Append(Line(e => double.IsNaN(e.Accuracy) ? double.NaN : YAccuracy(e.Accuracy), "#2471a3", "stroke-dasharray=\"6 4\""));
        svg.Append(Line(e => double.IsNaN(e.ValidationAccuracy) ? double.NaN : YAccuracy(e.ValidationAccuracy), "#1e8449"));
        // Legend.
        (string Label, string Color)[] legend = [("training loss (left axis)", "#c0392b"), ("training accuracy", "#2471a3"), ("validation accuracy", "#1e8449")];
        for (int i = 0; i < legend.Length; i++)
        {
            int x = Left + 10 + i * 200;
            svg.Append($"<line x1=\"{x}\" x2=\"{x + 24}\" y1=\"{Top - 22}\" y2=\"{Top - 22}\" stroke=\"{legend[i].Color}\" stroke-width=\"3\"/>");
            svg.Append($"<text x=\"{x + 30}\" y=\"{Top - 18}\">{legend[i].Label}</text>");
        }
        svg.Append("</svg>");
        return svg.ToString();
    }

    private static string Escape(string text) => text.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");
}
