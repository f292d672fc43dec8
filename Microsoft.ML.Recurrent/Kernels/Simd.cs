using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Microsoft.ML.Recurrent.Kernels;

/// <summary>
/// One float vector width, so that a fused element-wise kernel is written once and runs at every width: the role the
/// BCL's (internal) <c>ISimdVector</c> plays for TensorPrimitives. Implemented by <see cref="Simd512"/>,
/// <see cref="Simd256"/>, <see cref="Simd128"/> and <see cref="Simd1"/> (one float). A kernel runs its body at one
/// vector width over the whole vectors of a row and at <see cref="Simd1"/> over the tail, so every element goes
/// through the same operations in the same order whatever its position and whatever the width: on CPUs with FMA the
/// paths give bitwise-identical results (the tests check it).
/// <para>Each implementation is a struct holding one vector; the JIT specializes generic code per struct type and
/// keeps the wrapped vector in a register, so there is nothing to pay for the abstraction.</para>
/// </summary>
internal interface ISimd<TSelf> where TSelf : struct, ISimd<TSelf>
{
    /// <summary>Floats per vector.</summary>
    static abstract int Count { get; }

    /// <summary>Every lane set to <paramref name="value"/>.</summary>
    static abstract TSelf Create(float value);

    /// <summary>Loads <see cref="Count"/> floats at <paramref name="source"/>[<paramref name="index"/>] without a bounds check.</summary>
    static abstract TSelf Load(ref readonly float source, nuint index);

    /// <summary>Stores <paramref name="value"/> at <paramref name="destination"/>[<paramref name="index"/>] without a bounds check.</summary>
    static abstract void Store(TSelf value, ref float destination, nuint index);

    /// <summary>Lane-wise sum.</summary>
    static abstract TSelf operator +(TSelf left, TSelf right);

    /// <summary>Lane-wise difference.</summary>
    static abstract TSelf operator -(TSelf left, TSelf right);

    /// <summary>Lane-wise product.</summary>
    static abstract TSelf operator *(TSelf left, TSelf right);

    /// <summary>Lane-wise quotient.</summary>
    static abstract TSelf operator /(TSelf left, TSelf right);

    /// <summary>Lane-wise negation.</summary>
    static abstract TSelf operator -(TSelf value);

    /// <summary>
    /// a·b + c, rounded once wherever the CPU has fused multiply-add (always on the Vector512 and Vector256 paths,
    /// which require it); otherwise multiplied, rounded, then added. Every width makes the same choice on a given CPU.
    /// </summary>
    static abstract TSelf MultiplyAdd(TSelf a, TSelf b, TSelf c);

    /// <summary>Lane-wise minimum.</summary>
    static abstract TSelf Min(TSelf left, TSelf right);

    /// <summary>Lane-wise maximum.</summary>
    static abstract TSelf Max(TSelf left, TSelf right);

    /// <summary>Rounds each lane to the nearest integer, ties to even.</summary>
    static abstract TSelf Round(TSelf value);

    /// <summary>Lane-wise square root.</summary>
    static abstract TSelf Sqrt(TSelf value);

    /// <summary>2ⁿ for lanes holding integers n in [−126, 127] (n + 127 written into the exponent field).</summary>
    static abstract TSelf PowerOfTwo(TSelf n);

    /// <summary>The sum of the lanes (horizontal reduction; the order of the additions is the width's own).</summary>
    static abstract float Sum(TSelf value);
}

