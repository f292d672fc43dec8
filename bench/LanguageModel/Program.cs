// Character-level LSTM language model on Tiny Shakespeare: libtorch (TorchSharp-cpu) vs ours on the same recipe.
// Usage (from the repository root; full list of options and examples in bench/LanguageModel/README.md):
//   dotnet build -c Release bench/LanguageModel
//   dotnet bench/LanguageModel/bin/Release/net10.0/linux-x64/LanguageModel.dll [--model torch|ours|both]
//       [--embed E] [--hidden H] [--layers L] [--batch B] [--bptt T] [--lr LR] [--schedule constant|cosine|linear]
//       [--warmup F] [--clip C] [--emb-dropout P] [--layer-dropout P] [--out-dropout P] [--tie] [--epochs N]
//       [--max-steps S] [--schedule-span epochs|max-steps] [--threads N] [--seed S] [--eval-every K]
//       [--out results/runs.jsonl] [--data FILE] [--wait-idle SECONDS]
//   … --speed [--speed-warmup 3] [--speed-warmup-seconds 3] [--speed-steps 20]
//                                                    both implementations, median step time and the ratio ours/torch
//   … --report [--out FILE]                          the table of the runs in FILE
//   … --bandwidth                                    one-core read bandwidth over the weights of the 2×512 model and 1 GiB
// Every implementation runs in a child process of its own (its VmHWM is then its own peak memory, and libtorch's
// OpenMP threads never spin next to ours); each run appends one JSON line to --out.
using System.Diagnostics;
using System.Globalization;
using System.Runtime.Intrinsics.X86;
using Accuracy;
using LanguageModel;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;

var recipe = new LmRecipe();
string model = "both";
string? outFile = null, data = null, child = null, resultFile = null;
bool speed = false, report = false;
int speedWarmup = 3, speedSteps = 20;
double waitIdle = 0, speedWarmupSeconds = 3;
for (int i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    int I() => int.Parse(Next(), CultureInfo.InvariantCulture);
    float F() => float.Parse(Next(), CultureInfo.InvariantCulture);
    switch (args[i])
    {
        case "--model": model = Next().ToLowerInvariant(); break;
        case "--embed": recipe = recipe with { EmbeddingSize = I() }; break;
        case "--hidden": recipe = recipe with { HiddenSize = I() }; break;
        case "--layers": recipe = recipe with { Layers = I() }; break;
        case "--batch": recipe = recipe with { BatchSize = I() }; break;
        case "--bptt": recipe = recipe with { Bptt = I() }; break;
        case "--lr": recipe = recipe with { LearningRate = F() }; break;
        case "--schedule": recipe = recipe with { Schedule = Next().ToLowerInvariant() }; break;
        case "--warmup": recipe = recipe with { WarmupFraction = F() }; break;
        case "--clip": recipe = recipe with { GradientClipNorm = F() }; break;
        case "--emb-dropout": recipe = recipe with { EmbeddingDropout = F() }; break;
        case "--layer-dropout": recipe = recipe with { LayerDropout = F() }; break;
        case "--out-dropout": recipe = recipe with { OutputDropout = F() }; break;
        case "--tie": recipe = recipe with { TieWeights = true }; break;
        case "--epochs": recipe = recipe with { Epochs = I() }; break;
        case "--max-steps": recipe = recipe with { MaxSteps = I() }; break;
        case "--schedule-span": recipe = recipe with { ScheduleSpan = Next().ToLowerInvariant() }; break;
        case "--threads": recipe = recipe with { Threads = I() }; break;
        case "--seed": recipe = recipe with { Seed = I() }; break;
        case "--eval-every": recipe = recipe with { EvalEvery = I() }; break;
        case "--speed": speed = true; break;
        case "--bandwidth": Bandwidth.Run(Bandwidth.WeightBytes(), 1L << 30); return 0;
        case "--speed-warmup": speedWarmup = I(); break;
        case "--speed-steps": speedSteps = I(); break;
        case "--speed-warmup-seconds": speedWarmupSeconds = double.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--report": report = true; break;
        case "--out": outFile = Next(); break;
        case "--data": data = Next(); break;
        case "--wait-idle": waitIdle = double.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--child": child = Next(); break;
        case "--result-file": resultFile = Next(); break;
        default: throw new ArgumentException($"unknown argument {args[i]}; see bench/LanguageModel/README.md");
    }
}
recipe.Validate();
string root = Machine.RepositoryRoot();
data = Path.GetFullPath(data ?? Path.Combine(root, "..", "shared", "datasets", "tinyshakespeare", "input.txt"));
outFile = Path.GetFullPath(outFile ?? Path.Combine(root, "bench", "LanguageModel", "results", speed ? "speed.jsonl" : "runs.jsonl"));

if (report)
{
    Table(File.ReadLines(outFile).Where(l => l.Trim().Length > 0).Select(RunResult.FromJson).ToList());
    return 0;
}
if (!File.Exists(data))
{
    Console.WriteLine($"Tiny Shakespeare not found at {data}: skipping (put input.txt there or pass --data FILE).");
    return 0;
}
// Speed: the plan decides when to stop; enough epochs that it never runs out of data (the schedule is irrelevant here).
if (speed)
    recipe = recipe with { MaxSteps = 0, Epochs = 1000, EvalEvery = 0 };

