using System.Numerics;

namespace Microsoft.ML.Recurrent.Core;

/// <summary>
/// A small, fully specified pseudo-random generator (xoshiro128** seeded through SplitMix64) so that the same seed
/// gives bitwise-identical initial weights, dropout masks and shuffles on every machine and .NET version —
/// <see cref="System.Random"/> makes no such promise.
/// </summary>
internal sealed class SeededRandom
{
    private uint _s0, _s1, _s2, _s3;

    /// <summary>Creates a generator whose whole stream is determined by <paramref name="seed"/>.</summary>
    public SeededRandom(long seed)
    {
        ulong x = unchecked((ulong)seed);
        ulong a = SplitMix64(ref x), b = SplitMix64(ref x);
        _s0 = (uint)a; _s1 = (uint)(a >> 32); _s2 = (uint)b; _s3 = (uint)(b >> 32);
        if ((_s0 | _s1 | _s2 | _s3) == 0)
            _s0 = 1; // the all-zero state is the one fixed point of xoshiro
    }

    private static ulong SplitMix64(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Next 32 random bits.</summary>
    public uint NextUInt32()
    {
        uint result = BitOperations.RotateLeft(_s1 * 5, 7) * 9;
        uint t = _s1 << 9;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3;
        _s2 ^= t;
        _s3 = BitOperations.RotateLeft(_s3, 11);
        return result;
    }

    /// <summary>Uniform float in [0, 1) with 24 random bits.</summary>
    public float NextSingle() => (NextUInt32() >> 8) * (1.0f / (1 << 24));

    /// <summary>Uniform integer in [0, <paramref name="maxExclusive"/>) (Lemire's multiply-shift, bias below 2⁻³²·n).</summary>
    public int NextInt(int maxExclusive) => (int)(((ulong)NextUInt32() * (uint)maxExclusive) >> 32);

    /// <summary>Fills <paramref name="destination"/> with U(<paramref name="low"/>, <paramref name="high"/>).</summary>
    public void FillUniform(Span<float> destination, float low, float high)
    {
        float range = high - low;
        for (int i = 0; i < destination.Length; i++)
            destination[i] = low + range * NextSingle();
    }

    /// <summary>Fills <paramref name="destination"/> with N(0, <paramref name="std"/>²) by Box–Muller.</summary>
    public void FillNormal(Span<float> destination, float std)
    {
        for (int i = 0; i < destination.Length; i += 2)
        {
            double u1 = 1.0 - NextSingle(); // (0, 1]: log is finite
            double u2 = NextSingle();
            double r = Math.Sqrt(-2.0 * Math.Log(u1)) * std;
            destination[i] = (float)(r * Math.Cos(2 * Math.PI * u2));
            if (i + 1 < destination.Length)
                destination[i + 1] = (float)(r * Math.Sin(2 * Math.PI * u2));
        }
    }

    /// <summary>Shuffles <paramref name="items"/> in place (Fisher–Yates).</summary>
    public void Shuffle(Span<int> items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}
