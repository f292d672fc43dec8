using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Text.Json;
using Microsoft.ML.Recurrent.Kernels;

namespace Recurrent.Bench;

/// <summary>
/// What a benchmark run records about the machine: the CPU (model name, family, model and stepping numbers), the
/// vector path our kernels take on it (Vector512 / Vector256 / Vector128), the .NET knobs that changed it, and the
/// measured one-core FMA peak at that width — so a result file says which machine and path it came from.
/// </summary>
internal sealed record MachineInfo(string CpuModel, string CpuFamily, string CpuModelNumber, string Stepping, int LogicalCores,
    string VectorPath, string Knobs, double FmaPeakGflops, string Runtime)
{
    /// <summary>The file-name suffix of this path's results: avx512, avx2 or vector128.</summary>
    public string PathSuffix => VectorPath switch { "Vector512" => "avx512", "Vector256" => "avx2", _ => "vector128" };

    public static MachineInfo Measure()
    {
        string Field(string name)
        {
            try
            {
                var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith(name, StringComparison.Ordinal) && l[name.Length..].TrimStart().StartsWith(':'));
                return line is null ? "" : line[(line.IndexOf(':') + 1)..].Trim();
            }
            catch (IOException) { return ""; }
        }
        string path = FusedKernels.Current() switch
        {
            KernelPath.Avx512 => "Vector512",
            KernelPath.Avx2 => "Vector256",
            _ => "Vector128",
        };
        string knobs = string.Join(' ', Environment.GetEnvironmentVariables().Keys.OfType<string>()
            .Where(k => k.StartsWith("DOTNET_Enable", StringComparison.Ordinal) || k.StartsWith("DOTNET_PreferredVectorBitWidth", StringComparison.Ordinal)
                || Program.Avx2PeerKnobs.Any(knob => knob.Name == k))
            .Order(StringComparer.Ordinal).Select(k => $"{k}={Environment.GetEnvironmentVariable(k)}"));
        return new MachineInfo(Program.CpuModel(), Field("cpu family"), Field("model"), Field("stepping"), Environment.ProcessorCount,
            path, knobs, FmaPeak(path), RuntimeInformation.FrameworkDescription);
    }

    /// <summary>
    /// One core's single-precision FMA peak at <paramref name="path"/>'s width, in GFLOP/s: ten independent
    /// accumulator chains (enough to cover the FMA latency on current x64 and Arm cores), the median of seven trials.
    /// It runs the kernels' own <see cref="ISimd{TSelf}.MultiplyAdd"/> at that width: a fused multiply-add where the CPU
    /// has one, a multiply then an add where it does not (x64 with FMA switched off); both count as two flops.
    /// </summary>
    public static double FmaPeak(string path)
    {
        const long iterations = 20_000_000;
        var trials = new List<double>();
        for (int t = 0; t < 7; t++)
        {
            var clock = Stopwatch.StartNew();
            int lanes = path switch { "Vector512" => Chains<Simd512>(iterations), "Vector256" => Chains<Simd256>(iterations), _ => Chains<Simd128>(iterations) };
            trials.Add(2.0 * 10 * lanes * iterations / clock.Elapsed.TotalSeconds / 1e9);
        }
        trials.Sort();
        return Math.Round(trials[3], 1);
    }

    private static int Chains<T>(long n) where T : struct, ISimd<T>
    {
        var m = T.Create(0.999999f);
        var a = T.Create(1e-7f);
        T c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default, c8 = default, c9 = default;
        for (long i = 0; i < n; i++)
        {
            c0 = T.MultiplyAdd(c0, m, a); c1 = T.MultiplyAdd(c1, m, a); c2 = T.MultiplyAdd(c2, m, a); c3 = T.MultiplyAdd(c3, m, a);
            c4 = T.MultiplyAdd(c4, m, a); c5 = T.MultiplyAdd(c5, m, a); c6 = T.MultiplyAdd(c6, m, a); c7 = T.MultiplyAdd(c7, m, a);
            c8 = T.MultiplyAdd(c8, m, a); c9 = T.MultiplyAdd(c9, m, a);
        }
        Keep(T.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9));
        return T.Count;
    }

    private static float s_sink;
    private static void Keep(float value) => s_sink += value;

    public void Write(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("cpu_model", CpuModel);
        w.WriteString("cpu_family", CpuFamily);
        w.WriteString("cpu_model_number", CpuModelNumber);
        w.WriteString("cpu_stepping", Stepping);
        w.WriteNumber("logical_cores", LogicalCores);
        w.WriteString("vector_path", VectorPath);
        w.WriteString("dotnet_knobs", Knobs);
        w.WriteNumber("fma_peak_gflops_one_core", FmaPeakGflops);
        w.WriteString("runtime", Runtime);
        w.WriteEndObject();
    }

    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"{CpuModel} (family {CpuFamily}, model {CpuModelNumber}, stepping {Stepping}), {LogicalCores} logical cores; vector path {VectorPath}{(Knobs.Length > 0 ? $" ({Knobs})" : "")}; one-core FMA peak {FmaPeakGflops:F1} GFLOP/s");
}
