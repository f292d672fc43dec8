using System.Diagnostics;
using System.Numerics.Tensors;

namespace LanguageModel;

/// <summary>
/// One-core read bandwidth (<c>--bandwidth</c>): the median time of summing a float buffer (TensorPrimitives.Sum, the
/// widest vectors the CPU has) that is as large as a model's weights — what generating one character reads — and one
/// far larger than any cache, which bounds sampling speed from a model that does not fit the caches.
/// </summary>
internal static class Bandwidth
{
    /// <summary>
    /// Bytes of the weights one generated character reads in the docs' sampling model (embedding 64, 2 LSTM layers of
    /// 512, 65 characters): the embedding row is negligible; both layers' W_ih and W_hh with biases, and the decoder.
    /// </summary>
    public static long WeightBytes()
    {
        const long e = 64, h = 512, v = 65;
        long layer0 = 4 * h * (e + h) + 8 * h, layer1 = 4 * h * (h + h) + 8 * h, decoder = v * h + v;
        return (layer0 + layer1 + decoder) * sizeof(float);
    }

    /// <summary>Prints the median GB/s for each buffer size in bytes; returns them.</summary>
    public static double[] Run(params long[] sizes)
    {
        var results = new double[sizes.Length];
        for (int s = 0; s < sizes.Length; s++)
        {
            var buffer = new float[sizes[s] / sizeof(float)];
            for (int i = 0; i < buffer.Length; i++) buffer[i] = i & 7;     // touch every page
            int repeats = (int)Math.Clamp((4L << 30) / sizes[s], 3, 400);  // about 4 GB read per trial
            var times = new List<double>();
            float sink = 0;
            for (int trial = 0; trial < 7; trial++)
            {
                var clock = Stopwatch.StartNew();
                for (int r = 0; r < repeats; r++) sink += TensorPrimitives.Sum<float>(buffer);
                times.Add(clock.Elapsed.TotalSeconds / repeats);
            }
            times.Sort();
            results[s] = sizes[s] / times[times.Count / 2] / 1e9;
            Console.WriteLine($"  read bandwidth, one core, {sizes[s] / 1e6:F1} MB buffer: {results[s]:F1} GB/s (median of 7; checksum {sink:E1})");
        }
        return results;
    }
}