/// <summary><see cref="Vector512{T}"/> of float (AVX-512F). Fused multiply-add.</summary>
internal readonly struct Simd512 : ISimd<Simd512>
{
    private readonly Vector512<float> _value;

    private Simd512(Vector512<float> value) => _value = value;

    public static int Count => Vector512<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512 Create(float value) => new(Vector512.Create(value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512 Load(ref readonly float source, nuint index) => new(Vector512.LoadUnsafe(in source, index));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Simd512 value, ref float destination, nuint index) => value._value.StoreUnsafe(ref destination, index);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512 operator +(Simd512 left, Simd512 right) => new(left._value + right._value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512 operator -(Simd512 left, Simd512 right) => new(left._value - right._value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512 operator *(Simd512 left, Simd512 right) => new(left._value * right._value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512 operator /(Simd512 left, Simd512 right) => new(left._value / right._value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512 operator -(Simd512 value) => new(-value._value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512 MultiplyAdd(Simd512 a, Simd512 b, Simd512 c) => new(Vector512.FusedMultiplyAdd(a._value, b._value, c._value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512 Min(Simd512 left, Simd512 right) => new(Vector512.Min(left._value, right._value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512 Max(Simd512 left, Simd512 right) => new(Vector512.Max(left._value, right._value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512 Round(Simd512 value) => new(Vector512.Round(value._value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512 Sqrt(Simd512 value) => new(Vector512.Sqrt(value._value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Simd512 value) => Vector512.Sum(value._value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512 PowerOfTwo(Simd512 n) =>
        new(((Vector512.ConvertToInt32(n._value) + Vector512.Create(127)) << 23).AsSingle());

    /// <summary>Lane <paramref name="index"/> (tests).</summary>
    public float this[int index] => _value[index];
}

/// <summary><see cref="Vector256{T}"/> of float (AVX2 + FMA3). Fused multiply-add.</summary>
internal readonly struct Simd256 : ISimd<Simd256>
{
    private readonly Vector256<float> _value;

    private Simd256(Vector256<float> value) => _value = value;

    public static int Count => Vector256<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256 Create(float value) => new(Vector256.Create(value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256 Load(ref readonly float source, nuint index) => new(Vector256.LoadUnsafe(in source, index));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Simd256 value, ref float destination, nuint index) => value._value.StoreUnsafe(ref destination, index);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256 operator +(Simd256 left, Simd256 right) => new(left._value + right._value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256 operator -(Simd256 left, Simd256 right) => new(left._value - right._value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256 operator *(Simd256 left, Simd256 right) => new(left._value * right._value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256 operator /(Simd256 left, Simd256 right) => new(left._value / right._value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256 operator -(Simd256 value) => new(-value._value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256 MultiplyAdd(Simd256 a, Simd256 b, Simd256 c) => new(Vector256.FusedMultiplyAdd(a._value, b._value, c._value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256 Min(Simd256 left, Simd256 right) => new(Vector256.Min(left._value, right._value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256 Max(Simd256 left, Simd256 right) => new(Vector256.Max(left._value, right._value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256 Round(Simd256 value) => new(Vector256.Round(value._value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256 Sqrt(Simd256 value) => new(Vector256.Sqrt(value._value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Simd256 value) => Vector256.Sum(value._value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256 PowerOfTwo(Simd256 n) =>
        new(((Vector256.ConvertToInt32(n._value) + Vector256.Create(127)) << 23).AsSingle());

    /// <summary>Lane <paramref name="index"/> (tests).</summary>
    public float this[int index] => _value[index];
}

/// <summary>
/// <see cref="Vector128{T}"/> of float: SSE on x64, AdvSimd on Arm64, software elsewhere. Multiply-add is fused where
/// the CPU has FMA (<see cref="Vector128.MultiplyAddEstimate(Vector128{float}, Vector128{float}, Vector128{float})"/>),
/// since an emulated fused multiply-add would be far slower than the whole kernel.
/// </summary>
internal readonly struct Simd128 : ISimd<Simd128>
{
    private readonly Vector128<float> _value;

    private Simd128(Vector128<float> value) => _value = value;

    public static int Count => Vector128<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd128 Create(float value) => new(Vector128.Create(value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd128 Load(ref readonly float source, nuint index) => new(Vector128.LoadUnsafe(in source, index));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Simd128 value, ref float destination, nuint index) => value._value.StoreUnsafe(ref destination, index);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd128 operator +(Simd128 left, Simd128 right) => new(left._value + right._value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd128 operator -(Simd128 left, Simd128 right) => new(left._value - right._value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd128 operator *(Simd128 left, Simd128 right) => new(left._value * right._value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd128 operator /(Simd128 left, Simd128 right) => new(left._value / right._value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd128 operator -(Simd128 value) => new(-value._value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd128 MultiplyAdd(Simd128 a, Simd128 b, Simd128 c) => new(Vector128.MultiplyAddEstimate(a._value, b._value, c._value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd128 Min(Simd128 left, Simd128 right) => new(Vector128.Min(left._value, right._value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd128 Max(Simd128 left, Simd128 right) => new(Vector128.Max(left._value, right._value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd128 Round(Simd128 value) => new(Vector128.Round(value._value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd128 Sqrt(Simd128 value) => new(Vector128.Sqrt(value._value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Simd128 value) => Vector128.Sum(value._value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd128 PowerOfTwo(Simd128 n) =>
        new(((Vector128.ConvertToInt32(n._value) + Vector128.Create(127)) << 23).AsSingle());

    /// <summary>Lane <paramref name="index"/> (tests).</summary>
    public float this[int index] => _value[index];
}

/// <summary>
/// One float: the tails of the vector kernels (and a whole row when it is shorter than a vector). The same operations as
/// the vector widths, lane for lane, so a tail element gets exactly the bits it would get inside a vector.
/// </summary>
internal readonly struct Simd1 : ISimd<Simd1>
{
    private readonly float _value;

    private Simd1(float value) => _value = value;

    public static int Count => 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd1 Create(float value) => new(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd1 Load(ref readonly float source, nuint index) => new(Unsafe.Add(ref Unsafe.AsRef(in source), index));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Simd1 value, ref float destination, nuint index) => Unsafe.Add(ref destination, index) = value._value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd1 operator +(Simd1 left, Simd1 right) => new(left._value + right._value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd1 operator -(Simd1 left, Simd1 right) => new(left._value - right._value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd1 operator *(Simd1 left, Simd1 right) => new(left._value * right._value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd1 operator /(Simd1 left, Simd1 right) => new(left._value / right._value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd1 operator -(Simd1 value) => new(-value._value);

    /// <remarks>Fused exactly where <see cref="Simd128.MultiplyAdd"/> is, and always on CPUs with FMA, which the wider paths require.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd1 MultiplyAdd(Simd1 a, Simd1 b, Simd1 c) => new(float.MultiplyAddEstimate(a._value, b._value, c._value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd1 Min(Simd1 left, Simd1 right) => new(MathF.Min(left._value, right._value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd1 Max(Simd1 left, Simd1 right) => new(MathF.Max(left._value, right._value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd1 Round(Simd1 value) => new(MathF.Round(value._value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd1 Sqrt(Simd1 value) => new(MathF.Sqrt(value._value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Simd1 value) => value._value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd1 PowerOfTwo(Simd1 n) => new(BitConverter.Int32BitsToSingle(((int)n._value + 127) << 23));

    /// <summary>The value.</summary>
    public float Value => _value;
}
