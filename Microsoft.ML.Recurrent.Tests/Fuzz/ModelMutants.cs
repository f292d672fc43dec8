using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Compression;
using System.Security.Cryptography;
using Microsoft.ML;

namespace Microsoft.ML.Recurrent.Tests.Fuzz;

/// <summary>How a mutant was made from a saved model zip.</summary>
public enum MutantKind
{
    /// <summary>1–4 bytes of the zip file flipped (the zip's own CRC usually catches it).</summary>
    ZipByteFlip,
    /// <summary>The zip file cut short.</summary>
    ZipTruncation,
    /// <summary>1–4 bytes of one of our entries flipped, re-zipped (the zip is valid again).</summary>
    EntryByteFlip,
    /// <summary>One of our entries cut short, re-zipped.</summary>
    EntryTruncation,
    /// <summary>An integer of ML.NET's header of one of our entries set to an extreme value, re-zipped.</summary>
    EntryHeaderExtreme,
    /// <summary>Four bytes of our model data set to an extreme integer, re-zipped.</summary>
    EntryFieldExtreme,
    /// <summary>
    /// As <see cref="EntryFieldExtreme"/>, and the entry's SHA-256 recomputed: a hostile file crafted to pass the
    /// integrity check. It must still fail cleanly and cheaply, or load as a (different) valid model.
    /// </summary>
    EntryFieldExtremeResealed,
    /// <summary>1–4 bytes of an ML.NET entry (featurizers, vocabulary) flipped, re-zipped.</summary>
    ForeignEntryByteFlip,
}

/// <summary>What loading and scoring a mutant did.</summary>
public enum MutantOutcome
{
    /// <summary>Load or bind failed with a clean exception.</summary>
    Rejected,
    /// <summary>Loaded; scores bitwise identical to the original's.</summary>
    Identical,
    /// <summary>Loaded; different scores. Acceptable only for resealed or foreign mutants, and for entries without an integrity check (version 1).</summary>
    Different,
    /// <summary>Failed with an exception that signals a bug (null reference, index out of range, overflow, out of memory, …).</summary>
    Unclean,
    /// <summary>Did not finish within the time limit (the harness stops waiting; the work is abandoned).</summary>
    Hang,
}

/// <summary>One mutant's result.</summary>
public sealed record MutantResult(int Index, MutantKind Kind, string Entry, string Change, MutantOutcome Outcome, long AllocatedBytes,
    TimeSpan Elapsed, string? Message, string? Chain = null);

/// <summary>
/// Seeded mutants of a saved model zip (byte flips, truncations, header and field extremes inside valid archives) and
/// the harness that loads and scores each one. Shared by the fuzz test and the <c>bench/ModelFuzz</c> command.
/// </summary>
public sealed class ModelMutants
{
    private static readonly string[] OurSignatures = ["RNNMCLAS", "RNNBINCL", "RNNREGRS", "RNNTAGGR", "RNNFEATR", "RNNLANGM", "RNNFRCST", "TOK2IDS "];

    /// <summary>The components that had the integrity envelope from their first version (the others from 0x00010002).</summary>
    private static readonly string[] EnvelopedFromTheStart = ["RNNLANGM", "RNNFRCST"];
    private static readonly long[] Extremes = [0, -1, 1, 2, int.MaxValue, int.MinValue, int.MaxValue - 1, 1 << 16, 1 << 20, 1 << 26, 1 << 30, 255, 1 << 24];
    private const int HeaderSize = 256; // ML.NET's ModelHeader

    private readonly byte[] _zip;
    private readonly List<(string Name, byte[] Bytes)> _entries = new();
    private readonly List<int> _ours = new(), _foreign = new();

    /// <summary>Name for reports.</summary>
    public string Name { get; }

    /// <summary>Whether our entries in this zip carry the SHA-256 envelope (model version 0x00010002 and later).</summary>
    public bool Enveloped { get; }

    /// <param name="name">Name for reports.</param>
    /// <param name="zip">The saved model.</param>
    /// <param name="mutateSchema">
    /// Whether ML.NET's <c>Schema</c> entry (the saved input schema) may be mutated. Off in the test suite: ML.NET 5.0.1
    /// can hang reading a corrupted one (a finding the long run reports), and an abandoned hung load keeps a core busy.
    /// </param>
    public ModelMutants(string name, byte[] zip, bool mutateSchema = true)
    {
        Name = name;
        _zip = zip;
        using var archive = new ZipArchive(new MemoryStream(zip), ZipArchiveMode.Read);
        foreach (var entry in archive.Entries)
        {
            using var stream = entry.Open();
            using var memory = new MemoryStream();
            stream.CopyTo(memory);
            var bytes = memory.ToArray();
            if (IsOurs(bytes)) _ours.Add(_entries.Count);
            else if (mutateSchema || entry.FullName != "Schema") _foreign.Add(_entries.Count);
            _entries.Add((entry.FullName, bytes));
        }
        if (_ours.Count == 0) throw new ArgumentException("The zip holds no entry of Microsoft.ML.Recurrent.", nameof(zip));
        Enveloped = _ours.All(i => BinaryPrimitives.ReadUInt32LittleEndian(_entries[i].Bytes.AsSpan(0x48)) >= 0x00010002
            || EnvelopedFromTheStart.Contains(System.Text.Encoding.ASCII.GetString(_entries[i].Bytes, 0x40, 8).TrimEnd('\0')));
    }

