// Accuracy benchmark. Usage (from the repository root):
//   dotnet run -c Release --project bench/Accuracy -- --dataset agnews|sst2|imdb|all --model ours|libtorch|sdca|lbfgs|defaults|all
//       [--epochs N] [--limit N] [--config "pool=max,edrop=0.2;defaults"] [--out results.jsonl] [--datasets DIR]
//   dotnet run -c Release --project bench/Accuracy -- --report [--out results.jsonl]
// Each (data set, model, config) runs in a child process (so its VmHWM is its own peak memory); results are appended
// as JSON lines to --out (default bench/Accuracy/results/runs.jsonl). See docs/accuracy.md.
using System.Diagnostics;
using System.Globalization;
using Accuracy;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;

string dataset = "agnews", model = "all", configs = "defaults";
string? resultFile = null, datasets = null, outFile = null;
int? epochs = null, limit = null;
bool child = false, report = false;
for (int i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    switch (args[i])
    {
        case "--dataset": dataset = Next().ToLowerInvariant(); break;
        case "--model": model = Next().ToLowerInvariant(); break;
        case "--epochs": epochs = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--limit": limit = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--config": configs = Next(); break;
        case "--datasets": datasets = Next(); break;
        case "--out": outFile = Next(); break;
        case "--child": child = true; break;
        case "--result-file": resultFile = Next(); break;
        case "--report": report = true; break;
        default: throw new ArgumentException($"unknown argument {args[i]}; see the top of bench/Accuracy/Program.cs");
    }
}
string root = Machine.RepositoryRoot();
datasets ??= Path.Combine(root, "..", "shared", "datasets");
outFile ??= Path.Combine(root, "bench", "Accuracy", "results", "runs.jsonl");

if (report)
{
    Report.Print(File.ReadLines(outFile).Where(l => l.Trim().Length > 0).Select(RunResult.FromJson).ToList());
    return 0;
}

if (child)
{
    var result = new RunResult
    {
        Dataset = dataset, Model = model, Config = model == "defaults" ? configs : model is "ours" or "libtorch" ? "reference" : "default",
        Limit = limit, LoadStart = Machine.LoadAverage(), Started = DateTime.UtcNow.ToString("u"), Commit = Machine.GitCommit(root),
    };
    var total = Stopwatch.StartNew();
    var corpus = Corpus.Load(dataset, Path.GetFullPath(datasets), limit);
    Console.WriteLine(corpus.Describe());
    result.TrainRows = corpus.TrainIds.Length;
    result.TestRows = corpus.TestIds.Length;
    int refEpochs = epochs ?? (dataset == "imdb" ? 3 : 4);
    switch (model)
    {
        case "ours": OursRunner.RunReference(corpus, refEpochs, result); break;
        case "libtorch": TorchRunner.Run(corpus, refEpochs, threads: 2, result); break;
        case "sdca" or "lbfgs" or "ap": BaselineRunner.Run(corpus, model, result); break;
        case "defaults": OursRunner.RunPipeline(corpus, configs, null, result); break; // epochs come from the config (epochs=N)
        default: throw new ArgumentException($"unknown model {model}");
    }
    var withAcc = result.Epochs.Where(e => !double.IsNaN(e.TestAccuracy)).ToList();
    if (withAcc.Count > 0)
    {
        var best = withAcc.MaxBy(e => e.TestAccuracy)!;
        result.BestAccuracy = best.TestAccuracy;
        result.BestEpoch = best.Epoch;
    }
    result.TotalSeconds = total.Elapsed.TotalSeconds;
    result.LoadEnd = Machine.LoadAverage();
    result.PeakMemoryMiB = Machine.PeakMemoryMiB();
    File.WriteAllText(resultFile ?? throw new ArgumentException("--result-file needed with --child"), result.ToJson());
    return 0;
}

string[] dataSets = dataset == "all" ? ["agnews", "sst2", "imdb"] : dataset.Split(',');
string[] models = model == "all" ? ["sdca", "lbfgs", "ap", "ours", "libtorch", "defaults"] : model.Split(',');
Directory.CreateDirectory(Path.GetDirectoryName(outFile)!);
int failures = 0;
foreach (var d in dataSets)
    foreach (var m in models)
        foreach (var c in m == "defaults" ? configs.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : [""])
        {
            string tmp = Path.GetTempFileName();
            var psi = new ProcessStartInfo(Environment.ProcessPath!) { UseShellExecute = false };
            if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet") psi.ArgumentList.Add(typeof(RunResult).Assembly.Location);
            foreach (var a in new[] { "--child", "--dataset", d, "--model", m, "--datasets", datasets, "--result-file", tmp }) psi.ArgumentList.Add(a);
            if (epochs is int e) { psi.ArgumentList.Add("--epochs"); psi.ArgumentList.Add(e.ToString(CultureInfo.InvariantCulture)); }
            if (limit is int l) { psi.ArgumentList.Add("--limit"); psi.ArgumentList.Add(l.ToString(CultureInfo.InvariantCulture)); }
            if (c.Length > 0) { psi.ArgumentList.Add("--config"); psi.ArgumentList.Add(c); }
            Console.WriteLine($"=== {d} / {m}{(c.Length > 0 ? " [" + c + "]" : "")}{(limit is null ? "" : $" (limit {limit})")} — {DateTime.UtcNow:u}, load {Machine.LoadAverage()}");
            using var p = Process.Start(psi)!;
            p.WaitForExit();
            string json = File.Exists(tmp) ? File.ReadAllText(tmp) : "";
            File.Delete(tmp);
            if (p.ExitCode != 0 || json.Length == 0) { Console.WriteLine($"!!! {d}/{m} failed (exit {p.ExitCode})"); failures++; continue; }
            File.AppendAllText(outFile, json + Environment.NewLine);
            var r = RunResult.FromJson(json);
            Console.WriteLine($"=== {d} / {m}: final {r.FinalAccuracy:F2}%{(double.IsNaN(r.BestAccuracy) ? "" : $", best {r.BestAccuracy:F2}% (epoch {r.BestEpoch})")}, train {r.TrainSeconds:F0} s, peak {r.PeakMemoryMiB:F0} MiB, load {r.LoadStart} → {r.LoadEnd}");
        }
return failures == 0 ? 0 : 1;
