// GemmTiming: GFLOP/s of Kernels/Sgemm for square products and µs per call for the recurrent-step shape.
// Usage: dotnet run -c Release -- [Auto|Avx512|Avx2|Portable] [size]
using System.Diagnostics;
using Microsoft.ML.Recurrent.Kernels;

KernelPath path = args.Length > 0 ? Enum.Parse<KernelPath>(args[0]) : KernelPath.Auto;
int size = args.Length > 1 ? int.Parse(args[1]) : 1024;
Console.WriteLine($"path {Sgemm.Resolve(path)}, {Environment.ProcessorCount} logical CPUs");

var random = new Random(1);
float[] Make(int count)
{
    var x = new float[count];
    for (int i = 0; i < x.Length; i++)
    {
        x[i] = (float)(random.NextDouble() * 2 - 1);
    }

    return x;
}

// Runs body for ~minSeconds after warm-up; returns the best and median seconds per call.
(double Best, double Median) Time(Action body, double minSeconds = 1.0)
{
    for (int i = 0; i < 3; i++)
    {
        body();
    }

    var samples = new List<double>();
    var total = Stopwatch.StartNew();
    while (total.Elapsed.TotalSeconds < minSeconds || samples.Count < 5)
    {
        long t0 = Stopwatch.GetTimestamp();
        body();
        samples.Add(Stopwatch.GetElapsedTime(t0).TotalSeconds);
    }

    samples.Sort();
    return (samples[0], samples[samples.Count / 2]);
}

{
    int n = size;
    float[] a = Make(n * n), b = Make(n * n), c = new float[n * n];
    foreach (var (ta, tb) in new[] { (Transpose.No, Transpose.No), (Transpose.No, Transpose.Yes), (Transpose.Yes, Transpose.No) })
    {
        foreach (int threads in new[] { 1, 2 })
        {
            var (best, median) = Time(() => Sgemm.Multiply(path, ta, tb, n, n, n, a, n, b, n, c, n, false, threads));
            double flops = 2.0 * n * n * n;
            Console.WriteLine($"{n}³ {ta}{tb} threads={threads}: best {flops / best / 1e9:F1} GFLOP/s, median {flops / median / 1e9:F1} GFLOP/s");
        }
    }
}

{
    const int m = 32, k = 256, n = 1024;
    float[] a = Make(m * k), w = Make(n * k), c = new float[m * n];
    PackedMatrix packed = Sgemm.PackB(Transpose.Yes, k, n, w, k);
    foreach (int threads in new[] { 1, 2 })
    {
        var (best, median) = Time(() =>
        {
            for (int r = 0; r < 100; r++)
            {
                Sgemm.Multiply(path, Transpose.No, m, a, k, packed, c, n, true, threads);
            }
        });
        double flops = 2.0 * m * n * k * 100;
        long before = GC.GetAllocatedBytesForCurrentThread();
        Sgemm.Multiply(path, Transpose.No, m, a, k, packed, c, n, true, threads);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Console.WriteLine($"packed m={m} k={k} n={n} threads={threads}: best {best / 100 * 1e6:F2} µs/call ({flops / best / 1e9:F1} GFLOP/s), median {median / 100 * 1e6:F2} µs/call, {allocated} B allocated/call");
    }

    var (pb, _) = Time(() => Sgemm.Multiply(path, Transpose.No, Transpose.Yes, m, n, k, a, k, w, k, c, n, true, 1), 0.5);
    Console.WriteLine($"unpacked NT m={m} k={k} n={n}: {pb * 1e6:F2} µs/call");
    var (rp, _) = Time(() => Sgemm.RepackB(packed, Transpose.Yes, w, k), 0.5);
    Console.WriteLine($"RepackB (Yes) k={k} n={n}: {rp * 1e6:F2} µs");
}
