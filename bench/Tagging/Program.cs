// Part-of-speech tagging benchmark on the Brown corpus (issue 10, docs/tagging.md). Usage (from the repository root):
//   dotnet build -c Release bench/Tagging
//   dotnet bench/Tagging/bin/Release/net10.0/linux-x64/Tagging.dll --model mft,mft-rules,maxent,libtorch|all
//       [--config "k=v,k=v;k=v"] [--quick] [--tune] [--wait-idle SECONDS] [--out results.jsonl] [--data DIR]
//   … [--repeat N]                            time the inference N times, keep the median
//   … [--tagset universal]                    12 coarse tags instead of Brown's 186 (UniversalTags.cs), for the defaults study
//   … Tagging.dll --stats [--quick]            the data section of docs/tagging.md (split, counts, tags)
//   … Tagging.dll --report [--out FILE]        the Markdown table of the runs in FILE
// Every (model, config) runs in a child process, so its VmHWM is that model's own peak memory; each run appends one
// JSON line to --out (default bench/Tagging/results/runs.jsonl; quick.jsonl with --quick, tuning.jsonl with --tune).
// --config: one run per ';'-separated set, given to every model listed (keys: MaxEntTagger.Options, TaggerRecipe).
// --tune scores dev only and never reads the test files' predictions (for choosing hyper-parameters).
// --wait-idle S: before each run, wait up to S seconds for other processes to leave the CPUs alone (they are recorded anyway).
// --quick: files i with i % 40 < 5 only (37 train, 13 dev, 13 test files), a smoke test of a few minutes.
using System.Diagnostics;
using System.Globalization;
using Accuracy;
using Tagging;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;

string model = "all", configs = "";
string? resultFile = null, data = null, outFile = null;
bool child = false, report = false, stats = false, quick = false, tune = false, universal = false;
double waitIdle = 0;
int repeat = 1;
for (int i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    switch (args[i])
    {
        case "--model": model = Next().ToLowerInvariant(); break;
        case "--config": configs = Next(); break;
        case "--quick": quick = true; break;
        case "--repeat": repeat = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--tune": tune = true; break;
        case "--tagset": universal = Next() switch { "brown" => false, "universal" => true, var v => throw new ArgumentException($"--tagset {v}: brown or universal") }; break;
        case "--wait-idle": waitIdle = double.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--data": data = Next(); break;
        case "--out": outFile = Next(); break;
        case "--report": report = true; break;
        case "--stats": stats = true; break;
        case "--child": child = true; break;
        case "--result-file": resultFile = Next(); break;
        default: throw new ArgumentException($"unknown argument {args[i]}; see the top of bench/Tagging/Program.cs");
    }
}
string root = Machine.RepositoryRoot();
data = Path.GetFullPath(data ?? Path.Combine(root, "..", "shared", "datasets", "brown"));
outFile ??= Path.Combine(root, "bench", "Tagging", "results", quick ? "quick.jsonl" : tune ? "tuning.jsonl" : "runs.jsonl");

if (report)
{
    Report.Runs(File.ReadLines(outFile).Where(l => l.Trim().Length > 0).Select(TaggingResult.FromJson).ToList());
    return 0;
}
if (stats)
{
    Report.Data(BrownCorpus.Load(data, quick, universal));
    return 0;
}

