using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Microsoft.ML.Recurrent.Kernels;

namespace Microsoft.ML.Recurrent.Tests;

/// <summary>
/// Which instruction sets this run uses, and whether the runtime knobs <c>.ci/run</c> sets to narrow them took
/// effect: a knob the runtime ignores (as .NET 10 ignores <c>DOTNET_EnableAVX512F</c>, renamed
/// <c>DOTNET_EnableAVX512</c>) would silently repeat the native run instead of testing the narrower paths. On Arm64
/// (the emulated run of <c>build/Arm64Kernels</c>) the kernels must resolve to the AdvSimd (Vector128) path.
/// </summary>
[TestClass]
public sealed class InstructionSetTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void RuntimeKnobsTookEffect()
    {
        string fusedAuto = FusedKernels.Current().ToString();
        TestContext.WriteLine($"CPU as the runtime sees it: {KernelPaths.CpuSummary()}");
        TestContext.WriteLine($"Auto paths: SGEMM {Sgemm.Resolve(KernelPath.Auto)}, fused kernels {fusedAuto}; "
            + $"Vector512 {Accelerated(Vector512.IsHardwareAccelerated)}, Vector256 {Accelerated(Vector256.IsHardwareAccelerated)}, "
            + $"Vector128 {Accelerated(Vector128.IsHardwareAccelerated)}, FMA {(Fma.IsSupported || System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported ? "yes" : "no")}");

        if (Off("DOTNET_EnableAVX512"))
        {
            Assert.IsFalse(Avx512F.IsSupported || Vector512.IsHardwareAccelerated, "DOTNET_EnableAVX512=0 is set but AVX-512 is still in use.");
            Assert.AreNotEqual(KernelPath.Avx512, Sgemm.Resolve(KernelPath.Auto));
        }
        if (Off("DOTNET_EnableAVX2"))
        {
            Assert.IsFalse(Avx2.IsSupported || Vector256.IsHardwareAccelerated || Fma.IsSupported, "DOTNET_EnableAVX2=0 is set but AVX2, Vector256 or FMA is still in use.");
            Assert.AreEqual(KernelPath.Portable, Sgemm.Resolve(KernelPath.Auto));
            Assert.AreEqual(KernelPath.Portable, FusedKernels.Current());
        }
        if (RuntimeInformation.ProcessArchitecture == Architecture.Arm64)
        {
            // The Arm64 run (build/Arm64Kernels under qemu-aarch64 in .ci/run): the kernels must take AdvSimd, with FMA.
            Assert.IsTrue(System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported && Vector128.IsHardwareAccelerated, "Arm64 without AdvSimd acceleration.");
            Assert.AreEqual(KernelPath.Portable, Sgemm.Resolve(KernelPath.Auto));
            Assert.AreEqual(KernelPath.Portable, FusedKernels.Current());
        }
        if (Off("DOTNET_EnableAVX512F") && !Off("DOTNET_EnableAVX512") && Avx512F.IsSupported)
            Assert.Fail("DOTNET_EnableAVX512F=0 is set but AVX-512 is still in use: this runtime ignores that name; set DOTNET_EnableAVX512=0.");
    }

    private static bool Off(string knob) => Environment.GetEnvironmentVariable(knob) is "0";

    private static string Accelerated(bool value) => value ? "accelerated" : "not accelerated";
}
