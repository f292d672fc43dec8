using System.Globalization;

namespace Recurrent.Bench;

/// <summary>
/// Measures CPU time used by OTHER processes while the benchmark runs (Linux: busy jiffies from /proc/stat minus this
/// process's own utime+stime, children included, from /proc/self/stat). On a 2-core machine any foreign load distorts
/// the timings, so the run reports it and warns.
/// </summary>
internal sealed class CpuMonitor
{
    private readonly long _busy0, _own0;
    private readonly DateTime _t0 = DateTime.UtcNow;

    public CpuMonitor() => (_busy0, _own0) = Sample();

    private static (long Busy, long Own) Sample()
    {
        try
        {
            var cpu = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            // cpu user nice system idle iowait irq softirq steal ...
            long busy = new[] { 1, 2, 3, 6, 7, 8 }.Sum(i => long.Parse(cpu[i], CultureInfo.InvariantCulture));
            var self = File.ReadAllText("/proc/self/stat");
            var fields = self[(self.LastIndexOf(')') + 2)..].Split(' ');
            // after "(comm) ": state=0 … utime=11 stime=12 cutime=13 cstime=14
            long own = new[] { 11, 12, 13, 14 }.Sum(i => long.Parse(fields[i], CultureInfo.InvariantCulture));
            return (busy, own);
        }
        catch (Exception e) when (e is IOException or FormatException or IndexOutOfRangeException or UnauthorizedAccessException)
        {
            return (0, 0);
        }
    }

    /// <summary>Average number of cores kept busy by other processes since construction.</summary>
    public double ForeignCores()
    {
        var (busy, own) = Sample();
        double seconds = Math.Max(1e-3, (DateTime.UtcNow - _t0).TotalSeconds);
        long ticks = Math.Max(0, (busy - _busy0) - (own - _own0));
        return ticks / 100.0 / seconds; // USER_HZ = 100 on Linux
    }

    /// <summary>Waits (up to <paramref name="maxSeconds"/>) until other processes use less than 0.1 core over a 3 s window.</summary>
    public static bool WaitForIdle(double maxSeconds)
    {
        var deadline = DateTime.UtcNow.AddSeconds(maxSeconds);
        while (true)
        {
            var m = new CpuMonitor();
            Thread.Sleep(3000);
            double foreign = m.ForeignCores();
            if (foreign < 0.1) return true;
            if (DateTime.UtcNow >= deadline)
            {
                Console.WriteLine($"machine still busy ({foreign:F2} cores used by other processes); starting anyway");
                return false;
            }
            Console.WriteLine($"waiting for the machine to go idle ({foreign:F2} cores used by other processes) ...");
        }
    }

    public static string LoadAverage()
    {
        try { return File.ReadAllText("/proc/loadavg").Trim(); }
        catch (IOException) { return "n/a"; }
    }
}
