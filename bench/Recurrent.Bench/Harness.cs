using System.Diagnostics;

namespace Recurrent.Bench;

/// <summary>How many times to run a body: warm-up calls, then at least <see cref="MinIterations"/> timed calls and
/// more until <see cref="TargetSeconds"/> of timed work or <see cref="MaxIterations"/> calls.</summary>
internal sealed record Budget(int Warmup, int MinIterations, int MaxIterations, double TargetSeconds)
{
    public Budget Quick() => new(Math.Min(Warmup, Math.Max(1, Warmup / 5)), Math.Max(2, MinIterations / 4),
        Math.Max(2, MaxIterations / 4), TargetSeconds / 4);
}

/// <summary>Timing of one implementation on one case at one thread count.</summary>
internal sealed record Measurement(double MedianMs, double MinMs, double MeanMs, int Iterations, long AllocatedBytesPerCall);

/// <summary>
/// The timing loop. Every call is timed on its own with <see cref="Stopwatch"/>; the reported figures are the median
/// and the minimum of the per-call times. Allocations are read with <see cref="GC.GetAllocatedBytesForCurrentThread"/>
/// around each timed call (managed allocations of the calling thread only; the median over calls is reported).
/// </summary>
internal static class Harness
{
    public static Measurement Run(Action body, Budget budget)
    {
        for (int i = 0; i < budget.Warmup; i++)
            body();
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect();

        var times = new List<double>();
        var allocs = new List<long>();
        double total = 0;
        while (times.Count < budget.MinIterations || (total < budget.TargetSeconds && times.Count < budget.MaxIterations))
        {
            long a0 = GC.GetAllocatedBytesForCurrentThread();
            long t0 = Stopwatch.GetTimestamp();
            body();
            long t1 = Stopwatch.GetTimestamp();
            long a1 = GC.GetAllocatedBytesForCurrentThread();
            double s = (t1 - t0) / (double)Stopwatch.Frequency;
            times.Add(s * 1000);
            allocs.Add(a1 - a0);
            total += s;
        }
        times.Sort();
        allocs.Sort();
        return new Measurement(Median(times), times[0], times.Average(), times.Count, allocs[allocs.Count / 2]);
    }

    private static double Median(List<double> sorted)
    {
        int n = sorted.Count;
        return n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    }
}
