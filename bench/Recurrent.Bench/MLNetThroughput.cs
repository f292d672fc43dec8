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
        // The text transforms in front of ours alone (NormalizeText → TokenizeIntoWords → MapValueToKey), read through a
        // cursor over their key column: what `Transform` spends before the network sees a row.
        var upstream = new TransformerChain<ITransformer>(ours.Take(ours.Count() - 1).ToArray());
        double text = Median(trials, () => TransformAndReadKeys(upstream, test));
        results.Add(("ours' text transforms only", "Transform + cursor over Features", testRows.Count / text, text * 1e3));
        // Our network alone on the same rows' keys, without ML.NET around it: in batches of the scoring batch size (what
        // Transform runs) and one row at a time (what a PredictionEngine runs) — the ceiling of the ratio between the two.
        var keys = RowKeys(upstream, test, (RecurrentMulticlassTransformer)ours.Last());
        int scoringBatch = ((RecurrentMulticlassTransformer)ours.Last()).Model.ScoringBatchSize;
        foreach (int size in new[] { scoringBatch, 1 })
        {
            double alone = Median(trials, () => NetworkAlone((RecurrentMulticlassTransformer)ours.Last(), keys, size));
            results.Add(("ours' network alone (RecurrentNetwork.Forward)", size == 1 ? "one row at a time" : $"batches of {size} rows", testRows.Count / alone, alone * 1e3));
        }
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
    private static double TransformAndRead(ITransformer model, IDataView data) =>
        TransformAndRead<VBuffer<float>>(model, data, "Score", score => score.GetValues()[0]);

    /// <summary>Seconds to transform the rows and read every row's Features keys through one cursor.</summary>
    private static double TransformAndReadKeys(ITransformer model, IDataView data) =>
        TransformAndRead<VBuffer<uint>>(model, data, "Features", keys => keys.Length);

    /// <summary>Seconds to transform the rows and read <paramref name="column"/> of every row through one cursor (a checksum keeps the reads).</summary>
    private static double TransformAndRead<T>(ITransformer model, IDataView data, string column, Func<T, double> checksum)
    {
        var clock = Stopwatch.StartNew();
        var transformed = model.Transform(data);
        using var cursor = transformed.GetRowCursor([transformed.Schema[column]]);
        var getter = cursor.GetGetter<T>(transformed.Schema[column]);
        T value = default!;
        double sum = 0;
        while (cursor.MoveNext())
        {
            getter(ref value);
            sum += checksum(value);
        }
        if (double.IsInfinity(sum)) Console.WriteLine("(checksum infinite)");
        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>Each row's token ids as our scorer reads them from the key column (rows without tokens left out).</summary>
    private static List<int[]> RowKeys(ITransformer upstream, IDataView data, RecurrentMulticlassTransformer ours)
    {
        var keyed = upstream.Transform(data);
        var rows = new List<int[]>();
        using var cursor = keyed.GetRowCursor([keyed.Schema["Features"]]);
        var getter = cursor.GetGetter<VBuffer<uint>>(keyed.Schema["Features"]);
        VBuffer<uint> keys = default;
        var ids = new List<int>();
        while (cursor.MoveNext())
        {
            getter(ref keys);
            ids.Clear();
            if (ours.Model.Input.ReadTokens(keys, ids, out _, out _) == RowStatus.Valid && ids.Count > 0)
                rows.Add(ids.ToArray());
        }
        return rows;
    }

    /// <summary>
    /// Seconds for a fresh inference copy of our trained network (two threads, as the scorer uses) to run forward over
    /// the rows in order, <paramref name="batchSize"/> at a time; nothing of ML.NET in the loop.
    /// </summary>
    private static double NetworkAlone(RecurrentMulticlassTransformer ours, List<int[]> rows, int batchSize)
    {
        var batches = new List<(Microsoft.ML.Recurrent.Core.RaggedBatch Batch, int[] Tokens)>();
        for (int i = 0; i < rows.Count; i += batchSize)
        {
            var group = rows.Skip(i).Take(batchSize).ToList();
            batches.Add((new Microsoft.ML.Recurrent.Core.RaggedBatch(group.Select(r => r.Length).ToArray()), group.SelectMany(r => r).ToArray()));
        }
        var outputs = new float[batchSize * ours.Model.OutputSize];
        var clock = Stopwatch.StartNew();
        var network = ours.Model.Network.CreateInferenceSibling();
        network.Threads = Math.Min(2, ours.Model.ScoringThreads);
        foreach (var (batch, tokens) in batches)
            network.Forward(batch, (ReadOnlySpan<int>)tokens, outputs);
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
