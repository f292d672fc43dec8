using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.ObjectPool;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.Recurrent.Tests.MLNet;

/// <summary>
/// Every concurrent or reordered way of scoring gives exactly (bitwise) the scores of one serial pass: engines on 8
/// threads, a cursor set of 4, shuffled cursors, and a pool of engines shared through dependency injection.
/// </summary>
[TestClass]
public sealed class ConcurrencyTests
{
    public TestContext TestContext { get; set; } = null!;

    public sealed class Prediction
    {
        public string PredictedLabel { get; set; } = "";
        public float[] Score { get; set; } = [];
    }

    private sealed record Fixture(MLContext Ml, ITransformer Model, List<TextRow> Rows, float[][] Serial, string Path);

    /// <summary>A bidirectional 2-layer model (both cores per batch) and the serial scores of 4,000 rows, made once.</summary>
    private static readonly Lazy<Fixture> Shared = new(() =>
    {
        var ml = new MLContext(seed: 1);
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(TestData.TokenKeys(ml))
            .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
            {
                EmbeddingSize = 8, HiddenSize = 8, NumberOfLayers = 2, NumberOfEpochs = 1, BatchSize = 16,
            }))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
            .Fit(ml.Data.LoadFromEnumerable(TestData.Topic(200, 1)));
        var rows = TestData.Topic(4000, 2);
        rows[17].Text = "";                           // an empty row among them
        var engine = ml.Model.CreatePredictionEngine<TextRow, Prediction>(model);
        var serial = rows.Select(r => engine.Predict(r).Score.ToArray()).ToArray();
        string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"rnn-concurrency-{Guid.NewGuid():N}.zip");
        ml.Model.Save(model, ml.Data.LoadFromEnumerable(rows).Schema, path);
        return new Fixture(ml, model, rows, serial, path);
    });

    [ClassCleanup]
    public static void Cleanup()
    {
        if (Shared.IsValueCreated) File.Delete(Shared.Value.Path);
    }

    private static void AssertSerial(Fixture f, int row, float[] score, string how) =>
        CollectionAssert.AreEqual(f.Serial[row], score, $"{how}: row {row} differs from the serial pass");

    [TestMethod]
    public void EightThreadsWithAnEngineEach()
    {
        var f = Shared.Value;
        var errors = new ConcurrentBag<Exception>();
        var threads = Enumerable.Range(0, 8).Select(t => new Thread(() =>
        {
            try
            {
                using var engine = f.Ml.Model.CreatePredictionEngine<TextRow, Prediction>(f.Model);
                for (int i = 0; i < 500; i++)
                {
                    int row = t * 500 + i;
                    AssertSerial(f, row, engine.Predict(f.Rows[row]).Score, $"thread {t}");
                }
            }
            catch (Exception e)
            {
                errors.Add(e);
            }
        })).ToList();
        foreach (var thread in threads) thread.Start();
        foreach (var thread in threads) thread.Join();
        Assert.IsTrue(errors.IsEmpty, string.Join("\n", errors.Select(e => e.Message)));
        TestContext.WriteLine("8 threads × 500 predictions: identical to the serial pass");
    }

    /// <summary>
    /// (row id, score) of every row of every cursor, each cursor consumed on its own thread; rows of one cursor stay in
    /// the order it served them. A row served twice fails.
    /// </summary>
    private static List<(long Id, float[] Score)> Drain(DataViewRowCursor[] cursors, DataViewSchema.Column score)
    {
        var perCursor = new List<(long, float[])>[cursors.Length];
        Parallel.For(0, cursors.Length, new ParallelOptions { MaxDegreeOfParallelism = cursors.Length }, c =>
        {
            var rows = perCursor[c] = new List<(long, float[])>();
            using var cursor = cursors[c];
            var get = cursor.GetGetter<VBuffer<float>>(score);
            var id = cursor.GetIdGetter();
            VBuffer<float> value = default;
            DataViewRowId rowId = default;
            while (cursor.MoveNext())
            {
                get(ref value);
                id(ref rowId);
                rows.Add(((long)rowId.Low, value.DenseValues().ToArray()));
            }
        });
        var all = perCursor.SelectMany(rows => rows).ToList();
        Assert.AreEqual(all.Count, all.Select(r => r.Item1).Distinct().Count(), "a row was served twice");
        return all;
    }

    [TestMethod]
    public void CursorSetOfFourReadsTheSourceOnceAndMatchesTheSerialPass()
    {
        var f = Shared.Value;
        int enumerated = 0;
        IEnumerable<TextRow> Counted() { foreach (var row in f.Rows) { Interlocked.Increment(ref enumerated); yield return row; } }
        var scored = f.Model.Transform(f.Ml.Data.LoadFromEnumerable(Counted()));
        var score = scored.Schema["Score"];
        long batchedBefore = RecurrentTransformerBase.DiagnosticBatchedRows;
        var cursors = scored.GetRowCursorSet([score], 4);
        TestContext.WriteLine($"{cursors.Length} cursors");
        var scores = Drain(cursors, score);
        long batched = RecurrentTransformerBase.DiagnosticBatchedRows - batchedBefore;
        Assert.AreEqual(f.Rows.Count, scores.Count);
        foreach (var (id, value) in scores) AssertSerial(f, (int)id, value, "cursor set");
        TestContext.WriteLine($"{cursors.Length} cursors: {scores.Count} rows identical to the serial pass; the source was enumerated " +
            $"{enumerated} times for {f.Rows.Count} rows; {batched} rows served from read-ahead batches");
        // One pass for the cursors themselves and one for the shared read-ahead, not one per cursor.
        Assert.IsTrue(enumerated <= 2 * f.Rows.Count, $"the source was enumerated {enumerated} times");
        Assert.IsTrue(batched >= f.Rows.Count * 9 / 10, $"only {batched} rows came from batches");
    }

    [TestMethod]
    public void ShuffledCursorsMatchTheSerialPass()
    {
        var f = Shared.Value;
        var source = f.Ml.Data.Cache(f.Ml.Data.LoadFromEnumerable(f.Rows)); // a cached view can shuffle
        var scored = f.Model.Transform(source);
        Assert.IsTrue(scored.CanShuffle);
        var score = scored.Schema["Score"];
        var shuffledRows = Drain([scored.GetRowCursor([score], new Random(42))], score);
        foreach (var (id, value) in shuffledRows) AssertSerial(f, (int)id, value, "shuffled cursor");
        var order = shuffledRows.Select(r => r.Id).ToList();
        Assert.AreEqual(f.Rows.Count, order.Count);
        Assert.IsFalse(order.SequenceEqual(Enumerable.Range(0, f.Rows.Count).Select(i => (long)i)), "the cursor was not shuffled");
        // A shuffled cursor set, and ML.NET's ShuffleRows over the scored view.
        var set = Drain(scored.GetRowCursorSet([score], 3, new Random(7)), score);
        foreach (var (id, value) in set) AssertSerial(f, (int)id, value, "shuffled cursor set");
        var shuffled = f.Ml.Data.CreateEnumerable<Prediction>(f.Ml.Data.ShuffleRows(scored, seed: 3), reuseRowObject: false).ToList();
        Assert.AreEqual(f.Rows.Count, shuffled.Count);
        var expected = f.Serial.Select(s => string.Join(',', s)).Order().ToList();
        CollectionAssert.AreEqual(expected, shuffled.Select(p => string.Join(',', p.Score)).Order().ToList(), "ShuffleRows scores differ");
        TestContext.WriteLine($"shuffled cursor, shuffled cursor set and ShuffleRows: {f.Rows.Count} rows identical to the serial pass");
    }

    /// <summary>
    /// What Microsoft.Extensions.ML's PredictionEnginePool does — engines from a model loaded from a file, pooled and
    /// shared by concurrent requests through a ServiceCollection — built from Microsoft.Extensions.ObjectPool, since
    /// the package mirror serves no version of Microsoft.Extensions.ML.
    /// </summary>
    [TestMethod]
    public void PooledEnginesFromAServiceCollection()
    {
        var f = Shared.Value;
        var services = new ServiceCollection();
        services.AddSingleton(new MLContext(seed: 0));
        services.AddSingleton(provider => provider.GetRequiredService<MLContext>().Model.Load(f.Path, out _));
        services.AddSingleton<ObjectPool<PredictionEngine<TextRow, Prediction>>>(provider =>
        {
            var ml = provider.GetRequiredService<MLContext>();
            var model = provider.GetRequiredService<ITransformer>();
            return new DefaultObjectPool<PredictionEngine<TextRow, Prediction>>(new EnginePolicy(ml, model), maximumRetained: 4);
        });
        using var provider = services.BuildServiceProvider();
        var pool = provider.GetRequiredService<ObjectPool<PredictionEngine<TextRow, Prediction>>>();
        Parallel.For(0, 2000, new ParallelOptions { MaxDegreeOfParallelism = 8 }, row =>
        {
            var engine = pool.Get();
            try { AssertSerial(f, row, engine.Predict(f.Rows[row]).Score, "pooled engine"); }
            finally { pool.Return(engine); }
        });
        TestContext.WriteLine("2,000 requests on 8 workers through a pool of engines from the saved zip: identical to the serial pass");
    }

    private sealed class EnginePolicy(MLContext ml, ITransformer model) : PooledObjectPolicy<PredictionEngine<TextRow, Prediction>>
    {
        public override PredictionEngine<TextRow, Prediction> Create() => ml.Model.CreatePredictionEngine<TextRow, Prediction>(model);
        public override bool Return(PredictionEngine<TextRow, Prediction> obj) => true;
    }
}
