using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Microsoft.ML.Recurrent.Core;

namespace Recurrent.Bench;

/// <summary>One line of the results: one case × thread count × peer.</summary>
internal sealed class Record
{
    public required string Case { get; init; }
    public required int Threads { get; init; }
    public required Measurement Ours { get; init; }
    public required string Peer { get; init; }
    public required Measurement PeerM { get; init; }
    public double Ratio => PeerM.MedianMs / Ours.MedianMs;
    public Dictionary<string, object> Extra { get; } = new();
}

internal sealed class Options
{
    public static readonly string[] AllCases = ["a-infer", "b-train", "c-latency", "d-train", "d-infer", "e-train", "gemm-1024"];
    public List<string> Cases { get; } = new();
    public List<int> Threads { get; } = new();
    public bool Quick { get; set; }
    public bool Smoke { get; set; }
    public bool Memory { get; set; } = true;
    public string? Out { get; set; }
    public string? MemChild { get; set; }
    public double WaitIdleSeconds { get; set; }
    public bool CheckOnly { get; set; }
    public bool Breakdown { get; set; }
    public int Retries { get; set; } = 2;
    public bool BothPaths { get; set; }
    public bool MLNet { get; set; }

    public static Options Parse(string[] args)
    {
        var o = new Options();
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{a} needs a value");
            switch (a)
            {
                case "--case":
                    foreach (var c in Next().Split(',', StringSplitOptions.RemoveEmptyEntries))
                    {
                        if (!AllCases.Contains(c)) throw new ArgumentException($"unknown case '{c}' (cases: {string.Join(", ", AllCases)})");
                        o.Cases.Add(c);
                    }
                    break;
                case "--threads":
                    o.Threads.AddRange(Next().Split(',', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse));
                    break;
                case "--quick": o.Quick = true; break;
                case "--smoke": o.Smoke = true; break;
                case "--no-mem": o.Memory = false; break;
                case "--check-only": o.CheckOnly = true; break;
                case "--breakdown": o.Breakdown = true; break;
                case "--retries": o.Retries = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--out": o.Out = Next(); break;
                case "--both-paths": o.BothPaths = true; break;
                case "--mlnet": o.MLNet = true; break;
                case "--wait-idle": o.WaitIdleSeconds = double.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--mem-child": o.MemChild = Next(); break;
                case "-h":
                case "--help":
                    throw new HelpException();
                default:
                    throw new ArgumentException($"unknown option '{a}'");
            }
        }
        if (o.Cases.Count == 0) o.Cases.AddRange(AllCases);
        if (o.Threads.Count == 0) o.Threads.AddRange([1, 2]);
        return o;
    }

    public bool Full => !Quick && !Smoke && Cases.Count == AllCases.Length && Threads.SequenceEqual([1, 2]);
}

internal sealed class HelpException : Exception;

/// <summary>A numerical disagreement between implementations: the run stops before any timing is reported.</summary>
internal sealed class CheckFailedException(string message) : Exception(message);

internal static class Program
{
    /// <summary>Other processes' average CPU use above which a case counts as disturbed and is measured again.</summary>
    private const double MaxForeignCores = 0.1;

    private const string Usage = """
        usage: dotnet run -c Release --project bench/Recurrent.Bench -- [options]
          --case LIST     comma-separated subset of: a-infer, b-train, c-latency, d-train, d-infer, e-train, gemm-1024 (default: all)
          --threads LIST  thread counts (default: 1,2)
          --quick         fewer iterations (numbers are noisier)
          --smoke         tiny shapes: checks the plumbing and the numerical checks only; numbers are meaningless
          --breakdown     where our time goes: times the GEMM and element-wise pieces of the selected LSTM cases (ours only)
          --check-only    run the numerical cross-checks only (no timing, nothing written)
          --no-mem        skip the peak-memory child processes of d-train
          --wait-idle S   first wait up to S seconds for other processes to leave the CPUs idle
          --retries N     measure a case again (up to N times, default 2) when other processes used > 0.1 core during it
          --out PATH      JSON output (default: bench/results/latest-<path>.json for a full run, partial-<path>.json otherwise;
                          <path> = avx512, avx2 or vector128: the vector path the run took, so no path's results hide another's)
          --mlnet         end-to-end ML.NET scoring on AG News instead: rows/s of Transform + cursor and of a PredictionEngine
                          loop, ours and FeaturizeText + SDCA (writes bench/results/mlnet-<path>.md)
          --both-paths    on an AVX-512 machine, then run everything again with DOTNET_EnableAVX512=0 (the AVX2 path), with
                          libtorch held to AVX2 as well (ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA, MKL_ENABLE_INSTRUCTIONS), as
                          on an AVX2 machine; ONNX Runtime has no such switch and keeps AVX-512 (recorded in the machine line)
        """;