if (child)
{
    var result = new TaggingResult
    {
        Model = model, Config = configs, Quick = quick, Tune = tune, Tagset = universal ? "universal" : "brown", LoadStart = Machine.LoadAverage(),
        Started = DateTime.UtcNow.ToString("u"), Commit = Machine.GitCommit(root),
        Environment = string.Join(' ', Environment.GetEnvironmentVariables().Keys.OfType<string>()
            .Where(k => k.StartsWith("OMP_", StringComparison.Ordinal) || k.StartsWith("MKL_", StringComparison.Ordinal) || k.StartsWith("DOTNET_", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal).Select(k => $"{k}={Environment.GetEnvironmentVariable(k)}")),
    };
    var total = Stopwatch.StartNew();
    var monitor = new Recurrent.Bench.CpuMonitor();
    var corpus = BrownCorpus.Load(data, quick, universal);
    Console.WriteLine(corpus.Describe());
    result.TrainSentences = corpus.Train.Count;
    result.TrainTokens = corpus.Train.Sum(s => (long)s.Words.Length);
    result.DevTokens = corpus.Dev.Sum(s => (long)s.Words.Length);
    result.TestTokens = corpus.Test.Sum(s => (long)s.Words.Length);
    var trainWords = corpus.TrainWords();

    var tagger = Taggers.Create(model, configs);
    var clock = Stopwatch.StartNew();
    tagger.Train(corpus, result);
    result.TrainSeconds = clock.Elapsed.TotalSeconds;
    result.Settings = tagger.Settings;
    Console.WriteLine($"  {result.Settings}");
    Console.WriteLine($"  trained in {result.TrainSeconds:F1} s");

    // Dev is scored for every model; test only without --tune. The inference time is that of the last part scored.
    var parts = tune ? new[] { Part.Dev } : [Part.Dev, Part.Test];
    foreach (var part in parts)
    {
        var sentences = corpus.Sentences(part);
        // --repeat N: the inference is timed N times and the median kept (the predictions are the same every time).
        var times = new List<double>();
        string[][] predicted = [];
        for (int r = 0; r < repeat; r++)
        {
            clock.Restart();
            predicted = tagger.Predict(sentences);
            times.Add(clock.Elapsed.TotalSeconds);
        }
        double seconds = times.Order().ElementAt(times.Count / 2);
        if (repeat > 1) Console.WriteLine($"  {part} inference times: {string.Join(", ", times.Select(t => t.ToString("F3")))} s");
        var confusions = new Dictionary<(string Gold, string Predicted), int>();
        var score = Scoring.Evaluate(sentences, predicted, trainWords, confusions);
        Console.WriteLine($"  {part}: {score}; inference {seconds:F2} s ({score.Tokens / seconds:F0} tokens/s)");
        Console.WriteLine("    most frequent errors (gold → predicted): " + string.Join(", ",
            confusions.OrderByDescending(p => p.Value).Take(10).Select(p => $"{p.Key.Gold}→{p.Key.Predicted} {p.Value}")));
        if (part == Part.Dev) { result.DevAccuracy = score.Accuracy; result.DevUnseenAccuracy = score.UnseenAccuracy; }
        else { result.TestAccuracy = score.Accuracy; result.TestUnseenAccuracy = score.UnseenAccuracy; }
        result.UnseenTokens = score.UnseenTokens;
        result.InferenceSeconds = seconds;
        result.InferenceTokensPerSecond = score.Tokens / seconds;
    }
    if (tagger is OursTagger ours && ours.MeasureDecode(corpus.Sentences(tune ? Part.Dev : Part.Test)) is var (forward, decode))
    {
        result.ForwardSeconds = forward;
        result.DecodeSeconds = decode;
        Console.WriteLine($"  CRF: network forward {forward:F3} s, Viterbi decode {decode:F3} s: the decode is {100 * decode / (forward + decode):F1} % of the tagger's inference (median of 5)");
    }
    result.TotalSeconds = total.Elapsed.TotalSeconds;
    result.LoadEnd = Machine.LoadAverage();
    result.ForeignCores = monitor.ForeignCores();
    result.PeakMemoryMiB = Machine.PeakMemoryMiB();
    File.WriteAllText(resultFile ?? throw new ArgumentException("--result-file needed with --child"), result.ToJson());
    return 0;
}

string[] models = model == "all" ? Taggers.All : model.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
string[] configList = configs.Split(';', StringSplitOptions.TrimEntries) is { Length: > 0 } c ? c : [""];
Directory.CreateDirectory(Path.GetDirectoryName(outFile)!);
int failures = 0;
foreach (var m in models)
    foreach (var config in configList)
    {
        if (waitIdle > 0) Recurrent.Bench.CpuMonitor.WaitForIdle(waitIdle);
        string tmp = Path.GetTempFileName();
        var psi = new ProcessStartInfo(Environment.ProcessPath!) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet") psi.ArgumentList.Add(typeof(TaggingResult).Assembly.Location);
        foreach (var a in new[] { "--child", "--model", m, "--config", config, "--data", data, "--result-file", tmp }) psi.ArgumentList.Add(a);
        if (quick) psi.ArgumentList.Add("--quick");
        if (repeat > 1) { psi.ArgumentList.Add("--repeat"); psi.ArgumentList.Add(repeat.ToString(CultureInfo.InvariantCulture)); }
        if (universal) { psi.ArgumentList.Add("--tagset"); psi.ArgumentList.Add("universal"); }
        if (tune) psi.ArgumentList.Add("--tune");
        Console.WriteLine($"=== {m}{(config.Length > 0 ? " [" + config + "]" : "")}{(quick ? " (quick)" : "")}{(tune ? " (tune: dev only)" : "")} — {DateTime.UtcNow:u}, load {Machine.LoadAverage()}");
        using var p = Process.Start(psi)!;
        p.WaitForExit();
        string json = File.Exists(tmp) ? File.ReadAllText(tmp) : "";
        File.Delete(tmp);
        if (p.ExitCode != 0 || json.Length == 0) { Console.WriteLine($"!!! {m} failed (exit {p.ExitCode})"); failures++; continue; }
        File.AppendAllText(outFile, json + Environment.NewLine);
        var r = TaggingResult.FromJson(json);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"=== {m}: dev {r.DevAccuracy:F2}%, test {r.TestAccuracy:F2}% (unseen {r.TestUnseenAccuracy:F2}%), train {r.TrainSeconds:F0} s, inference {r.InferenceTokensPerSecond:F0} tokens/s, peak {r.PeakMemoryMiB:F0} MiB, load {r.LoadStart} → {r.LoadEnd}, other processes {r.ForeignCores:F2} cores"));
    }
return failures == 0 ? 0 : 1;
