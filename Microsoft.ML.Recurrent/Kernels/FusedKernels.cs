using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Recurrent.Kernels;

/// <summary>
/// Chooses the vector width of the fused element-wise kernels (the recurrent cells' steps and Adam's update), as
/// <see cref="Sgemm.Path"/> does for the matrix products. <see cref="KernelPath.Avx512"/> runs them on
/// <see cref="Simd512"/>, <see cref="KernelPath.Avx2"/> on <see cref="Simd256"/> and <see cref="KernelPath.Portable"/>
/// on <see cref="Simd128"/>; tails always run on <see cref="Simd1"/>. Each kernel keeps a scalar reference beside it,
/// which the tests compare every path with.
/// </summary>
internal static class FusedKernels
{
    [ThreadStatic]
    private static KernelPath t_path;

    [ThreadStatic]
    private static bool t_allowEmulation;

    /// <summary>
    /// The path the calling thread's kernels take; <see cref="KernelPath.Auto"/> (the default) picks the widest the CPU
    /// accelerates. Thread-static so tests running in parallel can force different paths; work a layer hands to another
    /// thread (the two directions with <c>Threads</c> = 2) runs at that thread's own setting.
    /// </summary>
    public static KernelPath Path
    {
        get => t_path;
        set
        {
            if (!Enum.IsDefined(value))
                throw new ArgumentOutOfRangeException(nameof(value), value, "Unknown kernel path.");
            t_path = value;
        }
    }

    /// <summary>
    /// Lets the calling thread force a path the CPU does not accelerate, which then runs in software (Vector512 on a
    /// CPU without AVX-512 is emulated with narrower vectors; lane for lane the same results, far slower). For tests:
    /// it exercises a width's code where its hardware is absent, which says nothing about the JIT's code for that hardware.
    /// </summary>
    public static bool AllowEmulation
    {
        get => t_allowEmulation;
        set => t_allowEmulation = value;
    }

    /// <summary>
    /// Whether <paramref name="path"/> runs at full speed on this CPU: Vector512 hardware-accelerated (AVX-512), Vector256
    /// accelerated with FMA (AVX2 + FMA3). <see cref="KernelPath.Portable"/> always runs (in software where Vector128 is
    /// not accelerated), like SGEMM's.
    /// </summary>
    public static bool IsSupported(KernelPath path) => path switch
    {
        KernelPath.Auto or KernelPath.Portable => true,
        KernelPath.Avx512 => Vector512.IsHardwareAccelerated,
        KernelPath.Avx2 => Vector256.IsHardwareAccelerated && Fma.IsSupported,
        _ => false,
    };

    /// <summary>The concrete path <see cref="Path"/> stands for on this thread. Constant-folded by the JIT apart from the thread-static read.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static KernelPath Current()
    {
        KernelPath path = t_path;
        if (path == KernelPath.Auto)
        {
            return Vector512.IsHardwareAccelerated ? KernelPath.Avx512
                : Vector256.IsHardwareAccelerated && Fma.IsSupported ? KernelPath.Avx2
                : KernelPath.Portable;
        }
        if (!t_allowEmulation && !IsSupported(path))
            ThrowNotSupported(path);
        return path;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowNotSupported(KernelPath path) =>
        throw new PlatformNotSupportedException($"The fused kernels' {path} path is not hardware-accelerated on this CPU.");

    /// <summary>
    /// Throws an <see cref="ArgumentException"/> naming <paramref name="name"/> when <paramref name="length"/> is less than
    /// <paramref name="required"/>: the guard the kernels run once per call, before any unchecked access.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void RequireLength(int length, long required, string name)
    {
        if (length < required)
            ThrowTooShort(length, required, name);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowTooShort(int length, long required, string name) =>
        throw new ArgumentException($"{name} holds {length} floats but the shapes require {required}.", name);
}
