using System.Diagnostics;
using System.Globalization;

namespace Recurrent.Bench;

/// <summary>
/// Peak memory of d-train, measured in a fresh child process per implementation (<c>--mem-child ours|libtorch</c>):
/// the child builds the case, collects garbage, notes VmRSS, resets the high-water mark (writes 5 to
/// /proc/self/clear_refs), runs two forward+backward passes on one thread and prints VmHWM. The parent reports the
/// peak and its growth over the set-up state (weights and inputs loaded).
/// </summary>
internal static class MemoryChild
{
    public static int Run(Options o)
    {
        var s = Cases.ShapeOf("d-train", o.Smoke);
        var f = new Fixture(s, seed: 3000, withOutputGradient: true);
        Action step;
        TorchLstm? torch = null;
        switch (o.MemChild)
        {
            case "ours":
                step = new OursLstm(f).ForwardBackward;
                break;
            case "libtorch":
                torch = new TorchLstm(f);
                TorchRuntime.SetThreads(1);
                step = torch.ForwardBackward;
                break;
            default:
                Console.Error.WriteLine($"--mem-child: expected ours or libtorch, got '{o.MemChild}'");
                return 2;
        }
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        long baseKb = Status("VmRSS");
        File.WriteAllText("/proc/self/clear_refs", "5");
        step();
        step();
        long peakKb = Status("VmHWM");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"MEM {peakKb} {baseKb} {GC.GetTotalMemory(false)}"));
        torch?.Dispose();
        return 0;
    }

    private static long Status(string key)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(key + ":", StringComparison.Ordinal))
                return long.Parse(line[(key.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        throw new InvalidOperationException($"{key} not in /proc/self/status");
    }

    /// <summary>Runs the child for one implementation; null (and a message) if it fails.</summary>
    public static (long PeakKb, long BaseKb)? Spawn(string which, Options o)
    {
        string exe = Environment.ProcessPath ?? "dotnet";
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(exe) == "dotnet")
            psi.ArgumentList.Add(typeof(MemoryChild).Assembly.Location);
        psi.ArgumentList.Add("--mem-child");
        psi.ArgumentList.Add(which);
        if (o.Smoke) psi.ArgumentList.Add("--smoke");
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        var line = stdout.Split('\n').FirstOrDefault(l => l.StartsWith("MEM ", StringComparison.Ordinal));
        if (p.ExitCode != 0 || line is null)
        {
            Console.Error.WriteLine($"memory child '{which}' failed (exit {p.ExitCode}): {stderr.Result}");
            return null;
        }
        var parts = line.Split(' ');
        return (long.Parse(parts[1], CultureInfo.InvariantCulture), long.Parse(parts[2], CultureInfo.InvariantCulture));
    }
}
