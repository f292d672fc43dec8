// Scores the text classifier exported by samples/TextClassificationDemo with ONNX Runtime alone (docs/onnx.md).
//
//   dotnet run --project samples/TextClassificationDemo -- --onnx      trains, exports <out>/sample-bilstm.onnx (+ .json)
//   dotnet run --project samples/OnnxScoring [-- DIR-OR-FILE ["text" …]]  (default: the demo's output folder)
//
// It checks the exported model against the probabilities ML.NET wrote for the test rows, then tokenizes text itself (as
// the demo's featurizer did, approximately: see Normalize), scores it and times one row.
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

string target = args.Length > 0 ? args[0] : Path.Combine(Path.GetTempPath(), "recurrent-demo");
string path = Directory.Exists(target) ? Directory.GetFiles(target, "*.onnx").OrderByDescending(File.GetLastWriteTimeUtc).FirstOrDefault()
    ?? throw new FileNotFoundException($"No .onnx file in {target}: run samples/TextClassificationDemo with --onnx first.") : target;
using var sidecarJson = JsonDocument.Parse(File.ReadAllText(path + ".json"));
var sidecar = sidecarJson.RootElement;
string input = sidecar.GetProperty("input").GetString()!;
var vocabulary = sidecar.GetProperty("vocabulary").EnumerateArray().Select((w, i) => (Word: w.GetString()!, Key: (uint)(i + 1)))
    .GroupBy(p => p.Word).ToDictionary(g => g.Key, g => g.First().Key);
var classes = sidecar.GetProperty("classes").EnumerateArray().Select(c => c.GetString()!).ToArray();

using var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };
using var session = new InferenceSession(path, options);
Console.WriteLine($"Loaded {path}: input '{input}' {string.Join(", ", session.InputMetadata.Select(i => $"{i.Key} {i.Value.ElementDataType}"))}; " +
    $"outputs {string.Join(", ", session.OutputMetadata.Keys)}; {vocabulary.Count:N0} words, classes {string.Join(", ", classes)}");

float[] Score(uint[] keys)
{
    using var results = session.Run([NamedOnnxValue.CreateFromTensor(input, new DenseTensor<uint>(keys, [1, keys.Length]))]);
    return results.First(r => r.Name == "Score.output").AsTensor<float>().ToArray();
}

// 1. The exported model against ML.NET's own probabilities for the same keys.
float worst = 0;
int rows = 0;
foreach (var row in sidecar.GetProperty("check").EnumerateArray())
{
    var keys = row.GetProperty("keys").EnumerateArray().Select(k => k.GetUInt32()).ToArray();
    var expected = row.GetProperty("probabilities").EnumerateArray().Select(p => p.GetSingle()).ToArray();
    var actual = Score(keys);
    worst = Math.Max(worst, expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max());
    rows++;
}
Console.WriteLine($"Checked {rows} test rows against ML.NET: max |Δ probability| = {worst:E1} {(worst <= 1e-5f ? "(agrees)" : "(DIFFERS)")}");

// 2. New text, tokenized here.
string[] texts = args.Length > 1 ? args[1..] :
[
    "Stocks rallied on Wall Street as oil prices fell and investors bet on lower interest rates.",
    "The striker scored twice in the second half and the champions won the cup final.",
    "A new chip from the company doubles the battery life of laptops and phones.",
    "Rebels and government troops clashed near the capital as peace talks stalled.",
];
foreach (var text in texts)
{
    var keys = Tokenize(text).Select(w => vocabulary.GetValueOrDefault(w)).ToArray(); // 0: not in the vocabulary
    var p = Score(keys);
    int best = Array.IndexOf(p, p.Max());
    Console.WriteLine($"  {classes[best],-10} {p[best]:P0}  \"{text}\"");
}

// 3. Latency of one row (median of 2,000 after a warm-up), one thread.
var sample = Tokenize(texts[0]).Select(w => vocabulary.GetValueOrDefault(w)).ToArray();
for (int i = 0; i < 200; i++) Score(sample);
var times = new double[2000];
for (int i = 0; i < times.Length; i++)
{
    var watch = Stopwatch.StartNew();
    Score(sample);
    times[i] = watch.Elapsed.TotalMilliseconds;
}
Array.Sort(times);
Console.WriteLine($"One row of {sample.Length} tokens in ONNX Runtime, 1 thread: median {times[times.Length / 2]:F3} ms, p90 {times[times.Length * 9 / 10]:F3} ms");

// The demo's featurizer: NormalizeText (lower case, diacritics and punctuation removed, numbers kept), then words at
// spaces. This is close to ML.NET's, not identical in every corner of Unicode; the check above used ML.NET's own keys.
static IEnumerable<string> Tokenize(string text)
{
    var builder = new StringBuilder();
    foreach (char c in text.ToLowerInvariant().Normalize(NormalizationForm.FormD))
    {
        var category = CharUnicodeInfo.GetUnicodeCategory(c);
        if (category == UnicodeCategory.NonSpacingMark || char.IsPunctuation(c)) continue;
        builder.Append(c);
    }
    return builder.ToString().Normalize(NormalizationForm.FormC).Split(' ', StringSplitOptions.RemoveEmptyEntries);
}