    /// <summary>Whether the entry's model signature (ML.NET's header, 8 ASCII bytes at 0x40; spaces are stored as 0) is one of ours.</summary>
    private static bool IsOurs(byte[] bytes) =>
        bytes.Length >= HeaderSize && OurSignatures.Any(s => System.Text.Encoding.ASCII.GetString(bytes, 0x40, 8).TrimEnd('\0') == s.TrimEnd());

    /// <summary>Mutant number <paramref name="index"/> for <paramref name="seed"/>: the same pair always gives the same bytes.</summary>
    public (MutantKind Kind, string Entry, string Change, byte[] Zip) Make(int seed, int index)
    {
        // A stable seed (HashCode is randomized per process): the same (seed, index, source) gives the same mutant in any run.
        var random = new Random(unchecked(seed * 1_000_003 + index * 7919 + Name.Aggregate(17, (h, c) => h * 31 + c)));
        var kinds = Enum.GetValues<MutantKind>();
        var kind = kinds[random.Next(kinds.Length)];
        if (kind == MutantKind.ForeignEntryByteFlip && _foreign.Count == 0) kind = MutantKind.EntryByteFlip;
        if (kind == MutantKind.EntryFieldExtremeResealed && !Enveloped) kind = MutantKind.EntryFieldExtreme;
        switch (kind)
        {
            case MutantKind.ZipByteFlip:
            {
                var bytes = (byte[])_zip.Clone();
                string change = Flip(bytes, 0, bytes.Length, random);
                return (kind, "(zip)", change, bytes);
            }
            case MutantKind.ZipTruncation:
            {
                int length = random.Next(_zip.Length);
                return (kind, "(zip)", $"cut to {length} of {_zip.Length} bytes", _zip[..length]);
            }
            case MutantKind.ForeignEntryByteFlip:
            {
                int e = _foreign[random.Next(_foreign.Count)];
                var bytes = (byte[])_entries[e].Bytes.Clone();
                string change = Flip(bytes, 0, bytes.Length, random);
                return (kind, _entries[e].Name, change, Rezip(e, bytes));
            }
        }
        int ours = _ours[random.Next(_ours.Count)];
        var entry = (byte[])_entries[ours].Bytes.Clone();
        string name = _entries[ours].Name;
        long fpModel = BinaryPrimitives.ReadInt64LittleEndian(entry.AsSpan(0x10)), cbModel = BinaryPrimitives.ReadInt64LittleEndian(entry.AsSpan(0x18));
        switch (kind)
        {
            case MutantKind.EntryByteFlip:
                return (kind, name, Flip(entry, 0, entry.Length, random), Rezip(ours, entry));
            case MutantKind.EntryTruncation:
            {
                int length = random.Next(entry.Length);
                return (kind, name, $"cut to {length} of {entry.Length} bytes", Rezip(ours, entry[..length]));
            }
            case MutantKind.EntryHeaderExtreme:
            {
                // The 8-byte offsets and sizes at 0x10..0x3F, or the version words at 0x08, 0x0C, 0x48, 0x4C.
                int[] offsets = [0x08, 0x0C, 0x10, 0x18, 0x20, 0x28, 0x30, 0x38, 0x48, 0x4C];
                int at = offsets[random.Next(offsets.Length)];
                long value = Extreme(random, at >= 0x10 && at < 0x40 ? BinaryPrimitives.ReadInt64LittleEndian(entry.AsSpan(at)) : BinaryPrimitives.ReadUInt32LittleEndian(entry.AsSpan(at)));
                if (at >= 0x10 && at < 0x40) BinaryPrimitives.WriteInt64LittleEndian(entry.AsSpan(at), value);
                else BinaryPrimitives.WriteUInt32LittleEndian(entry.AsSpan(at), (uint)value);
                return (kind, name, $"header field at 0x{at:X2} set to {value}", Rezip(ours, entry));
            }
            default:
            {
                // A 4-byte field of our model data (inside the payload of the envelope when there is one).
                int start = (int)fpModel + (Enveloped ? 4 : 0), end = (int)(fpModel + cbModel) - (Enveloped ? 32 : 0);
                int at = start + random.Next(Math.Max(1, end - start - 4));
                long value = Extreme(random, BinaryPrimitives.ReadInt32LittleEndian(entry.AsSpan(at)));
                BinaryPrimitives.WriteInt32LittleEndian(entry.AsSpan(at), (int)value);
                if (kind == MutantKind.EntryFieldExtremeResealed)
                    SHA256.HashData(entry.AsSpan(start, end - start), entry.AsSpan(end, 32));
                return (kind, name, $"int32 at payload offset {at - start} set to {(int)value}", Rezip(ours, entry));
            }
        }
    }

