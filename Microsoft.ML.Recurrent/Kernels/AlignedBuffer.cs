using System.Runtime.CompilerServices;

namespace Microsoft.ML.Recurrent.Kernels;

/// <summary>
/// A float buffer on the pinned object heap whose first element is 64-byte aligned (one cache line, one zmm load).
/// Pinned arrays never move, so the pointer stays valid for as long as this object is reachable; no finalizer,
/// no native memory to leak when a thread-static owner dies.
/// </summary>
internal sealed unsafe class AlignedBuffer
{
    private const int AlignmentFloats = 16; // 64 bytes
    private readonly float[] _array;

    private AlignedBuffer(int length)
    {
        Length = length;
        _array = GC.AllocateUninitializedArray<float>(length + AlignmentFloats, pinned: true);
        float* p = (float*)Unsafe.AsPointer(ref _array[0]);
        nint misalignment = (nint)p & 63;
        Pointer = misalignment == 0 ? p : (float*)((byte*)p + (64 - misalignment));
    }

    /// <summary>Usable length in floats.</summary>
    public int Length { get; }

    /// <summary>64-byte aligned address of the first usable element.</summary>
    public float* Pointer { get; }

    /// <summary>Returns <paramref name="buffer"/>'s pointer, first replacing it with a larger buffer if it holds fewer than <paramref name="length"/> floats.</summary>
    public static float* Ensure(ref AlignedBuffer? buffer, int length)
    {
        if (buffer is null || buffer.Length < length)
        {
            // Grow geometrically so a slowly increasing size does not reallocate every call.
            int grown = buffer is null ? length : Math.Max(length, (int)Math.Min(int.MaxValue - 64, buffer.Length * 3L / 2));
            buffer = new AlignedBuffer(grown);
        }

        return buffer.Pointer;
    }

    /// <summary>Allocates a buffer of exactly <paramref name="length"/> floats.</summary>
    public static AlignedBuffer Allocate(int length) => new(length);
}
