using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Recurrent;

namespace Recurrent.Bench;

/// <summary>
/// <c>--mlnet</c>: end-to-end scoring through ML.NET on real text (AG News from ../shared/datasets), the way users score:
/// rows/s of <c>Transform</c> + a cursor over the outputs, of <c>Transform</c> + ML.NET's evaluator, and of a
/// <c>PredictionEngine</c> loop, for our classifier
/// (NormalizeText → TokenizeIntoWords → MapValueToKey → Recurrent, library defaults, trained one epoch: speed does not
/// depend on accuracy) and for FeaturizeText + SDCA on the same rows. The whole pipeline is timed, text in, scores out.
/// </summary>
internal static class MLNetThroughput
{
    public sealed class NewsRow
    {
        public string Label { get; set; } = "";
        public string Text { get; set; } = "";
    }

    public sealed class Prediction
    {
        public float[] Score { get; set; } = [];
    }

    private sealed class CsvRow
    {
        [LoadColumn(0)] public string Label { get; set; } = "";
        [LoadColumn(1)] public string Title { get; set; } = "";
        [LoadColumn(2)] public string Description { get; set; } = "";
    }

    public static int Run(string root, int trials)
    {
        string dir = Path.Combine(root, "..", "shared", "datasets", "ag_news");
        if (!File.Exists(Path.Combine(dir, "test.csv")))
        {
            Console.WriteLine($"AG News not found in {Path.GetFullPath(dir)}: skipping the ML.NET throughput case.");
            return 0;
        }
        var machine = MachineInfo.Measure();
        Console.WriteLine($"machine   {machine.Describe()}");
        var ml = new MLContext(seed: 1);
        List<NewsRow> Load(string file) => ml.Data.CreateEnumerable<CsvRow>(
                ml.Data.LoadFromTextFile<CsvRow>(Path.Combine(dir, file), separatorChar: ',', allowQuoting: true), reuseRowObject: false)
            .Select(r => new NewsRow { Label = r.Label, Text = r.Title + " " + r.Description }).ToList();
        var trainRows = Load("train_subset_10k.csv");
        var testRows = Load("test.csv");
        var train = ml.Data.LoadFromEnumerable(trainRows);
        var test = ml.Data.LoadFromEnumerable(testRows);
        Console.WriteLine($"AG News: {trainRows.Count:N0} training rows, {testRows.Count:N0} scored rows; training the two models…");

        var ours = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.Text.NormalizeText("Normalized", "Text"))
            .Append(ml.Transforms.Text.TokenizeIntoWords("Tokens", "Normalized"))
            .Append(ml.Transforms.Conversion.MapValueToKey("Features", "Tokens"))
            .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options { NumberOfEpochs = 1 }))
            .Fit(train);
        var sdca = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.Text.FeaturizeText("Features", "Text"))
            .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy())
            .Fit(train);

        var results = new List<(string Model, string Way, double RowsPerSecond, double Ms)>();
        foreach (var (name, model) in new[] { ("ours (BiLSTM 128, defaults)", (ITransformer)ours), ("FeaturizeText + SDCA", sdca) })
        {
            double transform = Median(trials, () => TransformAndRead(model, test));
            double engine = Median(trials, () => EngineLoop(ml, model, testRows));
            results.Add((name, "Transform + cursor", testRows.Count / transform, transform * 1e3));
            results.Add((name, "PredictionEngine loop", testRows.Count / engine, engine * 1e3));
            double evaluate = Median(trials, () => TransformAndEvaluate(ml, model, test));
            results.Add((name, "Transform + Evaluate", testRows.Count / evaluate, evaluate * 1e3));
        }

        var sb = new StringBuilder();
        sb.AppendLine($"Machine: {machine.Describe()}; {machine.Runtime}. {testRows.Count:N0} AG News test rows, raw text in, scores out; median of {trials}.");
        sb.AppendLine();
        sb.AppendLine("| model | scoring | rows/s | ms for all rows |");
        sb.AppendLine("|---|---|---:|---:|");
        foreach (var r in results)
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| {r.Model} | {r.Way} | {r.RowsPerSecond:N0} | {r.Ms:F0} |"));
        Console.WriteLine();
        Console.Write(sb.ToString());
        string path = Path.Combine(root, "bench", "results", $"mlnet-{machine.PathSuffix}.md");
        File.WriteAllText(path, sb.ToString());
        Console.WriteLine($"wrote {path}");
        return 0;
    }

    /// <summary>Seconds to transform the rows and read every row's Score through one cursor.</summary>
    private static double TransformAndRead(ITransformer model, IDataView data)
    {
        var clock = Stopwatch.StartNew();
        var scored = model.Transform(data);
        using var cursor = scored.GetRowCursor([scored.Schema["Score"]]);
        var getter = cursor.GetGetter<VBuffer<float>>(scored.Schema["Score"]);
        VBuffer<float> score = default;
        double sum = 0;
        while (cursor.MoveNext())
        {
            getter(ref score);
            sum += score.GetValues()[0];
        }
        if (double.IsInfinity(sum)) Console.WriteLine("(checksum infinite)");
        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>Seconds to transform the rows and evaluate them with ML.NET's multiclass evaluator (it reads the label, score and predicted label).</summary>
    private static double TransformAndEvaluate(MLContext ml, ITransformer model, IDataView data)
    {
        var clock = Stopwatch.StartNew();
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(data));
        if (double.IsNaN(metrics.MicroAccuracy)) Console.WriteLine("(accuracy NaN)");
        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>Seconds to predict every row with one PredictionEngine (created inside the timing, as a user would once).</summary>
    private static double EngineLoop(MLContext ml, ITransformer model, List<NewsRow> rows)
    {
        var clock = Stopwatch.StartNew();
        using var engine = ml.Model.CreatePredictionEngine<NewsRow, Prediction>(model);
        double sum = 0;
        foreach (var row in rows) sum += engine.Predict(row).Score[0];
        if (double.IsInfinity(sum)) Console.WriteLine("(checksum infinite)");
        return clock.Elapsed.TotalSeconds;
    }

    private static double Median(int trials, Func<double> run)
    {
        run(); // warm-up: JIT, lazily built state
        var times = Enumerable.Range(0, trials).Select(_ => run()).Order().ToList();
        return times[times.Count / 2];
    }
}
