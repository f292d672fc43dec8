namespace Microsoft.ML.Recurrent.Kernels;

/// <summary>Which SGEMM micro-kernel family to run.</summary>
internal enum KernelPath
{
    /// <summary>The widest path the current CPU supports (AVX-512, then AVX2 + FMA, then portable).</summary>
    Auto,
    /// <summary><see cref="System.Runtime.Intrinsics.Vector512{T}"/> with AVX-512F fused multiply-add.</summary>
    Avx512,
    /// <summary><see cref="System.Runtime.Intrinsics.Vector256{T}"/> with AVX2 + FMA3.</summary>
    Avx2,
    /// <summary><see cref="System.Runtime.Intrinsics.Vector128{T}"/> only; correct on any CPU (software-emulated where not accelerated).</summary>
    Portable,
}
