// A program that uses Microsoft.ML.Recurrent from its NuGet package, as a user would.
//
//   PackageConsumer [--expect-version V] [--work DIR]   trains a small text classifier on an in-code data set, saves it,
//                                                       starts a new process that loads the zip and predicts, and checks
//                                                       that the predictions are identical to this process's
//   PackageConsumer predict MODEL.zip OUTPUT.txt        (the new process) loads MODEL.zip and writes its predictions
//
// Exit code 0 when everything holds, 1 otherwise. --expect-version also checks that the library loaded is that version
// (its informational version), so a stale copy from a package cache is caught.
using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Recurrent;

if (args.Length == 3 && args[0] == "predict")
{
    var ml = new MLContext(seed: 0);
    var model = ml.Model.Load(args[1], out _);
    File.WriteAllText(args[2], Predictions.Write(ml, model));
    return 0;
}

string? expectVersion = null, work = null;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--expect-version" when i + 1 < args.Length: expectVersion = args[++i]; break;
        case "--work" when i + 1 < args.Length: work = args[++i]; break;
        default:
            Console.Error.WriteLine("usage: PackageConsumer [--expect-version V] [--work DIR] | predict MODEL.zip OUTPUT.txt");
            return 2;
    }
}

var clock = Stopwatch.StartNew();
var library = typeof(RecurrentMulticlassTrainer).Assembly;
string loadedVersion = library.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "?";
Console.WriteLine($"Microsoft.ML.Recurrent {loadedVersion} from {library.Location}");
if (expectVersion is not null && loadedVersion.Split('+')[0] != expectVersion)
{
    Console.Error.WriteLine($"FAIL: expected Microsoft.ML.Recurrent {expectVersion}, loaded {loadedVersion}");
    return 1;
}

work ??= Path.Combine(Path.GetTempPath(), "package-consumer-" + Guid.NewGuid().ToString("N"));
Directory.CreateDirectory(work);
try
{
    var ml = new MLContext(seed: 1);
    var train = ml.Data.LoadFromEnumerable(Data.Training());
    var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
        .Append(ml.Transforms.Text.TokenizeIntoWords("Tokens", "Text"))
        .Append(ml.Transforms.Conversion.MapValueToKey("Features", "Tokens"))
        .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
        {
            EmbeddingSize = 16,
            HiddenSize = 16,
            NumberOfEpochs = 12,
            BatchSize = 8,
            LearningRate = 1e-2f,
            Seed = 1,
        }))
        .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
    var model = pipeline.Fit(train);
    var metrics = ml.MulticlassClassification.Evaluate(model.Transform(train));
    Console.WriteLine($"trained on {Data.Training().Count} rows in {clock.Elapsed.TotalSeconds:F1} s: training accuracy {metrics.MicroAccuracy:P1}");

    string zip = Path.Combine(work, "model.zip"), output = Path.Combine(work, "predictions.txt");
    ml.Model.Save(model, train.Schema, zip);
    string here = Predictions.Write(ml, model);
    Console.Write(here);

    // A new process loads the zip and predicts the same sentences.
    var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true };
    foreach (string arg in new[] { typeof(Data).Assembly.Location, "predict", zip, output }) start.ArgumentList.Add(arg);
    using var process = Process.Start(start)!;
    string stderr = process.StandardError.ReadToEnd();
    process.WaitForExit();
    if (process.ExitCode != 0)
    {
        Console.Error.WriteLine($"FAIL: the loading process exited with {process.ExitCode}:\n{stderr}");
        return 1;
    }
    string there = File.ReadAllText(output);
    bool identical = here == there;
    bool learned = metrics.MicroAccuracy >= 0.9 && Predictions.AllExpected(here);
    Console.WriteLine(identical
        ? $"predictions of the reloaded model in a new process: identical ({Data.Test.Length} sentences, scores bit for bit)"
        : $"FAIL: predictions differ in the new process:\n{there}");
    if (!learned)
        Console.Error.WriteLine("FAIL: the model did not learn the toy task (training accuracy < 90 % or a test sentence misclassified)");
    Console.WriteLine($"done in {clock.Elapsed.TotalSeconds:F1} s");
    return identical && learned ? 0 : 1;
}
finally
{
    if (args.Contains("--work") is false) Directory.Delete(work, recursive: true);
}

/// <summary>One example: a sentence and its topic.</summary>
public sealed class Row
{
    public string Text { get; set; } = "";
    public string Label { get; set; } = "";
}

/// <summary>What the pipeline predicts: the topic and the class probabilities.</summary>
public sealed class Prediction
{
    public string PredictedLabel { get; set; } = "";
    public float[] Score { get; set; } = [];
}

/// <summary>A tiny three-topic data set made in code (seeded, so every run sees the same rows).</summary>
public static class Data
{
    private static readonly Dictionary<string, string[]> Topics = new()
    {
        ["sports"] = ["match", "goal", "team", "coach", "league", "season", "striker", "scored", "final", "players"],
        ["weather"] = ["rain", "storm", "sunny", "forecast", "wind", "snow", "cloudy", "temperature", "cold", "showers"],
        ["markets"] = ["stocks", "shares", "bank", "profit", "market", "investors", "earnings", "rates", "trade", "prices"],
    };
    private static readonly string[] Filler = ["the", "a", "today", "after", "with", "and", "in", "on", "was", "very"];

    public static readonly (string Text, string Label)[] Test =
    [
        ("the team scored a late goal in the final", "sports"),
        ("heavy rain and strong wind in the forecast", "weather"),
        ("bank shares rose after strong earnings", "markets"),
        ("the coach praised the players after the match", "sports"),
        ("snow and cold temperature today", "weather"),
        ("investors watched rates and prices on the market", "markets"),
    ];

    public static List<Row> Training()
    {
        var random = new Random(7);
        var rows = new List<Row>();
        for (int i = 0; i < 90; i++)
        {
            var (label, words) = Topics.ElementAt(i % Topics.Count);
            int length = random.Next(5, 11);
            var sentence = Enumerable.Range(0, length)
                .Select(_ => random.NextDouble() < 0.5 ? words[random.Next(words.Length)] : Filler[random.Next(Filler.Length)]);
            rows.Add(new Row { Text = string.Join(' ', sentence) + " " + words[random.Next(words.Length)], Label = label });
        }
        return rows;
    }
}

/// <summary>Predicts the test sentences with a PredictionEngine: one line each, the label and the scores' bits.</summary>
public static class Predictions
{
    public static string Write(MLContext ml, ITransformer model)
    {
        var engine = ml.Model.CreatePredictionEngine<Row, Prediction>(model);
        var text = new StringBuilder();
        foreach (var (sentence, expected) in Data.Test)
        {
            var p = engine.Predict(new Row { Text = sentence });
            text.Append(CultureInfo.InvariantCulture, $"{expected}\t{p.PredictedLabel}\t")
                .AppendJoin(',', p.Score.Select(s => BitConverter.SingleToInt32Bits(s).ToString("X8", CultureInfo.InvariantCulture)))
                .Append('\t').Append(sentence).Append('\n');
        }
        return text.ToString();
    }

    public static bool AllExpected(string predictions) =>
        predictions.Split('\n', StringSplitOptions.RemoveEmptyEntries).All(line => line.Split('\t') is [var expected, var predicted, ..] && expected == predicted);
}
