// CharEncoderTiming: Forward + Backward time of the character-level word encoder (Layers/CharacterEncoder) for a
// tagger batch, next to one word-level BiLSTM tagger step on the same batch, at 1 and 2 threads.
// Usage: dotnet run -c Release [-- [quick] [brown DIR]]   (brown DIR: real word lengths from DIR/ca01)
// Batch: S = 32 sentences × 25 words; word lengths uniform in [1, 13] (7 characters on average); Vc = 100.
// Char encoder: Ec = 25, H = 25 (LSTM, bidirectional, one layer) → 50 features per word.
// Word step: embedding (V = 20000, E) → BiLSTM (one layer, H = 100) → linear head to K = 50 tags, forward + backward
// (no loss, no optimizer), with E = 100 (words only) and E = 150 (the word BiLSTM's input grows by the 2·Hc char features).
using System.Diagnostics;
using Microsoft.ML.Recurrent;
using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Kernels;
using Microsoft.ML.Recurrent.Layers;

bool quick = args.Contains("quick");
string? brown = args.SkipWhile(a => a != "brown").Skip(1).FirstOrDefault();
const int Sentences = 32, WordsPerSentence = 25, CharVocabulary = 100, WordVocabulary = 20000, Tags = 50;
int words = Sentences * WordsPerSentence;
var data = new SeededRandom(2016);
var wordLengths = new int[words];
for (int i = 0; i < words; i++) wordLengths[i] = 1 + data.NextInt(13);
var characters = new int[wordLengths.Sum()];
for (int i = 0; i < characters.Length; i++) characters[i] = data.NextInt(CharVocabulary);
if (brown is not null)
{
    // Real words: 800 consecutive tokens (word/tag) of the Brown corpus from a fixed file, 25 per sentence; character
    // id = 1 + (UTF-16 code mod 99).
    var text = File.ReadAllText(Path.Combine(brown, "ca01")).Split((char[])[' ', '\n', '\t', '\r'], StringSplitOptions.RemoveEmptyEntries);
    var tokensText = text.Select(t => t[..t.LastIndexOf('/')]).Take(words).ToArray();
    for (int i = 0; i < words; i++) wordLengths[i] = tokensText[i].Length;
    characters = string.Concat(tokensText).Select(c => 1 + c % 99).ToArray();
    Console.WriteLine($"Brown ca01: {tokensText.Distinct().Count()} distinct of {words} tokens, " +
        $"{tokensText.Distinct().Sum(t => t.Length)} distinct-word characters of {wordLengths.Sum()}");
}
var sentenceLengths = Enumerable.Repeat(WordsPerSentence, Sentences).ToArray();
var tokens = new int[words];
for (int i = 0; i < words; i++) tokens[i] = data.NextInt(WordVocabulary);
Console.WriteLine($"SGEMM path {Sgemm.Resolve(KernelPath.Auto)}, {Environment.ProcessorCount} logical CPUs; " +
    $"{Sentences} sentences × {WordsPerSentence} words, {characters.Length} characters ({(double)characters.Length / words:F2} per word)");

// Character encoder.
var charParameters = new ParameterSet();
var encoder = new CharacterEncoder(charParameters, "char.", CharVocabulary, 25, 25);
charParameters.Allocate();
encoder.Initialize(new SeededRandom(1));
var charOut = new float[words * encoder.OutputSize];
var dCharOut = new float[charOut.Length];
data.FillUniform(dCharOut, -1f, 1f);
void CharStep()
{
    encoder.Forward(characters, wordLengths, charOut);
    encoder.Backward(characters, wordLengths, dCharOut);
}

// Word-level tagger step: embedding → BiLSTM → per-word linear head.
(Action Step, Action<int> SetThreads) WordStep(int e)
{
    var ps = new ParameterSet();
    var embedding = new Embedding(ps, "embedding.", WordVocabulary, e);
    var stack = new RecurrentStack(ps, "rnn.", RecurrentCellKind.Lstm, e, 100, 1, bidirectional: true, dropout: 0f);
    var head = new Linear(ps, "head.", stack.OutputSize, Tags);
    ps.Allocate();
    var r = new SeededRandom(2);
    embedding.Initialize(r); stack.Initialize(r); head.Initialize(r);
    var batch = new RaggedBatch(sentenceLengths);
    int n = batch.TotalSteps;
    var x = new float[n * e];
    var logits = new float[n * Tags];
    var dLogits = new float[n * Tags];
    r.FillUniform(dLogits, -1f, 1f);
    var dY = new float[n * stack.OutputSize];
    var dX = new float[n * e];
    void Step()
    {
        embedding.Forward(batch, tokens, x);
        var y = stack.Forward(batch, x, null);
        head.Forward(n, y, logits);
        head.Backward(n, y, dLogits, dY);
        dX.AsSpan().Clear();
        stack.Backward(batch, x, dY, default, default, dX);
        embedding.Backward(batch, tokens, dX);
    }
    return (Step, t => stack.Threads = t);
}

