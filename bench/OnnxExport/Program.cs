// The exported model in ONNX Runtime next to ours, at the shapes of bench/Recurrent.Bench (docs/onnx.md).
//
//   dotnet run -c Release --project bench/OnnxExport [-- --case a-infer,c-latency,d-infer] [--repeats N]
//
// For each shape (B rows of T tokens, embedding E, hidden H, L layers, bidirectional LSTM, 4 classes, pooling
// final + mean + max): a classifier is trained for one epoch on B random rows (the weights do not matter for speed),
// exported with mlContext.Model.ConvertToOnnx from the key vector, and the same B rows are scored
//   - ours: Transform over the B rows (batched), and a PredictionEngine row by row, at 1 and 2 threads;
//   - ONNX Runtime: the exported graph, one row per Run (ML.NET's converter declares one row per call), intra-op threads 1 and 2;
// medians of the repeated runs (at least N and at least 3 s), after a 2 s warm-up. The outputs are compared (max |Δ| of the probabilities).
using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Microsoft.ML.Recurrent;

var cases = new Dictionary<string, (int B, int T, int E, int H, int L)>
{
    ["a-infer"] = (32, 64, 128, 256, 2),
    ["c-latency"] = (1, 32, 64, 128, 1),
    ["d-infer"] = (64, 128, 300, 512, 2),
};
var chosen = cases.Keys.ToList();
int repeats = 20;
for (int i = 0; i < args.Length; i++)
{
    if (args[i] == "--case") chosen = [.. args[++i].Split(',')];
    else if (args[i] == "--repeats") repeats = int.Parse(args[++i]);
}
Console.WriteLine($"CPU: {Cpu()}; vector path: {(System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? "Vector512 (AVX-512)" : System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated ? "Vector256 (AVX2)" : "Vector128")}; " +
    $"{Environment.ProcessorCount} cores; ONNX Runtime {typeof(InferenceSession).Assembly.GetName().Version}");
const int Vocabulary = 5000, Classes = 4;
foreach (var name in chosen)
{
    var (b, t, e, h, l) = cases[name];
    var ml = new MLContext(seed: 1);
    var random = new Random(7);
    var rows = Enumerable.Range(0, b).Select(_ => new KeyRow
    {
        Label = (uint)random.Next(1, Classes + 1),
        Features = Enumerable.Range(0, t).Select(_ => (uint)random.Next(1, Vocabulary + 1)).ToArray(),
    }).ToList();
    var schema = SchemaDefinition.Create(typeof(KeyRow));
    schema["Label"].ColumnType = new KeyDataViewType(typeof(uint), Classes);
    schema["Features"].ColumnType = new VectorDataViewType(new KeyDataViewType(typeof(uint), Vocabulary));
    var data = ml.Data.Cache(ml.Data.LoadFromEnumerable(rows, schema));
    // The recurrent part's input alone (the key vector), as a view that is not a transform: the graph's only input.
    var featuresOnly = ml.Data.Cache(ml.Transforms.SelectColumns("Features").Fit(data).Transform(data));
    foreach (int threads in new[] { 1, 2 })
    {
        // NumberOfThreads is saved with the model and used when scoring; training gives the same weights at any count.
        var model = ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
        {
            EmbeddingSize = e, HiddenSize = h, NumberOfLayers = l, Bidirectional = true, NumberOfEpochs = 1, BatchSize = Math.Min(b, 32),
            MinimumTokenFrequency = 1, Pooling = PoolingKind.FinalState | PoolingKind.Mean | PoolingKind.Max, NumberOfThreads = threads,
        }).Fit(data);
        using var stream = new MemoryStream();
        ml.Model.ConvertToOnnx(model, featuresOnly, stream);
        var onnx = stream.ToArray();
        if (threads == 1)
            Console.WriteLine($"{name}: B={b} T={t} E={e} H={h} L={l} bi LSTM, {Classes} classes, pooling final+mean+max; ONNX model {onnx.Length / 1e6:F1} MB");
        var expected = ml.Data.CreateEnumerable<ScoreRow>(model.Transform(data), reuseRowObject: false).Select(r => r.Score).ToList();
        using var options = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL };
        using var session = new InferenceSession(onnx, options);
        var inputs = rows.Select(r => NamedOnnxValue.CreateFromTensor("Features", new DenseTensor<uint>(r.Features, [1, r.Features.Length]))).ToList();
        float maxDiff = 0;
        for (int r = 0; r < b; r++)
        {
            using var result = session.Run([inputs[r]]);
            var score = result.First(x => x.Name == "Score.output").AsTensor<float>().ToArray();
            for (int k = 0; k < Classes; k++) maxDiff = Math.Max(maxDiff, Math.Abs(score[k] - expected[r][k]));
        }
        var ortTimes = Measure(repeats, () =>
        {
            foreach (var input in inputs)
            {
                using var result = session.Run([input]);
            }
        });
        var oursTimes = Measure(repeats, () =>
        {
            var scored = model.Transform(data);
            using var cursor = scored.GetRowCursor([scored.Schema["Score"]]);
            var getter = cursor.GetGetter<VBuffer<float>>(cursor.Schema["Score"]);
            VBuffer<float> value = default;
            while (cursor.MoveNext()) getter(ref value);
        });
        var engine = ml.Model.CreatePredictionEngine<KeyRow, ScoreRow>(model, inputSchemaDefinition: schema);
        var engineTimes = Measure(repeats, () =>
        {
            foreach (var row in rows) engine.Predict(row);
        });
        double o = Median(oursTimes), p = Median(engineTimes), x = Median(ortTimes);
        Console.WriteLine($"  {threads} thread(s), ms per {b} row(s): ours Transform (batched) {o:F3}, ours PredictionEngine (row by row) {p:F3}, " +
            $"ONNX Runtime on the exported graph (row by row) {x:F3}; ratio ONNX Runtime / ours best {x / Math.Min(o, p):F2}; max |Δ probability| {maxDiff:E1}");
    }
}

static List<double> Measure(int repeats, Action action)
{
    // Warm up for 2 s (the JIT promotes hot methods to optimized code after ~30 calls and a delay: fewer calls would
    // time tier-0 code), then time at least `repeats` runs and at least 3 s.
    var warm = Stopwatch.StartNew();
    for (int i = 0; i < 5 || warm.Elapsed.TotalSeconds < 2; i++) action();
    var times = new List<double>();
    var total = Stopwatch.StartNew();
    while (times.Count < repeats || total.Elapsed.TotalSeconds < 3)
    {
        var watch = Stopwatch.StartNew();
        action();
        times.Add(watch.Elapsed.TotalMilliseconds);
    }
    return times;
}

static double Median(List<double> values)
{
    var sorted = values.Order().ToList();
    return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
}

static string Cpu()
{
    try
    {
        var info = File.ReadAllLines("/proc/cpuinfo");
        string Field(string key) => info.FirstOrDefault(line => line.StartsWith(key))?.Split(':', 2)[1].Trim() ?? "?";
        return $"{Field("model name")} (family {Field("cpu family")}, model {Field("model\t")})";
    }
    catch (IOException)
    {
        return "unknown";
    }
}

internal sealed class KeyRow
{
    public uint Label { get; set; }
    [VectorType] public uint[] Features { get; set; } = [];
}

internal sealed class ScoreRow
{
    public float[] Score { get; set; } = [];
}