    private static long Extreme(Random random, long current) =>
        random.Next(4) == 0 ? current + random.Next(-3, 4) : Extremes[random.Next(Extremes.Length)];

    private static string Flip(byte[] bytes, int start, int end, Random random)
    {
        int count = 1 + random.Next(4);
        var at = new List<int>();
        for (int i = 0; i < count; i++)
        {
            int p = start + random.Next(end - start);
            bytes[p] ^= (byte)(1 + random.Next(255));
            at.Add(p);
        }
        return $"flipped bytes at {string.Join(", ", at)}";
    }

    private byte[] Rezip(int replaced, byte[] bytes)
    {
        using var memory = new MemoryStream();
        using (var archive = new ZipArchive(memory, ZipArchiveMode.Create, leaveOpen: true))
        {
            for (int i = 0; i < _entries.Count; i++)
            {
                using var stream = archive.CreateEntry(_entries[i].Name, CompressionLevel.Fastest).Open();
                stream.Write(i == replaced ? bytes : _entries[i].Bytes);
            }
        }
        return memory.ToArray();
    }

    /// <summary>
    /// Loads <paramref name="zip"/>, scores <paramref name="input"/> and compares with <paramref name="expected"/>
    /// (the original's <see cref="Scorer.ScoreDump"/>), measuring what the load and scoring allocated on this thread.
    /// </summary>
    public static (MutantOutcome Outcome, long Allocated, TimeSpan Elapsed, string? Message, string? Chain) Run(MLContext ml, byte[] zip, IDataView input, string expected)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        MutantOutcome outcome;
        string? message = null, chain = null;
        try
        {
            var model = ml.Model.Load(new MemoryStream(zip), out _);
            string actual = Scorer.ScoreDump.Dump(model.Transform(input));
            outcome = actual == expected ? MutantOutcome.Identical : MutantOutcome.Different;
        }
        catch (Exception e)
        {
            var inner = e.GetBaseException();
            message = $"{inner.GetType().Name}: {inner.Message}";
            var types = new List<string>();
            for (var x = e; x is not null; x = x.InnerException) types.Add(x.GetType().Name);
            chain = string.Join(" → ", types);
            outcome = IsClean(inner) ? MutantOutcome.Rejected : MutantOutcome.Unclean;
            if (outcome == MutantOutcome.Unclean) message += "\n" + inner.StackTrace;
        }
        return (outcome, GC.GetAllocatedBytesForCurrentThread() - before, clock.Elapsed, message, chain);
    }

    /// <summary>
    /// A deliberate refusal: a decoding or I/O error (ours are InvalidDataException, ML.NET's FormatException, the zip
    /// reader's IOException; a corrupted assembly name in ML.NET's header is a FileNotFoundException), or an
    /// InvalidOperationException/ArgumentException raised by ML.NET's or our own checks. Not clean: exceptions that
    /// come from a missing check (null reference, index or argument out of range inside the runtime, overflow,
    /// invalid cast, out of memory).
    /// </summary>
    public static bool IsClean(Exception inner)
    {
        if (inner is NullReferenceException or IndexOutOfRangeException or OverflowException or InvalidCastException
            or OutOfMemoryException or DivideByZeroException or AccessViolationException or InsufficientExecutionStackException)
            return false;
        if (inner is InvalidDataException or FormatException or EndOfStreamException or IOException)
            return true;
        // ML.NET loads each component's assembly by the name in the entry's header: a corrupted name cannot be found.
        if (inner is System.Globalization.CultureNotFoundException)
            return true;
        // ML.NET loads each component's assembly by the name in its entry's header; a corrupted name is refused there.
        if (inner.StackTrace?.Contains("ModelLoadContext.EnsureLoaderAssemblyIsRegistered", StringComparison.Ordinal) == true)
            return true;
        if (inner is InvalidOperationException or ArgumentException or NotSupportedException or KeyNotFoundException)
        {
            // Raised by a check in ML.NET or in this library, not by the runtime's own argument validation deep inside a call.
            var top = new StackTrace(inner).GetFrame(0)?.GetMethod()?.DeclaringType?.Assembly.GetName().Name ?? "";
            return top.StartsWith("Microsoft.ML", StringComparison.Ordinal);
        }
        return false;
    }
}
