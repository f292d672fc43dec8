using System.Diagnostics;
using System.Globalization;

namespace Accuracy;

/// <summary>What the benchmark records about the machine and the checkout (shared with bench/Tagging by a link).</summary>
internal static class Machine
{
    /// <summary>The 1-, 5- and 15-minute load averages, e.g. "0.75 1.43 2.61"; empty where /proc/loadavg does not exist.</summary>
    public static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "";

    /// <summary>Peak resident set (VmHWM) of this process in MiB.</summary>
    public static double PeakMemoryMiB()
    {
        if (!File.Exists("/proc/self/status")) return double.NaN;
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024.0;
        return double.NaN;
    }

    /// <summary>The folder holding Recurrent.sln above the running program, else the current directory.</summary>
    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Recurrent.sln"))) return dir.FullName;
        return Directory.GetCurrentDirectory();
    }

    /// <summary>The short hash of <paramref name="root"/>'s HEAD, or "" without git.</summary>
    public static string GitCommit(string root)
    {
        try
        {
            var psi = new ProcessStartInfo("git", "rev-parse --short HEAD") { WorkingDirectory = root, RedirectStandardOutput = true, UseShellExecute = false };
            using var p = Process.Start(psi)!;
            string s = p.StandardOutput.ReadToEnd().Trim();
            p.WaitForExit();
            return s;
        }
        catch (Exception) { return ""; }
    }
}
