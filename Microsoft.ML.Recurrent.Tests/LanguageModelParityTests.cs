using System.Text.Json;
using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Kernels;
using Microsoft.ML.Recurrent.Layers;
using Microsoft.ML.Recurrent.Model;

namespace Microsoft.ML.Recurrent.Tests;

/// <summary>
/// Parity with PyTorch for one stateful truncated-BPTT language-model step (what <c>LanguageModelTrainer</c> does per
/// chunk): chunk 1 from zero states, its final states (detached) start chunk 2, mean cross-entropy of chunk 2, backward.
/// Fixtures <c>lm_*.json</c> from <c>build/TorchParity</c> (libtorch 2.10): 2-layer LSTM and GRU with a linear decoder,
/// and a 2-layer LSTM whose decoder is tied to the embedding. Same tolerances as <see cref="TorchParityTests"/>: forward
/// values within 1e−5 absolute, gradients within 1e−4 relative.
/// </summary>
[TestClass]
public sealed class LanguageModelParityTests
{
    private const float ForwardTolerance = 1e-5f;
    private const float GradientTolerance = 1e-4f;

    public TestContext TestContext { get; set; } = null!;

    private static readonly string[] FixtureNames = ["lm_lstm_tbptt", "lm_lstm_tied", "lm_gru_tbptt"];

