using System.Diagnostics;
using Microsoft.ML.Recurrent.Interop;
using Microsoft.ML.Recurrent.Model;

namespace Microsoft.ML.Recurrent.Tests.Interop;

/// <summary>
/// 4,000 seeded mutants of two valid safetensors files — one written by this library (sorted, padded, with metadata),
/// one by libtorch (TorchSharp.PyBridge: unpadded, no metadata) — are read and imported into the network they describe:
/// byte flips, truncations, appended bytes, header lengths up to 2^64 − 1, hostile numbers, dtypes, names and structure,
/// and swapped offsets. Each must be refused with an <see cref="InvalidDataException"/> or read identically; a
/// different result is allowed only where the file is still a valid safetensors file (a flipped data byte — the format
/// has no checksum — or two tensors' offsets swapped). None may throw anything else or allocate more than 16 MB.
/// </summary>
[TestClass]
public sealed class SafetensorsFuzzTests
{
    private const int Mutants = 4_000;
    private const long AllocationLimit = 16L << 20;

    public TestContext TestContext { get; set; } = null!;

    private enum Outcome { Rejected, Identical, Different, Unclean }

    [TestMethod]
    public void EveryMutantIsRejectedCleanlyOrReadIdentically()
    {
        var sources = new List<(SafetensorsMutants Mutants, NetworkConfig Config, SafetensorsFile Original)>();
        foreach (var (tag, file) in new[] { ("lstm_bi_l2", "ours_file"), ("gru_bi_l1", "torch_file") })
        {
            var fixture = SafetensorsTorchParityTests.Load(tag);
            string path = fixture.File(file);
            sources.Add((new SafetensorsMutants(Path.GetFileName(path), File.ReadAllBytes(path)), fixture.Config, SafetensorsReader.Read(path)));
        }

        var counts = new Dictionary<(SafetensorsMutantKind, Outcome), int>();
        var violations = new List<string>();
        var examples = new Dictionary<SafetensorsMutantKind, string>();
        long largest = 0;
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < Mutants; i++)
        {
            var (mutants, config, original) = sources[i % sources.Count];
            var (kind, change, bytes) = mutants.Make(seed: 20260501, i);
            long before = GC.GetAllocatedBytesForCurrentThread();
            Outcome outcome;
            string? message = null;
            try
            {
                var file = SafetensorsReader.Read(new MemoryStream(bytes), mutants.Name);
                bool identical = Same(original, file);
                outcome = identical ? Outcome.Identical : Outcome.Different;
                NetworkTensors.Import(new RecurrentNetwork(config), file);
            }
            catch (InvalidDataException e)
            {
                outcome = Outcome.Rejected;
                message = e.Message;
            }
            catch (Exception e)
            {
                outcome = Outcome.Unclean;
                message = $"{e.GetType().Name}: {e.Message}";
            }
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            largest = Math.Max(largest, allocated);
            counts[(kind, outcome)] = counts.GetValueOrDefault((kind, outcome)) + 1;
            if (message is not null && outcome == Outcome.Rejected) examples.TryAdd(kind, message);
            bool mayDiffer = kind is SafetensorsMutantKind.DataByteFlip or SafetensorsMutantKind.SwappedOffsets;
            if (outcome == Outcome.Unclean || outcome == Outcome.Different && !mayDiffer || allocated > AllocationLimit)
                violations.Add($"mutant {i} of {mutants.Name} ({kind}: {change}): {outcome}, {allocated:N0} bytes allocated{(message is null ? "" : ": " + message)}");
        }

        foreach (var kind in Enum.GetValues<SafetensorsMutantKind>())
            TestContext.WriteLine($"{kind,-18} " + string.Join(", ", Enum.GetValues<Outcome>().Select(o => $"{o} {counts.GetValueOrDefault((kind, o))}")));
        foreach (var (kind, message) in examples)
            TestContext.WriteLine($"e.g. {kind}: {message}");
        TestContext.WriteLine($"{Mutants:N0} mutants in {clock.Elapsed.TotalSeconds:F1} s; largest allocation {largest:N0} bytes");
        Assert.AreEqual(0, violations.Count, string.Join("\n", violations.Take(20)));
        // The generator reaches every kind, and the legal rearrangement is read, not refused.
        foreach (var kind in Enum.GetValues<SafetensorsMutantKind>())
            Assert.IsTrue(Enum.GetValues<Outcome>().Sum(o => counts.GetValueOrDefault((kind, o))) > 100, $"{kind} was hardly generated");
        Assert.IsTrue(counts.GetValueOrDefault((SafetensorsMutantKind.SwappedOffsets, Outcome.Different)) > 0, "swapped offsets are a valid file");
    }

    /// <summary>Same tensors: names, shapes and values bit for bit (metadata aside).</summary>
    private static bool Same(SafetensorsFile a, SafetensorsFile b) =>
        a.Tensors.Count == b.Tensors.Count && a.Tensors.All(p => b.Tensors.TryGetValue(p.Key, out var t)
            && p.Value.Shape.AsSpan().SequenceEqual(t.Shape)
            && System.Runtime.InteropServices.MemoryMarshal.AsBytes(p.Value.Values.AsSpan()).SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.AsBytes(t.Values.AsSpan())));
}
