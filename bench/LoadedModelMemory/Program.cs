// What a loaded model keeps in memory. Trains a model with the default options (bidirectional LSTM, embedding 128,
// hidden 128) for one epoch on the AG News 10k subset (vocabulary fitted on all of it), saves it, then loads it in a
// fresh child process and reports the resident set (VmRSS) and the managed heap before loading, after loading, after
// the first prediction and after 1,000 predictions, next to the size of the weights.
// usage: dotnet run -c Release --project bench/LoadedModelMemory [-- <path to ag_news/train_subset_10k.csv>]
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;

if (args.Length == 2 && args[0] == "--child")
    return Child(args[1]);

string data = args.Length > 0 ? args[0] : Path.Combine(AppContext.BaseDirectory, "../../../../../../shared/datasets/ag_news/train_subset_10k.csv");
if (!File.Exists(data))
{
    Console.Error.WriteLine($"AG News subset not found at {Path.GetFullPath(data)}; pass its path (see ../shared/datasets/README.md).");
    return 2;
}
var ml = new MLContext(seed: 1);
var train = ml.Data.LoadFromTextFile<NewsRow>(data, separatorChar: ',', allowQuoting: true);
var clock = Stopwatch.StartNew();
var model = ml.Transforms.Conversion.MapValueToKey("Label")
    .Append(ml.Transforms.Text.NormalizeText("Normalized", "Text"))
    .Append(ml.Transforms.Text.TokenizeIntoWords("Tokens", "Normalized"))
    .Append(ml.Transforms.Conversion.MapValueToKey("Features", "Tokens"))
    .Append(ml.MulticlassClassification.Trainers.Recurrent(new Microsoft.ML.Recurrent.RecurrentMulticlassTrainer.Options { NumberOfEpochs = 1 }))
    .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
    .Fit(train);
string zip = Path.Combine(Path.GetTempPath(), $"loaded-memory-{Guid.NewGuid():N}.zip");
ml.Model.Save(model, train.Schema, zip);
Console.WriteLine($"trained in {clock.Elapsed.TotalSeconds:F0} s; zip {new FileInfo(zip).Length / 1e6:F1} MB");
try
{
    var psi = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
    if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet") psi.ArgumentList.Add(typeof(NewsRow).Assembly.Location);
    psi.ArgumentList.Add("--child");
    psi.ArgumentList.Add(zip);
    using var child = Process.Start(psi)!;
    Console.Write(child.StandardOutput.ReadToEnd());
    child.WaitForExit();
    return child.ExitCode;
}
finally
{
    File.Delete(zip);
}

static int Child(string zip)
{
    var ml = new MLContext(seed: 0);
    Report("before loading");
    var model = ml.Model.Load(zip, out _);
    Report("after Model.Load");
    var network = ((IEnumerable<ITransformer>)model).OfType<Microsoft.ML.Recurrent.RecurrentTransformerBase>().Single().Model.Network;
    Console.WriteLine($"weights: {network.Parameters.Length:N0} parameters, {network.Parameters.Length * 4 / 1e6:F1} MB; gradient buffer {network.Parameters.Gradients.Length * 4} bytes");
    using var engine = ml.Model.CreatePredictionEngine<NewsRow, Prediction>(model);
    engine.Predict(new NewsRow { Text = "Stocks rallied after the bank's report" });
    Report("after the first prediction");
    for (int i = 0; i < 1000; i++)
        engine.Predict(new NewsRow { Text = $"The team won the league match {i} after the coach's new plan for the season" });
    Report("after 1,000 predictions");
    return 0;
}

static void Report(string when)
{
    long heap = GC.GetTotalMemory(forceFullCollection: true);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{when,-28} VmRSS {Status("VmRSS") / 1024.0,7:F1} MB, managed heap {heap / 1e6,7:F1} MB"));
}

static long Status(string key)
{
    foreach (var line in File.ReadLines("/proc/self/status"))
        if (line.StartsWith(key + ":", StringComparison.Ordinal))
            return long.Parse(line[(key.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
    throw new InvalidOperationException($"{key} not in /proc/self/status");
}

public sealed class NewsRow
{
    [LoadColumn(0)] public string Label { get; set; } = "";
    [LoadColumn(1)] public string Title { get; set; } = "";
    [LoadColumn(2)] public string Text { get; set; } = "";
}

public sealed class Prediction
{
    public string PredictedLabel { get; set; } = "";
}
