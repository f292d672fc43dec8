using System.Text.Json;
using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Kernels;
using Microsoft.ML.Recurrent.Layers;
using Microsoft.ML.Recurrent.Model;
using Microsoft.ML.Recurrent.Optimizers;

namespace Microsoft.ML.Recurrent.Tests;

/// <summary>
/// Parity with PyTorch: golden fixtures written by libtorch 2.10 (TorchSharp-cpu 0.107.0) through
/// <c>build/TorchParity</c>. Forward values must agree within 1e−5 absolute, gradients within 1e−4 relative.
/// </summary>
[TestClass]
public sealed class TorchParityTests
{
    private const float ForwardTolerance = 1e-5f;
    private const float GradientTolerance = 1e-4f;

    public TestContext TestContext { get; set; } = null!;

    private static JsonElement Load(string name)
    {
        string path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "torch", name + ".json");
        Assert.IsTrue(File.Exists(path), $"Missing fixture {path}; regenerate with build/TorchParity.");
        return JsonDocument.Parse(File.ReadAllText(path)).RootElement;
    }

    private static float[] Data(JsonElement tensor) =>
        tensor.GetProperty("data").EnumerateArray().Select(e => e.GetSingle()).ToArray();

    private static int[] Ints(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt32()).ToArray();

    /// <summary>Asserts |actual − expected| ≤ 1e−5 everywhere and reports the largest difference.</summary>
    private void AssertForward(float[] expected, ReadOnlySpan<float> actual, string what)
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
    }

    /// <summary>Asserts a relative error of at most 1e−4, relative to max(|expected|, 1e−2·max|expected of the tensor|) so exact zeros and tiny entries do not dominate.</summary>
    private void AssertGradient(float[] expected, ReadOnlySpan<float> actual, string what)
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
    }

    /// <summary>
    /// The layer fixtures: H = 4 for every cell × direction × 1–3 layers, and H = 16, 37 and 64 (whole vectors and tails
    /// of the fused kernels at 16, 8 and 4 lanes) for each cell, uni and bi, one 2-layer stack per cell.
    /// </summary>
    private static IEnumerable<string> LayerFixtureNames()
    {
        foreach (string cell in new[] { "lstm", "gru", "rnn_tanh" })
            foreach (string direction in new[] { "uni", "bi" })
                foreach (int layers in new[] { 1, 2, 3 })
                    yield return $"{cell}_{direction}_l{layers}";
        yield return "rnn_relu_uni_l2";
        yield return "lstm_bi_l2_h16";
        yield return "lstm_uni_l1_h37";
        yield return "lstm_uni_l1_h64";
        yield return "gru_uni_l2_h16";
        yield return "gru_bi_l1_h37";
        yield return "gru_uni_l1_h64";
        yield return "rnn_tanh_bi_l1_h16";
        yield return "rnn_tanh_uni_l2_h37";
        yield return "rnn_tanh_bi_l1_h64";
    }

    public static IEnumerable<object[]> LayerFixtures() => LayerFixtureNames().Select(name => new object[] { name });

    /// <summary>Every layer fixture in the folder is in <see cref="LayerFixtureNames"/>, so a newly generated one cannot go unchecked.</summary>
    [TestMethod]
    public void EveryLayerFixtureIsChecked()
    {
        var onDisk = Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Fixtures", "torch"), "*.json")
            .Select(Path.GetFileNameWithoutExtension)
            .Where(name => name!.StartsWith("lstm_") || name.StartsWith("gru_") || name.StartsWith("rnn_"))
            .Order()
            .ToArray();
        CollectionAssert.AreEqual(LayerFixtureNames().Order().ToArray(), onDisk);
    }

    /// <summary>Forward outputs, final states and every gradient of one layer fixture, on the widest path this CPU accelerates.</summary>
    [TestMethod]
    [DynamicData(nameof(LayerFixtures))]
    public void RecurrentLayersMatchPyTorch(string fixture) => CheckLayerFixture(fixture);

    /// <summary>
    /// Every layer and classifier fixture and the Adam fixtures on one forced path (fused kernels and SGEMM), so each
    /// path the CPU accelerates is checked against libtorch in one run; Inconclusive, with the reason, otherwise.
    /// </summary>
    [TestMethod]
    [DataRow(KernelPaths.Avx512)]
    [DataRow(KernelPaths.Avx2)]
    [DataRow(KernelPaths.Portable)]
    public void AllFixturesMatchPyTorchOnPath(string path)
    {
        using var scope = KernelPaths.Force(path);
        foreach (string fixture in LayerFixtureNames())
            CheckLayerFixture(fixture);
        WholeClassifierMatchesPyTorch("model_bilstm_classifier");
        WholeClassifierMatchesPyTorch("model_bigru_meanmax");
        OptimizersMatchPyTorch("optim_adam");
        OptimizersMatchPyTorch("optim_adamw");
        CrfLossMatchesPyTorch("crf");
        CrfLossMatchesPyTorch("crf_bio");
    }

    private void CheckLayerFixture(string fixture)
    {
        TestContext.WriteLine($"--- {fixture} (fused kernels: {FusedKernels.Current()}, SGEMM: {Sgemm.Resolve(Sgemm.Path)})");
        var f = Load(fixture);
        var kind = f.GetProperty("cell").GetString() switch
        {
            "lstm" => RecurrentCellKind.Lstm,
            "gru" => RecurrentCellKind.Gru,
            "rnn_tanh" => RecurrentCellKind.RnnTanh,
            "rnn_relu" => RecurrentCellKind.RnnRelu,
            var other => throw new AssertFailedException($"unknown cell {other}"),
        };
        bool bi = f.GetProperty("bidirectional").GetBoolean();
        int layers = f.GetProperty("num_layers").GetInt32(), inputSize = f.GetProperty("input_size").GetInt32();
        int hidden = f.GetProperty("hidden_size").GetInt32(), maxLength = f.GetProperty("max_length").GetInt32();
        var batch = new RaggedBatch(Ints(f.GetProperty("lengths")));
        int b = batch.BatchSize, n = batch.TotalSteps;

        var parameters = new ParameterSet();
        var stack = new RecurrentStack(parameters, "", kind, inputSize, hidden, layers, bi, dropout: 0f);
        parameters.Allocate();
        var torchParameters = f.GetProperty("parameters");
        Assert.AreEqual(parameters.Parameters.Count, torchParameters.EnumerateObject().Count(), "same parameter count as PyTorch");
        foreach (var p in parameters.Parameters)
        {
            var t = torchParameters.GetProperty(p.Name);
            CollectionAssert.AreEqual(p.Shape, Ints(t.GetProperty("shape")), $"shape of {p.Name}");
            Data(t).CopyTo(parameters.Value(p));
        }

        var x = new float[n * inputSize];
        batch.PackPadded(Data(f.GetProperty("input")), maxLength, inputSize, x);
        var y = stack.Forward(batch, x, random: null);
        var padded = new float[b * maxLength * stack.OutputSize];
        batch.UnpackPadded(y, maxLength, stack.OutputSize, padded);
        AssertForward(Data(f.GetProperty("output")), padded, "output");

        int directions = layers * stack.NumDirections;
        bool lstm = kind == RecurrentCellKind.Lstm;
        var hN = new float[directions * b * hidden];
        var cN = new float[lstm ? hN.Length : 0];
        stack.FinalStates(batch, hN, cN);
        AssertForward(Data(f.GetProperty("h_n")), ToOriginal(batch, hN, directions, hidden), "h_n");
        if (lstm)
            AssertForward(Data(f.GetProperty("c_n")), ToOriginal(batch, cN, directions, hidden), "c_n");

        var dY = new float[n * stack.OutputSize];
        batch.PackPadded(Data(f.GetProperty("grad_output")), maxLength, stack.OutputSize, dY);
        var dhN = ToSorted(batch, Data(f.GetProperty("grad_h_n")), directions, hidden);
        var dcN = lstm ? ToSorted(batch, Data(f.GetProperty("grad_c_n")), directions, hidden) : [];
        var dX = new float[x.Length];
        stack.Backward(batch, x, dY, dhN, dcN, dX);
        var dXPadded = new float[b * maxLength * inputSize];
        batch.UnpackPadded(dX, maxLength, inputSize, dXPadded);
        AssertGradient(Data(f.GetProperty("grad_input")), dXPadded, "grad_input");
        var grads = f.GetProperty("grad_parameters");
        foreach (var p in parameters.Parameters)
            AssertGradient(Data(grads.GetProperty(p.Name)), parameters.Gradient(p), "grad " + p.Name);
    }

    /// <summary>[K, B, H] sorted batch order → original order.</summary>
    private static float[] ToOriginal(RaggedBatch batch, float[] sorted, int k, int h)
    {
        var result = new float[sorted.Length];
        int block = batch.BatchSize * h;
        for (int i = 0; i < k; i++)
            batch.SortedToOriginal(sorted.AsSpan(i * block, block), h, result.AsSpan(i * block, block));
        return result;
    }

    /// <summary>[K, B, H] original order → sorted batch order.</summary>
    private static float[] ToSorted(RaggedBatch batch, float[] original, int k, int h)
    {
        var result = new float[original.Length];
        int block = batch.BatchSize * h;
        for (int i = 0; i < k; i++)
            batch.OriginalToSorted(original.AsSpan(i * block, block), h, result.AsSpan(i * block, block));
        return result;
    }

    [TestMethod]
    [DataRow("model_bilstm_classifier")]
    [DataRow("model_bigru_meanmax")]
    public void WholeClassifierMatchesPyTorch(string fixture)
    {
        var f = Load(fixture);
        string cell = f.GetProperty("cell").GetString()!;
        int classes = f.GetProperty("num_classes").GetInt32();
        var network = new RecurrentNetwork(new NetworkConfig
        {
            Cell = cell == "lstm" ? RecurrentCellKind.Lstm : RecurrentCellKind.Gru,
            VocabularySize = f.GetProperty("vocab_size").GetInt32(),
            InputSize = f.GetProperty("embedding_dim").GetInt32(),
            HiddenSize = f.GetProperty("hidden_size").GetInt32(),
            NumLayers = f.GetProperty("num_layers").GetInt32(),
            Bidirectional = f.GetProperty("bidirectional").GetBoolean(),
            Pooling = f.GetProperty("head").GetString() == "last_hidden" ? PoolingKind.FinalState : PoolingKind.Mean | PoolingKind.Max,
            OutputSize = classes,
            // The fixture's "padding_id" only names what fills token_ids beyond each length; id 0 is a real, learned token.
        });
        string TorchName(string ours) => ours.Replace("rnn.", cell + ".").Replace("head.", "linear.");
        var ps = network.Parameters;
        foreach (var p in ps.Parameters)
            Data(f.GetProperty("parameters").GetProperty(TorchName(p.Name))).CopyTo(ps.Value(p));

        int[] lengths = Ints(f.GetProperty("lengths"));
        var batch = new RaggedBatch(lengths);
        var rows = f.GetProperty("token_ids").EnumerateArray().Select(Ints).ToArray();
        var tokens = rows.SelectMany((row, i) => row.Take(lengths[i])).ToArray();
        int[] labels = Ints(f.GetProperty("labels"));
        float[] classWeights = f.TryGetProperty("class_weights", out var cw) ? cw.EnumerateArray().Select(e => e.GetSingle()).ToArray() : [];

        var logits = new float[batch.BatchSize * classes];
        network.Forward(batch, tokens, logits);
        AssertForward(Data(f.GetProperty("logits")), logits, "logits");
        var probabilities = new float[logits.Length];
        var dLogits = new float[logits.Length];
        float loss = SoftmaxCrossEntropy.Forward(batch.BatchSize, classes, logits, labels, classWeights, default, probabilities, dLogits);
        AssertForward([f.GetProperty("loss").GetSingle()], [loss], "loss");

        ps.ZeroGradients();
        network.Backward(batch, tokens, dLogits);
        var grads = f.GetProperty("grad_parameters");
        foreach (var p in ps.Parameters)
            AssertGradient(Data(grads.GetProperty(TorchName(p.Name))), ps.Gradient(p), "grad " + p.Name);
    }

    [TestMethod]
    [DataRow("optim_adam")]
    [DataRow("optim_adamw")]
    [DataRow("optim_sgd_momentum")]
    public void OptimizersMatchPyTorch(string fixture)
    {
        var f = Load(fixture);
        var hp = f.GetProperty("hyperparameters");
        var p = Data(f.GetProperty("p0"));
        float lr = hp.GetProperty("lr").GetSingle(), wd = hp.GetProperty("weight_decay").GetSingle();
        Optimizer optimizer = f.GetProperty("optimizer").GetString() switch
        {
            "Adam" => new Adam(p.Length, lr, hp.GetProperty("beta1").GetSingle(), hp.GetProperty("beta2").GetSingle(), hp.GetProperty("eps").GetSingle(), wd, decoupled: false),
            "AdamW" => new Adam(p.Length, lr, hp.GetProperty("beta1").GetSingle(), hp.GetProperty("beta2").GetSingle(), hp.GetProperty("eps").GetSingle(), wd, decoupled: true),
            "SGD" => new Sgd(p.Length, lr, hp.GetProperty("momentum").GetSingle(), wd),
            var other => throw new AssertFailedException($"unknown optimizer {other}"),
        };
        var grads = f.GetProperty("grads").EnumerateArray().Select(Data).ToArray();
        var after = f.GetProperty("params_after").EnumerateArray().Select(Data).ToArray();
        for (int step = 0; step < grads.Length; step++)
        {
            optimizer.Step(p, grads[step]);
            AssertForward(after[step], p, $"parameters after step {step + 1}");
        }
    }

    /// <summary>
    /// The CRF loss of <c>crf.json</c> (no constraints) and <c>crf_bio.json</c> (AllenNLP's BIO constraints): pytorch-crf's
    /// forward algorithm (torch.logsumexp) and autograd on lengths [4, 1, 7, 2, 5], C = 5. The loss is a sum over five
    /// sequences, so besides the summed loss (1e−5 of a value near 65, about one float ulp, against libtorch's own
    /// float32 rounding) each sequence's NLL is compared within the forward tolerance.
    /// </summary>
    [TestMethod]
    [DataRow("crf")]
    [DataRow("crf_bio")]
    public void CrfLossMatchesPyTorch(string fixture)
    {
        var f = Load(fixture);
        int c = f.GetProperty("num_tags").GetInt32(), maxLength = f.GetProperty("max_length").GetInt32();
        int[] lengths = Ints(f.GetProperty("lengths"));
        var batch = new RaggedBatch(lengths);
        int b = batch.BatchSize, n = batch.TotalSteps;
        CrfConstraints? constraints = null;
        if (f.GetProperty("constraints").GetString() == "bio")
        {
            constraints = CrfConstraints.ForBio(f.GetProperty("tags").EnumerateArray().Select(e => e.GetString()!).ToArray());
            static int[] Flags(ReadOnlySpan<bool> mask) => mask.ToArray().Select(a => a ? 1 : 0).ToArray();
            CollectionAssert.AreEqual(Ints(f.GetProperty("allowed_start")), Flags(constraints.AllowedStart), "allowed_start");
            CollectionAssert.AreEqual(Ints(f.GetProperty("allowed_end")), Flags(constraints.AllowedEnd), "allowed_end");
            CollectionAssert.AreEqual(Ints(f.GetProperty("allowed_transitions")), Flags(constraints.AllowedTransitions), "allowed_transitions");
        }

        var parameters = new ParameterSet();
        var crf = new LinearChainCrf(parameters, "", c, constraints);
        parameters.Allocate();
        foreach (var p in parameters.Parameters)
        {
            var t = f.GetProperty("parameters").GetProperty(p.Name);
            CollectionAssert.AreEqual(p.Shape, Ints(t.GetProperty("shape")), $"shape of {p.Name}");
            Data(t).CopyTo(parameters.Value(p));
        }

        var emissions = new float[n * c];
        batch.PackPadded(Data(f.GetProperty("emissions")), maxLength, c, emissions);
        var rows = f.GetProperty("tag_ids").EnumerateArray().Select(Ints).ToArray();
        var tags = new int[n];
        for (int j = 0; j < b; j++)
            for (int t = 0; t < batch.SortedLengths[j]; t++)
                tags[batch.Row(t, j)] = rows[batch.Order[j]][t];

        // Each sequence on its own (a batch of one), then the whole batch with its gradients.
        var nll = new float[b];
        for (int i = 0; i < b; i++)
        {
            var single = new RaggedBatch([lengths[i]]);
            var e = new float[lengths[i] * c];
            var y = new int[lengths[i]];
            for (int t = 0; t < lengths[i]; t++)
            {
                emissions.AsSpan(batch.Row(t, batch.Order.IndexOf(i)) * c, c).CopyTo(e.AsSpan(t * c, c));
                y[t] = rows[i][t];
            }
            nll[i] = crf.Forward(single, e, y, new float[e.Length], 1f);
        }
        AssertForward(Data(f.GetProperty("nll")), nll, "nll per sequence");

        parameters.ZeroGradients();
        var dEmissions = new float[n * c];
        float loss = crf.Forward(batch, emissions, tags, dEmissions, 1f);
        AssertForward([f.GetProperty("loss").GetSingle()], [loss], "loss (sum)");
        var padded = new float[b * maxLength * c];
        batch.UnpackPadded(dEmissions, maxLength, c, padded);
        AssertGradient(Data(f.GetProperty("grad_emissions")), padded, "grad_emissions");
        var grads = f.GetProperty("grad_parameters");
        foreach (var p in parameters.Parameters)
            AssertGradient(Data(grads.GetProperty(p.Name)), parameters.Gradient(p), "grad " + p.Name);
    }

    [TestMethod]
    public void GradientClippingMatchesPyTorch()
    {
        var f = Load("clip_grad_norm");
        var flat = f.GetProperty("grads").EnumerateArray().SelectMany(Data).ToArray();
        float norm = GradientClipping.ClipByGlobalNorm(flat, f.GetProperty("max_norm").GetSingle());
        Assert.AreEqual(f.GetProperty("total_norm").GetDouble(), norm, 1e-5);
        AssertForward(f.GetProperty("clipped_grads").EnumerateArray().SelectMany(Data).ToArray(), flat, "clipped gradients");
    }
}