if (child is not null)
{
    var result = new RunResult
    {
        Mode = speed ? "speed" : "train", Implementation = child, Recipe = recipe, Threads = recipe.Threads,
        CpuModel = CpuModel(), Avx512F = Avx512F.IsSupported, ProcessorCount = Environment.ProcessorCount,
        LoadStart = Machine.LoadAverage(), Started = DateTime.UtcNow.ToString("u"), Commit = Machine.GitCommit(root),
        Environment = string.Join(' ', Environment.GetEnvironmentVariables().Keys.OfType<string>()
            .Where(k => k.StartsWith("OMP_", StringComparison.Ordinal) || k.StartsWith("MKL_", StringComparison.Ordinal) || k.StartsWith("DOTNET_", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal).Select(k => $"{k}={Environment.GetEnvironmentVariable(k)}")),
    };
    var monitor = new Recurrent.Bench.CpuMonitor();
    var corpus = CharData.Load(data);
    result.Vocabulary = corpus.VocabularySize;
    result.TrainChars = corpus.Train.Length;
    result.ValidationChars = corpus.Validation.Length;
    Console.WriteLine($"  {corpus}");
    switch (child)
    {
        case "torch": TorchLm.Run(recipe, corpus, result, speed ? new SpeedPlan(speedWarmup, speedWarmupSeconds, speedSteps) : null); break;
        case "ours": OursLm.Run(recipe, corpus, result, speed ? new SpeedPlan(speedWarmup, speedWarmupSeconds, speedSteps) : null); break;
        default: throw new ArgumentException($"--child {child}: torch or ours");
    }
    Console.WriteLine($"  {result.Settings}");
    result.PeakWorkingSetMiB = Machine.PeakMemoryMiB();
    result.ForeignCores = monitor.ForeignCores();
    result.LoadEnd = Machine.LoadAverage();
    File.WriteAllText(resultFile ?? throw new ArgumentException("--result-file needed with --child"), result.ToJson());
    return 0;
}

string[] implementations = model switch
{
    "both" => ["torch", "ours"],
    "torch" or "ours" => [model],
    _ => throw new ArgumentException($"--model {model}: torch, ours or both"),
};
if (speed) implementations = ["torch", "ours"];
Console.WriteLine($"{(speed ? $"speed: warm-up ≥ {speedWarmup} steps and ≥ {speedWarmupSeconds} s, then {speedSteps} timed steps" : "train")}: {recipe}");
Console.WriteLine($"  data {data}; CPU {CpuModel()}, {Environment.ProcessorCount} cores, AVX-512F {Avx512F.IsSupported}; results → {outFile}");
Directory.CreateDirectory(Path.GetDirectoryName(outFile)!);
var results = new List<RunResult>();
int failures = 0;
foreach (var implementation in implementations)
{
    if (waitIdle > 0) Recurrent.Bench.CpuMonitor.WaitForIdle(waitIdle);
    string tmp = Path.GetTempFileName();
    var psi = new ProcessStartInfo(Environment.ProcessPath!) { UseShellExecute = false };
    if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet") psi.ArgumentList.Add(typeof(RunResult).Assembly.Location);
    foreach (var a in args) psi.ArgumentList.Add(a);
    foreach (var a in new[] { "--child", implementation, "--data", data, "--result-file", tmp }) psi.ArgumentList.Add(a);
    Console.WriteLine($"=== {implementation} — {DateTime.UtcNow:u}, load {Machine.LoadAverage()}");
    using var p = Process.Start(psi)!;
    p.WaitForExit();
    string json = File.Exists(tmp) ? File.ReadAllText(tmp) : "";
    File.Delete(tmp);
    if (p.ExitCode != 0 || json.Length == 0) { Console.WriteLine($"!!! {implementation} failed (exit {p.ExitCode})"); failures++; continue; }
    File.AppendAllText(outFile, json + Environment.NewLine);
    results.Add(RunResult.FromJson(json));
}
Console.WriteLine();
Table(results);
if (speed && results.Count == 2)
{
    var (torch, ours) = (results[0], results[1]);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"speed at {recipe.Threads} thread(s), B={recipe.BatchSize} T={recipe.Bptt}: torch {torch.MedianStepMilliseconds:F1} ms/step ({torch.MedianTokensPerSecond:F0} tokens/s), " +
        $"ours {ours.MedianStepMilliseconds:F1} ms/step ({ours.MedianTokensPerSecond:F0} tokens/s); step time ours/torch = {ours.MedianStepMilliseconds / torch.MedianStepMilliseconds:F2}"));
}
return failures == 0 ? 0 : 1;

static string CpuModel()
{
    try
    {
        return File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "";
    }
    catch (IOException) { return ""; }
}

static void Table(List<RunResult> runs)
{
    static string F(double v, string format) => double.IsNaN(v) ? "–" : v.ToString(format, CultureInfo.InvariantCulture);
    Console.WriteLine("| impl | mode | recipe | steps | tokens | train s | tokens/s | median ms/step | first loss | final train loss | val nats/char | val bpc | per-epoch val | peak MiB | threads | AVX-512F | other procs (cores) |");
    Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    foreach (var r in runs)
        Console.WriteLine($"| {r.Implementation} | {r.Mode} | `{r.Recipe}` | {r.Steps} | {r.Tokens:N0} | {F(r.TrainSeconds, "F1")} | {F(r.TokensPerSecond, "N0")} | {F(r.MedianStepMilliseconds, "F1")} | " +
            $"{F(r.FirstStepLoss, "F3")} | {F(r.FinalTrainLoss, "F3")} | {F(r.FinalValidationLoss, "F4")} | {F(r.FinalValidationBpc, "F3")} | " +
            $"{string.Join(", ", r.Epochs.Select(e => F(e.ValidationLoss, "F3") + (e.Partial ? "*" : "")))} | {F(r.PeakWorkingSetMiB, "F0")} | {r.Threads} | {(r.Avx512F ? "yes" : "no")} | {F(r.ForeignCores, "F2")} |");
}