CharStep();
Console.WriteLine($"char encoder: {encoder.DistinctWords} distinct words of {words} encoded");
var word100 = WordStep(100);
var word150 = WordStep(150);

(double Median, double Min, long Bytes) Time(Action body)
{
    for (int i = 0; i < (quick ? 3 : 10); i++) body();
    var times = new List<double>(400);
    var total = Stopwatch.StartNew();
    while (times.Count < 5 || (total.Elapsed.TotalSeconds < (quick ? 1 : 4) && times.Count < 400))
    {
        long t0 = Stopwatch.GetTimestamp();
        body();
        times.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
    }
    times.Sort();
    long a1 = GC.GetAllocatedBytesForCurrentThread();
    body();
    long bytes = GC.GetAllocatedBytesForCurrentThread() - a1;
    return (times[times.Count / 2], times[0], bytes);
}

// The three bodies are timed in interleaved rounds (one call of each per round), so that a change of machine load
// (the cores are shared) hits all three alike; the table gives the median and the minimum over the rounds.
Console.WriteLine("threads | char enc. F+B ms (median / min) | word step E=100 ms | word step E=150 ms | char / word(100) by median, by min | (char + word150) / word100 by min | bytes per char step");
var bodies = new Action[] { CharStep, word100.Step, word150.Step };
foreach (int threads in new[] { 1, 2 })
{
    encoder.Threads = threads;
    word100.SetThreads(threads);
    word150.SetThreads(threads);
    foreach (var body in bodies)
        for (int i = 0; i < (quick ? 3 : 10); i++) body();
    var times = bodies.Select(_ => new List<double>(1000)).ToArray();
    var clock = Stopwatch.StartNew();
    while (times[0].Count < 5 || (clock.Elapsed.TotalSeconds < (quick ? 3 : 30) && times[0].Count < 1000))
        for (int k = 0; k < bodies.Length; k++)
        {
            long t0 = Stopwatch.GetTimestamp();
            bodies[k]();
            times[k].Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        }
    foreach (var t in times) t.Sort();
    double Med(int k) => times[k][times[k].Count / 2];
    double Min(int k) => times[k][0];
    long a0 = GC.GetAllocatedBytesForCurrentThread();
    CharStep();
    long bytes = GC.GetAllocatedBytesForCurrentThread() - a0;
    Console.WriteLine($"{threads} | {Med(0):F2} / {Min(0):F2} | {Med(1):F2} / {Min(1):F2} | {Med(2):F2} / {Min(2):F2} | " +
        $"{Med(0) / Med(1):P0}, {Min(0) / Min(1):P0} | {(Min(0) + Min(2)) / Min(1):F2}× | {bytes}  ({times[0].Count} rounds)");
}

// Where the character encoder's time goes (1 thread): forward alone, backward alone.
encoder.Threads = 1;
var fwd = Time(() => encoder.Forward(characters, wordLengths, charOut));
var both = Time(CharStep);
Console.WriteLine($"char encoder, 1 thread: forward {fwd.Median:F2} / {fwd.Min:F2} ms, forward + backward {both.Median:F2} / {both.Min:F2} ms");

// The pieces: the ragged layout of 800 words, and the stack alone on the packed characters.
{
    var batch = new RaggedBatch(wordLengths);
    var reset = Time(() => batch.Reset(wordLengths));
    var ps = new ParameterSet();
    var stack = new RecurrentStack(ps, "rnn.", RecurrentCellKind.Lstm, 25, 25, 1, bidirectional: true, dropout: 0f);
    ps.Allocate();
    stack.Initialize(new SeededRandom(3));
    var x = new float[batch.TotalSteps * 25];
    data.FillUniform(x, -1f, 1f);
    var hN = new float[2 * words * 25];
    var dhN = new float[hN.Length];
    data.FillUniform(dhN, -1f, 1f);
    var dX = new float[x.Length];
    var sf = Time(() => { stack.Forward(batch, x, null); stack.FinalStates(batch, hN, default); });
    var sfb = Time(() => { stack.Forward(batch, x, null); stack.FinalStates(batch, hN, default); stack.Backward(batch, x, default, dhN, default, dX); });
    Console.WriteLine($"RaggedBatch.Reset of {words} unsorted words {reset.Min * 1000:F0} µs (the encoder hands it sorted lengths); stack alone: forward {sf.Median:F2} / {sf.Min:F2} ms, forward + backward {sfb.Median:F2} / {sfb.Min:F2} ms");
}