    private static int Main(string[] args)
    {
        Options o;
        try
        {
            o = Options.Parse(args);
        }
        catch (HelpException)
        {
            Console.WriteLine(Usage);
            return 0;
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine(Usage);
            return 2;
        }

        if (o.MemChild is not null)
            return MemoryChild.Run(o);
        if (o.MLNet)
            return MLNetThroughput.Run(RepoRoot(), o.Quick ? 3 : 5);
        if (o.Breakdown)
        {
            foreach (var c in Options.AllCases.Where(c => o.Cases.Contains(c) && c != "gemm-1024"))
                Recurrent.Bench.Breakdown.Run(c, o);
            return 0;
        }

        try
        {
            return RunAll(o);
        }
        catch (CheckFailedException e)
        {
            Console.Error.WriteLine();
            Console.Error.WriteLine("CHECK FAILED: " + e.Message);
            Console.Error.WriteLine("The implementations disagree; no timings were written.");
            return 1;
        }
    }

    private static int RunAll(Options o)
    {
        if (o.WaitIdleSeconds > 0)
            CpuMonitor.WaitForIdle(o.WaitIdleSeconds);
        var started = Stopwatch.StartNew();
        var monitor = new CpuMonitor();
        TorchRuntime.EnsureLoaded();
        var machine = MachineInfo.Measure();
        Console.WriteLine($"date      {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        Console.WriteLine($"machine   {machine.Describe()}");
        Console.WriteLine($"runtime   {RuntimeInformation.FrameworkDescription}, {RuntimeInformation.OSDescription}");
        Console.WriteLine($"peers     libtorch {TorchRuntime.Version} (TorchSharp-cpu 0.107.0), ONNX Runtime {OnnxLstm.Version}");
        Console.WriteLine($"loadavg   {CpuMonitor.LoadAverage()} (at start)");
        Console.WriteLine($"mode      {(o.Smoke ? "SMOKE (tiny shapes, numbers meaningless)" : o.Quick ? "quick" : "full")}; threads {string.Join(",", o.Threads)}");
        Console.WriteLine();

        var records = new List<Record>();
        foreach (var c in Options.AllCases.Where(o.Cases.Contains))
        {
            var sw = Stopwatch.StartNew();
            List<Record> rs;
            double foreign;
            int attempt = 1;
            while (true)
            {
                var caseMonitor = new CpuMonitor();
                rs = Cases.Run(c, o);
                foreign = caseMonitor.ForeignCores();
                if (o.CheckOnly || foreign <= MaxForeignCores || attempt >= 1 + o.Retries) break;
                attempt++;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  other processes used {foreign:F2} cores during {c}; waiting for idle and measuring it again (attempt {attempt})"));
                CpuMonitor.WaitForIdle(Math.Max(o.WaitIdleSeconds, 60));
            }
            foreach (var r in rs)
            {
                r.Extra["foreign_cpu_cores"] = Math.Round(foreign, 2);
                r.Extra["attempts"] = attempt;
            }
            records.AddRange(rs);
            if (o.CheckOnly) continue;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  [{c} done in {sw.Elapsed.TotalSeconds:F1} s; other processes used {foreign:F2} cores meanwhile{(foreign > MaxForeignCores ? " — DISTORTED" : "")}]"));
            Console.WriteLine();
        }

        if (o.CheckOnly)
        {
            Console.WriteLine($"all checks passed in {started.Elapsed.TotalSeconds:F0} s");
            return 0;
        }

        if (o.Memory && o.Cases.Contains("d-train"))
        {
            var ours = MemoryChild.Spawn("ours", o);
            var torch = MemoryChild.Spawn("libtorch", o);
            Console.WriteLine($"d-train peak memory (child processes, 1 thread): ours {Describe(ours)}; libtorch {Describe(torch)}");
            foreach (var r in records.Where(r => r.Case == "d-train"))
            {
                if (ours is not null)
                {
                    r.Extra["ours_peak_rss_mb"] = Math.Round(ours.Value.PeakKb / 1024.0, 1);
                    r.Extra["ours_rss_growth_mb"] = Math.Round((ours.Value.PeakKb - ours.Value.BaseKb) / 1024.0, 1);
                }
                if (torch is not null)
                {
                    r.Extra["peer_peak_rss_mb"] = Math.Round(torch.Value.PeakKb / 1024.0, 1);
                    r.Extra["peer_rss_growth_mb"] = Math.Round((torch.Value.PeakKb - torch.Value.BaseKb) / 1024.0, 1);
                }
            }
            Console.WriteLine();
        }

        double foreignTotal = monitor.ForeignCores();
        PrintTable(records);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"other processes kept {foreignTotal:F2} cores busy on average during the run (of {Environment.ProcessorCount})."));
        if (records.Any(r => (double)r.Extra["foreign_cpu_cores"] > MaxForeignCores))
            Console.WriteLine("WARNING: the machine was not idle during some cases (foreign_cpu_cores in the JSON); their timings are distorted.");
        string path = o.Out ?? Path.Combine(RepoRoot(), "bench", "results", $"{(o.Full ? "latest" : "partial")}-{machine.PathSuffix}.json");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllText(path, ToJson(machine, records));
        File.WriteAllText(Path.ChangeExtension(path, ".md"), ToMarkdown(machine, records));
        Console.WriteLine();
        Console.WriteLine($"wrote {path} ({records.Count} records) in {started.Elapsed.TotalMinutes:F1} min total");
        if (o.BothPaths)
            return RunAvx2Path(o);
        return 0;
    }

    /// <summary>
    /// <c>--both-paths</c>: the same run again in a child process with AVX-512 switched off, so the AVX2 path is measured
    /// on the same machine in the same session (and written to its own file). Nothing to do without AVX-512.
    /// </summary>
    private static int RunAvx2Path(Options o)
    {
        if (!System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated)
        {
            Console.WriteLine("--both-paths: this CPU has no AVX-512 (the run above was the AVX2 or Vector128 path); nothing more to run.");
            return 0;
        }
        var args = Environment.GetCommandLineArgs().Skip(1).Where(a => a != "--both-paths").ToList();
        if (o.Out is not null)
        {
            int at = args.IndexOf("--out");
            args[at + 1] = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(o.Out))!, Path.GetFileNameWithoutExtension(o.Out) + "-avx2.json");
        }
        var psi = new ProcessStartInfo(Environment.ProcessPath!) { UseShellExecute = false };
        string entry = typeof(Program).Assembly.Location;
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet") psi.ArgumentList.Add(entry);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_EnableAVX512"] = "0";    // .NET 10's name; it ignores the older DOTNET_EnableAVX512F
        psi.Environment["DOTNET_EnableAVX512F"] = "0";   // the .NET 8/9 name
        // The peers as on an AVX2 machine where they allow it: libtorch's ATen kernels, its oneDNN and its MKL each read a
        // switch at load. ONNX Runtime's MLAS has none (it reads CPUID), so its figures stay AVX-512 ones; the machine
        // line records both.
        foreach (var (name, value) in Avx2PeerKnobs)
            psi.Environment[name] = value;
        Console.WriteLine();
        Console.WriteLine("--both-paths: the same run with DOTNET_EnableAVX512=0 (AVX2 path) in a child process");
        using var child = Process.Start(psi)!;
        child.WaitForExit();
        return child.ExitCode;
    }

    /// <summary>The switches that hold libtorch to AVX2 (read when it loads, so set for a child process).</summary>
    internal static readonly (string Name, string Value)[] Avx2PeerKnobs =
        [("ATEN_CPU_CAPABILITY", "avx2"), ("ONEDNN_MAX_CPU_ISA", "AVX2"), ("MKL_ENABLE_INSTRUCTIONS", "AVX2")];

    private static string Describe((long PeakKb, long BaseKb)? m) =>
        m is null ? "n/a" : $"peak RSS {m.Value.PeakKb / 1024.0:F0} MB (+{(m.Value.PeakKb - m.Value.BaseKb) / 1024.0:F0} MB over the set-up state)";

    internal static string CpuModel()
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            return line is null ? "unknown" : line[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(Directory.GetCurrentDirectory()); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Recurrent.sln")))
                return d.FullName;
        return Directory.GetCurrentDirectory();
    }

    private static void PrintTable(List<Record> records)
    {
        string[] head = ["case", "threads", "ours ms", "peer", "peer ms", "ratio", "ours min", "peer min", "ours alloc/call"];
        var rows = records.Select(r => new[]
        {
            r.Case, r.Threads.ToString(CultureInfo.InvariantCulture), Ms(r.Ours.MedianMs), r.Peer, Ms(r.PeerM.MedianMs),
            r.Ratio.ToString("F2", CultureInfo.InvariantCulture), Ms(r.Ours.MinMs), Ms(r.PeerM.MinMs), Bytes(r.Ours.AllocatedBytesPerCall),
        }).ToList();
        var widths = head.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        var sb = new StringBuilder();
        void Line(string[] cells) => sb.AppendLine(string.Join("  ", cells.Select((c, i) => i is 0 or 3 ? c.PadRight(widths[i]) : c.PadLeft(widths[i]))));
        Line(head);
        Line(widths.Select(w => new string('-', w)).ToArray());
        foreach (var r in rows) Line(r);
        Console.Write(sb.ToString());
        Console.WriteLine("ratio = peer ms / ours ms (above 1: ours is faster). Medians; min = fastest call.");
    }

    internal static string Ms(double ms) => ms >= 100 ? ms.ToString("F0", CultureInfo.InvariantCulture)
        : ms >= 10 ? ms.ToString("F1", CultureInfo.InvariantCulture)
        : ms >= 1 ? ms.ToString("F2", CultureInfo.InvariantCulture)
        : ms.ToString("F3", CultureInfo.InvariantCulture);

    private static string Bytes(long b) => b < 10_000 ? $"{b} B" : b < 10_000_000 ? $"{b / 1024} KB" : $"{b / (1024 * 1024)} MB";

    private static string ToMarkdown(MachineInfo machine, List<Record> records)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"Machine: {machine.Describe()}; {machine.Runtime}.");
        sb.AppendLine();
        sb.AppendLine("| case | threads | ours ms (median) | peer | peer ms (median) | ratio peer/ours | ours min ms | peer min ms | ours alloc/call |");
        sb.AppendLine("|---|---:|---:|---|---:|---:|---:|---:|---:|");
        foreach (var r in records)
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Case} | {r.Threads} | {Ms(r.Ours.MedianMs)} | {r.Peer} | {Ms(r.PeerM.MedianMs)} | {r.Ratio:F2} | {Ms(r.Ours.MinMs)} | {Ms(r.PeerM.MinMs)} | {Bytes(r.Ours.AllocatedBytesPerCall)} |"));
        return sb.ToString();
    }

    private static string ToJson(MachineInfo machine, List<Record> records)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WritePropertyName("machine");
            machine.Write(w);
            w.WritePropertyName("records");
            w.WriteStartArray();
            foreach (var r in records)
            {
                w.WriteStartObject();
                w.WriteString("case", r.Case);
                w.WriteNumber("threads", r.Threads);
                w.WriteNumber("ours_ms", Round(r.Ours.MedianMs));
                w.WriteString("peer", r.Peer);
                w.WriteNumber("peer_ms", Round(r.PeerM.MedianMs));
                w.WriteNumber("ratio", Math.Round(r.Ratio, 3));
                w.WriteNumber("ours_min_ms", Round(r.Ours.MinMs));
                w.WriteNumber("peer_min_ms", Round(r.PeerM.MinMs));
                w.WriteNumber("ours_iterations", r.Ours.Iterations);
                w.WriteNumber("peer_iterations", r.PeerM.Iterations);
                w.WriteNumber("ours_alloc_bytes", r.Ours.AllocatedBytesPerCall);
                foreach (var (k, v) in r.Extra)
                {
                    switch (v)
                    {
                        case string s: w.WriteString(k, s); break;
                        case int i: w.WriteNumber(k, i); break;
                        case long l: w.WriteNumber(k, l); break;
                        case double d: w.WriteNumber(k, d); break;
                        case bool bo: w.WriteBoolean(k, bo); break;
                        default: w.WriteString(k, Convert.ToString(v, CultureInfo.InvariantCulture)); break;
                    }
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    private static double Round(double ms) => Math.Round(ms, ms >= 100 ? 1 : ms >= 1 ? 3 : 5);
}