    private static JsonElement Load(string name)
    {
        string path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "torch", name + ".json");
        Assert.IsTrue(File.Exists(path), $"Missing fixture {path}; regenerate with build/TorchParity.");
        return JsonDocument.Parse(File.ReadAllText(path)).RootElement;
    }

    private static float[] Data(JsonElement tensor) =>
        tensor.GetProperty("data").EnumerateArray().Select(e => e.GetSingle()).ToArray();

    private static int[] Ints(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt32()).ToArray();

    /// <summary>Rows [B][T] of ids, concatenated in batch order (sequence b = column b).</summary>
    private static int[] Rows(JsonElement rows) => rows.EnumerateArray().SelectMany(Ints).ToArray();

    /// <summary>Asserts |actual − expected| ≤ 1e−5 everywhere; returns the largest difference.</summary>
    private float AssertForward(float[] expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.AreEqual(expected.Length, actual.Length, $"{what}: length");
        float worst = 0; int at = -1;
        for (int i = 0; i < expected.Length; i++)
        {
            float d = Math.Abs(expected[i] - actual[i]);
            if (d > worst) { worst = d; at = i; }
        }
        TestContext.WriteLine($"{what}: max |diff| = {worst:G3}");
        Assert.IsTrue(worst <= ForwardTolerance, $"{what}[{at}]: expected {(at >= 0 ? expected[at] : 0)}, got {(at >= 0 ? actual[at] : 0)} (|diff| {worst:G3})");
        return worst;
    }

    /// <summary>Relative error at most 1e−4, relative to max(|expected|, 1e−2·max|expected of the tensor|); returns the largest.</summary>
    private float AssertGradient(float[] expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.AreEqual(expected.Length, actual.Length, $"{what}: length");
        float scale = expected.Length == 0 ? 0 : expected.Max(Math.Abs);
        float worst = 0; int at = -1;
        for (int i = 0; i < expected.Length; i++)
        {
            float relative = Math.Abs(expected[i] - actual[i]) / Math.Max(Math.Max(Math.Abs(expected[i]), 1e-2f * scale), 1e-6f);
            if (relative > worst) { worst = relative; at = i; }
        }
        TestContext.WriteLine($"{what}: max relative diff = {worst:G3}");
        Assert.IsTrue(worst <= GradientTolerance, $"{what}[{at}]: expected {(at >= 0 ? expected[at] : 0)}, got {(at >= 0 ? actual[at] : 0)} (relative {worst:G3})");
        return worst;
    }

    /// <summary>What one truncated-BPTT step produced on our side.</summary>
    private sealed record StepResult(RecurrentNetwork Network, float[] H1, float[] C1, float[] Logits, float[] H2, float[] C2, float Loss, float[] Gradients);

    /// <summary>
    /// The fixture's network with its parameters, then the step as <c>LanguageModelTrainer</c> takes it: chunk 1 forward
    /// (no dropout), FinalStates → SetInitialStates, ZeroGradients, chunk 2 forward, mean cross-entropy, backward.
    /// States are [L, B, H]: all columns have the same length, so the sorted batch order is the original order.
    /// </summary>
    private static StepResult RunStep(JsonElement f, int threads)
    {
        string cell = f.GetProperty("cell").GetString()!;
        bool lstm = cell == "lstm";
        int v = f.GetProperty("vocab_size").GetInt32();
        var network = new RecurrentNetwork(new NetworkConfig
        {
            Cell = lstm ? RecurrentCellKind.Lstm : RecurrentCellKind.Gru,
            Head = NetworkHeadKind.PerStep,
            VocabularySize = v,
            OutputSize = v,
            InputSize = f.GetProperty("embedding_dim").GetInt32(),
            HiddenSize = f.GetProperty("hidden_size").GetInt32(),
            NumLayers = f.GetProperty("num_layers").GetInt32(),
            TieWeights = f.GetProperty("tie_weights").GetBoolean(),
        })
        { Threads = threads };
        var ps = network.Parameters;
        var torchParameters = f.GetProperty("parameters");
        Assert.AreEqual(torchParameters.EnumerateObject().Count(), ps.Parameters.Count, "same parameter count as PyTorch");
        CollectionAssert.AreEqual(torchParameters.EnumerateObject().Select(p => p.Name).ToArray(), ps.Parameters.Select(p => p.Name).ToArray(), "parameter names and order");
        foreach (var p in ps.Parameters)
        {
            var t = torchParameters.GetProperty(p.Name);
            CollectionAssert.AreEqual(p.Shape, Ints(t.GetProperty("shape")), $"shape of {p.Name}");
            Data(t).CopyTo(ps.Value(p));
        }

        int b = f.GetProperty("batch_size").GetInt32();
        int[] ids1 = Rows(f.GetProperty("ids1")), ids2 = Rows(f.GetProperty("ids2")), targets = Rows(f.GetProperty("targets2"));
        var batch1 = new RaggedBatch(Enumerable.Repeat(ids1.Length / b, b).ToArray());
        var batch2 = new RaggedBatch(Enumerable.Repeat(ids2.Length / b, b).ToArray());
        CollectionAssert.AreEqual(Enumerable.Range(0, b).ToArray(), batch2.Order.ToArray(), "equal lengths keep the original order");

        int stateLength = network.StateLength(b);
        var h1 = new float[stateLength];
        var c1 = new float[lstm ? stateLength : 0];
        network.ClearInitialStates();
        network.Forward(batch1, ids1, new float[ids1.Length * v]);
        network.FinalStates(batch1, h1, c1);
        network.SetInitialStates(h1, c1);

        ps.ZeroGradients();
        int n = batch2.TotalSteps;
        var logits = new float[n * v];
        network.Forward(batch2, ids2, logits);
        var dLogits = new float[n * v];
        float loss = SoftmaxCrossEntropy.Forward(n, v, logits, targets, default, default, new float[n * v], dLogits);
        var h2 = new float[stateLength];
        var c2 = new float[lstm ? stateLength : 0];
        network.FinalStates(batch2, h2, c2);
        network.Backward(batch2, ids2, dLogits);
        return new StepResult(network, h1, c1, logits, h2, c2, loss, ps.Gradients.ToArray());
    }

    private void CheckAgainstFixture(string fixture, int threads)
    {
        var f = Load(fixture);
        TestContext.WriteLine($"--- {fixture} (threads {threads}, fused kernels: {FusedKernels.Current()}, SGEMM: {Sgemm.Resolve(Sgemm.Path)})");
        var r = RunStep(f, threads);
        bool lstm = f.GetProperty("cell").GetString() == "lstm";
        float forward = AssertForward(Data(f.GetProperty("h1")), r.H1, "h1");
        if (lstm)
            forward = Math.Max(forward, AssertForward(Data(f.GetProperty("c1")), r.C1, "c1"));
        forward = Math.Max(forward, AssertForward(Data(f.GetProperty("logits")), r.Logits, "logits"));
        forward = Math.Max(forward, AssertForward(Data(f.GetProperty("h2")), r.H2, "h2"));
        if (lstm)
            forward = Math.Max(forward, AssertForward(Data(f.GetProperty("c2")), r.C2, "c2"));
        forward = Math.Max(forward, AssertForward([f.GetProperty("loss").GetSingle()], [r.Loss], "loss"));

        var ps = r.Network.Parameters;
        var grads = f.GetProperty("grad_parameters");
        float gradient = 0;
        foreach (var p in ps.Parameters)
            gradient = Math.Max(gradient, AssertGradient(Data(grads.GetProperty(p.Name)), r.Gradients.AsSpan(p.Offset, p.Length), "grad " + p.Name));
        TestContext.WriteLine($"{fixture}: max forward |diff| {forward:G3}, max gradient relative diff {gradient:G3}");
    }

    public static IEnumerable<object[]> Fixtures() => FixtureNames.Select(name => new object[] { name });

    /// <summary>States after chunk 1, chunk 2's logits, final states and loss, and every gradient of chunk 2.</summary>
    [TestMethod]
    [DynamicData(nameof(Fixtures))]
    public void TruncatedBpttStepMatchesPyTorch(string fixture) => CheckAgainstFixture(fixture, threads: 1);

    /// <summary>The same on one forced kernel path (fused kernels and SGEMM); Inconclusive, with the reason, where the CPU lacks it.</summary>
    [TestMethod]
    [DataRow(KernelPaths.Avx512)]
    [DataRow(KernelPaths.Avx2)]
    [DataRow(KernelPaths.Portable)]
    public void TruncatedBpttStepMatchesPyTorchOnPath(string path)
    {
        using var scope = KernelPaths.Force(path);
        foreach (string fixture in FixtureNames)
            CheckAgainstFixture(fixture, threads: 1);
    }

    /// <summary>One thread or two: the states, logits, loss and gradients are bitwise the same.</summary>
    [TestMethod]
    [DynamicData(nameof(Fixtures))]
    public void TruncatedBpttStepDoesNotDependOnThreads(string fixture)
    {
        var f = Load(fixture);
        var one = RunStep(f, threads: 1);
        var two = RunStep(f, threads: 2);
        Assert.AreEqual(2, two.Network.Threads);
        static void Same(float[] a, float[] b, string what)
        {
            Assert.AreEqual(a.Length, b.Length, $"{what}: length");
            for (int i = 0; i < a.Length; i++)
                Assert.AreEqual(BitConverter.SingleToInt32Bits(a[i]), BitConverter.SingleToInt32Bits(b[i]), $"{what}[{i}]: {a[i]} with 1 thread, {b[i]} with 2");
        }
        Same(one.H1, two.H1, "h1");
        Same(one.C1, two.C1, "c1");
        Same(one.Logits, two.Logits, "logits");
        Same(one.H2, two.H2, "h2");
        Same(one.C2, two.C2, "c2");
        Same([one.Loss], [two.Loss], "loss");
        Same(one.Gradients, two.Gradients, "gradients");
    }

    /// <summary>Every <c>lm_*</c> fixture in the folder is checked here, so a newly generated one cannot go unchecked.</summary>
    [TestMethod]
    public void EveryLanguageModelFixtureIsChecked()
    {
        var onDisk = Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Fixtures", "torch"), "lm_*.json")
            .Select(Path.GetFileNameWithoutExtension)
            .Order()
            .ToArray();
        CollectionAssert.AreEqual(FixtureNames.Order().ToArray(), onDisk);
    }
}
