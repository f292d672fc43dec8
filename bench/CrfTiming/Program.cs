// CrfTiming: time per call of LinearChainCrf.Forward (NLL + all gradients), Decode (Viterbi) and Marginals on one
// thread, with and without BIO constraints, and a 1-layer BiLSTM forward pass over the same batch for scale.
// Usage: dotnet run -c Release --project bench/CrfTiming -- [B] [T] [C] [embedding] [hidden]   (defaults 32 25 45 100 128)
// Every sequence has length T (the worst case for a given B·T); the figures are the median and best of many calls.
using System.Diagnostics;
using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Layers;

int b = args.Length > 0 ? int.Parse(args[0]) : 32;
int t = args.Length > 1 ? int.Parse(args[1]) : 25;
int c = args.Length > 2 ? int.Parse(args[2]) : 45;
int embedding = args.Length > 3 ? int.Parse(args[3]) : 100;
int hidden = args.Length > 4 ? int.Parse(args[4]) : 128;
Console.WriteLine($"B = {b}, T = {t}, C = {c}; one thread; {Environment.ProcessorCount} logical CPUs; Vector<float>: {System.Numerics.Vector<float>.Count} lanes");

var batch = new RaggedBatch(Enumerable.Repeat(t, b).ToArray());
int n = batch.TotalSteps;
var random = new SeededRandom(1);
var emissions = new float[n * c];
random.FillUniform(emissions, -4f, 4f);

// (median, best) seconds per call of body after warm-up.
(double Median, double Best) Time(Action body)
{
    var warm = Stopwatch.StartNew();
    while (warm.Elapsed.TotalSeconds < 0.5) body();
    var samples = new List<double>();
    var total = Stopwatch.StartNew();
    while (total.Elapsed.TotalSeconds < 1.5 || samples.Count < 20)
    {
        long t0 = Stopwatch.GetTimestamp();
        body();
        samples.Add(Stopwatch.GetElapsedTime(t0).TotalSeconds);
    }
    samples.Sort();
    return (samples[samples.Count / 2], samples[0]);
}

string Format((double Median, double Best) s) => $"median {s.Median * 1e3,7:F3} ms, best {s.Best * 1e3,7:F3} ms";

// The kernels (SGEMM, TensorPrimitives) reach their optimized tier only after a while; time nothing before that.
{
    var parameters = new ParameterSet();
    var crf = new LinearChainCrf(parameters, "crf.", c);
    parameters.Allocate();
    var tags = new int[n];
    var buffer = new float[n * c];
    var warm = Stopwatch.StartNew();
    while (warm.Elapsed.TotalSeconds < 3)
    {
        crf.Decode(batch, emissions, tags);
        crf.Forward(batch, emissions, tags, buffer, 1f);
        crf.Marginals(batch, emissions, buffer);
    }
}

var names = new List<string> { "O" };
for (int x = 0; names.Count < c; x++) { names.Add($"B-T{x}"); names.Add($"I-T{x}"); }
foreach (var constraints in new[] { null, CrfConstraints.ForBio(names.Take(c).ToList()) })
{
    var parameters = new ParameterSet();
    var crf = new LinearChainCrf(parameters, "crf.", c, constraints);
    parameters.Allocate();
    random.FillUniform(parameters.Values, -1f, 1f);
    // Gold tags: the Viterbi path, which every constraint allows.
    var tags = new int[n];
    crf.Decode(batch, emissions, tags);
    var dEmissions = new float[n * c];
    var probabilities = new float[n * c];
    string label = constraints is null ? "no constraints" : "BIO constraints";
    Console.WriteLine($"{label,-16} Forward   {Format(Time(() => crf.Forward(batch, emissions, tags, dEmissions, 1f / b)))}");
    Console.WriteLine($"{label,-16} Decode    {Format(Time(() => crf.Decode(batch, emissions, tags)))}");
    Console.WriteLine($"{label,-16} Marginals {Format(Time(() => crf.Marginals(batch, emissions, probabilities)))}");
}

{
    // For scale: inference of a 1-layer BiLSTM (input = embedding width) and its linear head over the same batch.
    var parameters = new ParameterSet();
    var stack = new RecurrentStack(parameters, "lstm.", Microsoft.ML.Recurrent.RecurrentCellKind.Lstm, embedding, hidden, 1, bidirectional: true, dropout: 0f);
    var head = new Linear(parameters, "head.", 2 * hidden, c);
    parameters.Allocate();
    random.FillUniform(parameters.Values, -0.1f, 0.1f);
    var x = new float[n * embedding];
    random.FillUniform(x, -1f, 1f);
    var scores = new float[n * c];
    var s = Time(() =>
    {
        var y = stack.Forward(batch, x, random: null);
        head.Forward(n, y, scores);
    });
    Console.WriteLine($"BiLSTM (E = {embedding}, H = {hidden}) + linear head forward: {Format(s)}");
}

