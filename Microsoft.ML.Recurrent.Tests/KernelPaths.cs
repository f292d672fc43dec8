using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using Microsoft.ML.Recurrent.Kernels;

namespace Microsoft.ML.Recurrent.Tests;

/// <summary>
/// Runs a test on one kernel path, or reports it Inconclusive, with the reason, when this CPU (or the runtime's
/// configuration) does not accelerate that path. The paths: <c>Avx512</c> (Vector512, AVX-512F), <c>Avx2</c>
/// (Vector256 with AVX2 + FMA), <c>Portable</c> (Vector128: SSE/AVX on x64, AdvSimd on Arm64; always runs), and
/// <c>Avx512InSoftware</c>: the Vector512 code of the fused kernels run in software emulation where the CPU has no
/// AVX-512, which checks that width's indexing and tails but not the JIT's AVX-512 code.
/// </summary>
internal static class KernelPaths
{
    /// <summary>DataRow values of the vector paths.</summary>
    public const string Avx512 = nameof(Avx512), Avx2 = nameof(Avx2), Portable = nameof(Portable), Avx512InSoftware = nameof(Avx512InSoftware);

    /// <summary>
    /// Forces <paramref name="pathName"/> for the fused kernels and, when <paramref name="sgemmToo"/>, for SGEMM on the
    /// calling thread until the scope is disposed; Inconclusive (with the reason) when the path is not available.
    /// </summary>
    public static Scope Force(string pathName, bool sgemmToo = true)
    {
        bool software = pathName == Avx512InSoftware;
        KernelPath path = software ? KernelPath.Avx512 : Enum.Parse<KernelPath>(pathName);
        if (software)
        {
            if (FusedKernels.IsSupported(KernelPath.Avx512))
                Assert.Inconclusive($"Vector512 is hardware-accelerated here ({CpuSummary()}); the {Avx512} runs test it on the hardware, so there is nothing to emulate.");
            if (!Fma.IsSupported && !AdvSimd.IsSupported)
                Assert.Inconclusive($"No fused multiply-add on this CPU as the runtime sees it ({CpuSummary()}): the Vector512 code fuses and the scalar tail here cannot, so the emulated lanes and tails would differ by design; the AVX-512 kernel was not exercised.");
            // SGEMM's AVX-512 micro-kernel uses AVX-512 instructions directly and cannot be emulated: keep it on Auto.
            sgemmToo = false;
        }
        else
        {
            Require(path, sgemm: sgemmToo);
        }

        var scope = new Scope(FusedKernels.Path, FusedKernels.AllowEmulation, Sgemm.Path);
        FusedKernels.Path = path;
        FusedKernels.AllowEmulation = software;
        if (sgemmToo) Sgemm.Path = path;
        return scope;
    }

    /// <summary>Inconclusive, with the reason, when <paramref name="path"/> is not accelerated for the fused kernels (unless <paramref name="fused"/> is false) and SGEMM (when <paramref name="sgemm"/>).</summary>
    public static void Require(KernelPath path, bool sgemm = true, bool fused = true)
    {
        bool fusedOk = !fused || FusedKernels.IsSupported(path), sgemmOk = !sgemm || Sgemm.IsSupported(path);
        if (fusedOk && sgemmOk)
            return;
        string what = (path, fusedOk) switch
        {
            (KernelPath.Avx512, false) => "Vector512 is not hardware-accelerated",
            (KernelPath.Avx512, true) => "AVX-512F is not available",
            (KernelPath.Avx2, false) => "Vector256 with FMA is not hardware-accelerated",
            (KernelPath.Avx2, true) => "AVX2 with FMA is not available",
            _ => $"{path} is not available",
        };
        string kernel = path switch
        {
            KernelPath.Avx512 => "AVX-512",
            KernelPath.Avx2 => "AVX2/FMA",
            _ => path.ToString(),
        };
        Assert.Inconclusive($"{what} on this CPU ({CpuSummary()}); the {kernel} kernel was not exercised.");
    }

    /// <summary>The instruction sets the runtime uses here, and the DOTNET_Enable* knobs that narrowed them, e.g. "AVX2/FMA only, no AVX-512".</summary>
    public static string CpuSummary()
    {
        string summary = Avx512F.IsSupported ? "AVX-512" + (Vector512.IsHardwareAccelerated ? "" : " without Vector512 acceleration")
            : System.Runtime.Intrinsics.X86.Avx2.IsSupported && Fma.IsSupported ? "AVX2/FMA only, no AVX-512"
            : Avx.IsSupported ? "AVX without AVX2/FMA"
            : Sse41.IsSupported ? "SSE4.1 only"
            : AdvSimd.IsSupported ? "Arm64 AdvSimd"
            : Vector128.IsHardwareAccelerated ? "Vector128 only"
            : "no SIMD acceleration";
        var knobs = new[] { "DOTNET_EnableAVX512", "DOTNET_EnableAVX512F", "DOTNET_EnableAVX2", "DOTNET_EnableAVX", "DOTNET_EnableHWIntrinsic", "DOTNET_PreferredVectorBitWidth" }
            .Select(name => (name, value: Environment.GetEnvironmentVariable(name)))
            .Where(k => k.value is not null)
            .Select(k => $"{k.name}={k.value}")
            .ToArray();
        return knobs.Length == 0 ? summary : $"{summary}; {string.Join(", ", knobs)}";
    }

    /// <summary>Restores the calling thread's kernel paths.</summary>
    internal readonly struct Scope(KernelPath fused, bool emulation, KernelPath sgemm) : IDisposable
    {
        public void Dispose()
        {
            FusedKernels.Path = fused;
            FusedKernels.AllowEmulation = emulation;
            Sgemm.Path = sgemm;
        }
    }
}
