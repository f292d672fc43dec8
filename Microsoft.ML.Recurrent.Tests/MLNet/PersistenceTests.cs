using System.Buffers.Binary;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.Recurrent.Tests.MLNet;

/// <summary>
/// Loading is bounded and corruption is never silent: the integrity envelope covers every byte of our entries, a
/// hostile file that passes it (the hash recomputed) still cannot make the reader allocate what the file does not
/// hold, errors name the entry and field in printable text, a vocabulary that differs from training's is refused, and
/// a loaded model holds no training state.
/// </summary>
[TestClass]
public sealed class PersistenceTests
{
    public TestContext TestContext { get; set; } = null!;

    private static readonly Lazy<(MLContext Ml, byte[] Zip, IDataView Rows)> Saved = new(() =>
    {
        var ml = new MLContext(seed: 1);
        var rows = ml.Data.LoadFromEnumerable(TestData.Topic(120, 1));
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(TestData.TokenKeys(ml))
            .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
            {
                EmbeddingSize = 6, HiddenSize = 5, NumberOfEpochs = 1, MinimumTokenFrequency = 2,
            }))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
            .Fit(rows);
        using var stream = new MemoryStream();
        ml.Model.Save(model, rows.Schema, stream);
        return (ml, stream.ToArray(), ml.Data.TakeRows(rows, 20));
    });

    /// <summary>The entries of a zip, by name.</summary>
    private static Dictionary<string, byte[]> Entries(byte[] zip)
    {
        using var archive = new ZipArchive(new MemoryStream(zip), ZipArchiveMode.Read);
        return archive.Entries.ToDictionary(e => e.FullName, e =>
        {
            using var s = e.Open();
            using var m = new MemoryStream();
            s.CopyTo(m);
            return m.ToArray();
        });
    }

    private static byte[] Zip(Dictionary<string, byte[]> entries)
    {
        using var memory = new MemoryStream();
        using (var archive = new ZipArchive(memory, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, bytes) in entries)
            {
                using var s = archive.CreateEntry(name).Open();
                s.Write(bytes);
            }
        return memory.ToArray();
    }

    /// <summary>The name of our classifier's entry and where its payload lies (ML.NET header: FpModel at 0x10; envelope: 4-byte length first).</summary>
    private static (string Name, int Start, int Length) Classifier(Dictionary<string, byte[]> entries)
    {
        var (name, bytes) = entries.Single(e => e.Value.Length > 0x48 && Encoding.ASCII.GetString(e.Value, 0x40, 8) == "RNNMCLAS");
        int fpModel = (int)BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(0x10));
        return (name, fpModel + 4, BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(fpModel)));
    }

    /// <summary>Offsets of the payload's fields (see RecurrentModel.Write), relative to the payload start.</summary>
    private static Dictionary<string, int> Fields(byte[] payload)
    {
        var f = new Dictionary<string, int> { ["objective"] = 0 };
        int at = 4 + 1 + payload[4];                               // column name: 1-byte length (short name) + bytes
        foreach (var name in new[] { "key count", "features per step", "maximum length", "batch size", "threads", "token map length" })
        {
            f[name] = at;
            at += 4;
        }
        int mapLength = BinaryPrimitives.ReadInt32LittleEndian(payload.AsSpan(f["token map length"]));
        f["token map"] = at;
        at += 4 * mapLength;
        f["vocabulary hash"] = at + 1;
        at += 1 + 32;
        f["character input flag"] = at;
        at += 1;                                                   // no character input
        f["wide input flag"] = at;
        at += 1;                                                   // no wide input
        f["labels"] = at;
        int network = payload.AsSpan().IndexOf("MLRNNET\0"u8);
        f["cell"] = network + 12;
        f["vocabulary size"] = network + 16;
        f["input size"] = network + 20;
        f["hidden size"] = network + 24;
        f["layers"] = network + 28;
        f["pooling"] = network + 37;
        f["weights"] = payload.Length - 64;
        return f;
    }

    /// <summary>Loads and scores; returns the exception chain's innermost message, or null when it loaded with identical scores.</summary>
    private string? LoadAndScore(byte[] zip, out long allocated)
    {
        var (ml, original, rows) = Saved.Value;
        string expected = Scorer.ScoreDump.Dump(ml.Model.Load(new MemoryStream(original), out _).Transform(rows));
        long before = GC.GetAllocatedBytesForCurrentThread();
        try
        {
            string actual = Scorer.ScoreDump.Dump(ml.Model.Load(new MemoryStream(zip), out _).Transform(rows));
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.AreEqual(expected, actual, "a mutant loaded with different predictions");
            return null;
        }
        catch (Exception e) when (e is not AssertFailedException)
        {
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            var inner = e.GetBaseException();
            Assert.IsInstanceOfType<InvalidDataException>(inner, $"{inner.GetType().Name}: {inner.Message}");
            Assert.IsFalse(inner.Message.Any(c => char.IsControl(c) || char.IsSurrogate(c) || c == '\uFFFD'), $"unprintable message: {inner.Message}");
            return inner.Message;
        }
    }

    [TestMethod]
    public void AChangedByteAnywhereInOurEntryIsDetected()
    {
        var entries = Entries(Saved.Value.Zip);
        var (name, start, length) = Classifier(entries);
        var payload = entries[name].AsSpan(start, length).ToArray();
        // One flip in each part the version-1 format left unchecked (options, token map, class names) and in the weights.
        foreach (var (field, offset) in Fields(payload))
        {
            var mutated = new Dictionary<string, byte[]>(entries) { [name] = (byte[])entries[name].Clone() };
            mutated[name][start + offset] ^= 0x04;
            string? message = LoadAndScore(Zip(mutated), out _);
            TestContext.WriteLine($"{field}: {message}");
            Assert.IsNotNull(message, $"a flip in the {field} was not detected");
            StringAssert.Contains(message, "SHA-256");
            StringAssert.Contains(message, name[..name.LastIndexOf('/')]);
        }
    }

    [TestMethod]
    public void HostileHeadersWithAValidHashFailCheaply()
    {
        var entries = Entries(Saved.Value.Zip);
        var (name, start, length) = Classifier(entries);
        var fields = Fields(entries[name].AsSpan(start, length).ToArray());
        var cases = new (string Field, int Value, string Fragment)[]
        {
            ("token map length", int.MaxValue, "token map length"),
            ("token map length", 0x10000000, "token map length"),
            ("key count", int.MaxValue - 1, "token map length"),
            ("batch size", 0, "scoring batch size"),
            ("batch size", int.MaxValue, "scoring batch size"),
            ("threads", -1, "number of threads"),
            ("maximum length", -5, "maximum sequence length"),
            ("objective", 7, "objective"),
            ("cell", 9, "cell kind"),
            ("hidden size", 1 << 26, "network header"),
            ("vocabulary size", 1 << 26, "network header"),
            ("layers", 64, "network header"),
            ("layers", 65, "number of layers"),
            ("input size", 0, "input size"),
            ("labels", 0x7F, "label values flag"),
        };
        foreach (var (field, value, fragment) in cases)
        {
            var bytes = (byte[])entries[name].Clone();
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(start + fields[field]), value);
            SHA256.HashData(bytes.AsSpan(start, length), bytes.AsSpan(start + length, 32)); // a valid hash: only the reader's checks stand
            string? message = LoadAndScore(Zip(new Dictionary<string, byte[]>(entries) { [name] = bytes }), out long allocated);
            TestContext.WriteLine($"{field} = {value}: {allocated / 1024:N0} KB allocated: {message}");
            Assert.IsNotNull(message, $"{field} = {value} loaded");
            StringAssert.Contains(message, fragment);
            Assert.IsTrue(allocated < 16 << 20, $"{field} = {value}: {allocated:N0} bytes allocated");
        }
    }

    [TestMethod]
    public void ScoringAColumnWhoseVocabularyDiffersIsRefusedEvenWithTheSameKeyCount()
    {
        var (ml, zip, rows) = Saved.Value;
        var model = (TransformerChain<ITransformer>)ml.Model.Load(new MemoryStream(zip), out _);
        var classifier = model.OfType<RecurrentTransformerBase>().Single();
        // The same words in another order: MapValueToKey gives the same key count, but other tokens behind the keys.
        var list = TestData.Topic(120, 1);
        list.Reverse();
        var other = ml.Transforms.Conversion.MapValueToKey("Label").Append(TestData.TokenKeys(ml)).Fit(ml.Data.LoadFromEnumerable(list)).Transform(rows);
        var trained = model.Take(3).Aggregate(rows, (view, t) => t.Transform(view)); // the fitted featurizers
        Assert.AreEqual(trained.Schema["Features"].Type, other.Schema["Features"].Type, "same key count");
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => classifier.Transform(other));
        TestContext.WriteLine(e.Message);
        StringAssert.Contains(e.Message, "different vocabulary");
        StringAssert.Contains(e.Message, "'Features'");
    }

    [TestMethod]
    public void ACorruptedVocabularyEntryOfMLNetIsCaughtWhenTheModelBinds()
    {
        var (ml, zip, rows) = Saved.Value;
        var entries = Entries(zip);
        // The featurizer's vocabulary (ML.NET's own entry, Vocabulary/Model.key, whose string table ML.NET does not
        // check): swap two letters of one word, stored as UTF-16.
        byte[] word = Encoding.Unicode.GetBytes("market"), swapped = Encoding.Unicode.GetBytes("makret");
        var (termsName, terms) = entries.Where(e => e.Key.EndsWith("Vocabulary/Model.key", StringComparison.Ordinal))
            .Single(e => e.Value.AsSpan().IndexOf(word) >= 0);
        int at = terms.AsSpan().IndexOf(word);
        swapped.CopyTo(terms, at);
        var loaded = ml.Model.Load(new MemoryStream(Zip(entries)), out _);
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => loaded.Transform(rows));
        TestContext.WriteLine($"{termsName}: {e.Message}");
        StringAssert.Contains(e.Message, "vocabulary entry may be corrupted");
    }

    [TestMethod]
    public void FittedAndLoadedModelsHoldNoTrainingState()
    {
        var (ml, zip, rows) = Saved.Value;
        var fitted = ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options { EmbeddingSize = 4, HiddenSize = 4, NumberOfEpochs = 1 })
            .Fit(ml.Transforms.Conversion.MapValueToKey("Label").Append(TestData.TokenKeys(ml)).Fit(rows).Transform(rows));
        var loaded = ((TransformerChain<ITransformer>)ml.Model.Load(new MemoryStream(zip), out _)).OfType<RecurrentTransformerBase>().Single();
        foreach (var (what, model) in new[] { ("fitted", fitted.Model), ("loaded", loaded.Model) })
        {
            Assert.AreEqual(0, model.Network.Parameters.Gradients.Length, $"the {what} model keeps a gradient buffer");
            Assert.IsTrue(model.Network.WeightsFrozen, $"the {what} model's network is not inference-only");
            Assert.AreEqual(0, model.Network.EstimatedWorkspaceBytes, $"the {what} model's network has run (it holds activations)");
        }
    }

    [TestMethod]
    public void WhatACallerCatches()
    {
        var entries = Entries(Saved.Value.Zip);
        var (name, start, _) = Classifier(entries);
        entries[name][start + 100] ^= 1;
        var e = Assert.Throws<Exception>(() => Saved.Value.Ml.Model.Load(new MemoryStream(Zip(entries)), out _));
        var chain = new List<string>();
        for (var x = e; x is not null; x = x.InnerException) chain.Add(x.GetType().Name);
        TestContext.WriteLine(string.Join(" → ", chain) + ": " + e.GetBaseException().Message);
        // docs/design/persistence.md: ML.NET wraps a loader's exception (TargetInvocationException, and sometimes
        // InvalidOperationException around it); the innermost, GetBaseException(), is ours.
        Assert.IsInstanceOfType<InvalidDataException>(e.GetBaseException());
    }
}
