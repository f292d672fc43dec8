using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Layers;
using Microsoft.ML.Recurrent.Model;

namespace Microsoft.ML.Recurrent.Tests;

/// <summary>
/// Central finite differences against the analytic backward pass, for every parameter and every input element.
/// The scalar checked is L = Σ Y⊙R_y + Σ h_n⊙R_h (+ Σ c_n⊙R_c), so gradients flow through outputs and final states.
/// </summary>
[TestClass]
public sealed class GradientCheckTests
{
    private const int InputSize = 3, HiddenSize = 3;
    private static readonly int[] Lengths = [3, 5, 1, 4]; // unsorted, includes length 1

    public static IEnumerable<object[]> Grid()
    {
        foreach (var cell in new[] { RecurrentCellKind.Lstm, RecurrentCellKind.Gru, RecurrentCellKind.RnnTanh })
            foreach (bool bi in new[] { false, true })
                foreach (int layers in new[] { 1, 2, 3 })
                    yield return [cell, bi, layers];
    }

    [TestMethod]
    [DynamicData(nameof(Grid))]
    public void StackGradientsMatchFiniteDifferences(RecurrentCellKind cell, bool bidirectional, int layers)
    {
        var batch = new RaggedBatch(Lengths);
        var parameters = new ParameterSet();
        var stack = new RecurrentStack(parameters, "rnn.", cell, InputSize, HiddenSize, layers, bidirectional, dropout: 0f);
        parameters.Allocate();
        var random = new SeededRandom(17 + layers + (bidirectional ? 100 : 0) + (int)cell * 1000);
        random.FillUniform(parameters.Values, -0.7f, 0.7f);

        int n = batch.TotalSteps, states = layers * stack.NumDirections * batch.BatchSize * HiddenSize;
        bool lstm = cell == RecurrentCellKind.Lstm;
        var x = new float[n * InputSize];
        var rY = new float[n * stack.OutputSize];
        var rH = new float[states];
        var rC = lstm ? new float[states] : [];
        random.FillUniform(x, -1f, 1f);
        random.FillUniform(rY, -1f, 1f);
        random.FillUniform(rH, -1f, 1f);
        random.FillUniform(rC, -1f, 1f);
        var hN = new float[states];
        var cN = new float[lstm ? states : 0];

        double Loss()
        {
            var y = stack.Forward(batch, x, random: null);
            stack.FinalStates(batch, hN, cN);
            double sum = 0;
            for (int i = 0; i < y.Length; i++) sum += (double)y[i] * rY[i];
            for (int i = 0; i < hN.Length; i++) sum += (double)hN[i] * rH[i];
            for (int i = 0; i < cN.Length; i++) sum += (double)cN[i] * rC[i];
            return sum;
        }

        Loss();
        parameters.ZeroGradients();
        var dX = new float[x.Length];
        stack.Backward(batch, x, rY, rH, rC, dX);

        var failures = new List<string>();
        foreach (var p in parameters.Parameters)
            CheckAll(parameters.Value(p).Length, i => parameters.Values.AsSpan(p.Offset)[i], (i, v) => parameters.Values[p.Offset + i] = v,
                parameters.Gradient(p).ToArray(), Loss, p.Name, failures);
        CheckAll(x.Length, i => x[i], (i, v) => x[i] = v, dX, Loss, "input", failures);
        Assert.AreEqual(0, failures.Count, string.Join("\n", failures.Take(20)));
    }

    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm, true, PoolingKind.FinalState)]
    [DataRow(RecurrentCellKind.Gru, true, PoolingKind.Mean | PoolingKind.Max)]
    [DataRow(RecurrentCellKind.RnnTanh, false, PoolingKind.FinalState | PoolingKind.Mean | PoolingKind.Max)]
    [DataRow(RecurrentCellKind.Lstm, true, PoolingKind.Max | PoolingKind.InputMean)]
    [DataRow(RecurrentCellKind.Lstm, true, PoolingKind.Attention)]
    [DataRow(RecurrentCellKind.Gru, false, PoolingKind.Mean | PoolingKind.InputMean | PoolingKind.Attention)]
    public void ClassifierGradientsMatchFiniteDifferences(RecurrentCellKind cell, bool bidirectional, PoolingKind pooling)
    {
        // Input, inter-layer and head dropout with the same mask at every evaluation (fixed seed per forward).
        var network = new RecurrentNetwork(new NetworkConfig
        {
            Cell = cell, VocabularySize = 7, InputSize = 3, HiddenSize = 3, NumLayers = 2,
            Bidirectional = bidirectional, Pooling = pooling, OutputSize = 3, PaddingId = 6,
            Dropout = 0.3f, InputDropout = 0.2f, HeadDropout = 0.2f,
        });
        network.Initialize(5);
        var batch = new RaggedBatch(Lengths);
        var random = new SeededRandom(9);
        var tokens = new int[batch.TotalSteps];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = random.NextInt(7);
        tokens[2] = 6; // one padding id: no gradient for its row
        int[] labels = [0, 2, 1, 2];
        float[] classWeights = [0.5f, 1f, 2f];
        var logits = new float[batch.BatchSize * 3];
        var probabilities = new float[logits.Length];
        var dLogits = new float[logits.Length];

        double Loss()
        {
            network.Forward(batch, tokens, logits, new SeededRandom(31));
            return SoftmaxCrossEntropy.Forward(batch.BatchSize, 3, logits, labels, classWeights, default, probabilities, dLogits);
        }

        Loss();
        network.Parameters.ZeroGradients();
        network.Backward(batch, tokens, dLogits);

        var ps = network.Parameters;
        var failures = new List<string>();
        foreach (var p in ps.Parameters)
            CheckAll(p.Length, i => ps.Values[p.Offset + i], (i, v) => ps.Values[p.Offset + i] = v,
                ps.Gradient(p).ToArray(), Loss, p.Name, failures, skip: p.Name == "embedding.weight" ? i => i / 3 == 6 : null);
        Assert.AreEqual(0, failures.Count, string.Join("\n", failures.Take(20)));
        var paddingRow = ps.Gradient(ps["embedding.weight"]).Slice(6 * 3, 3).ToArray();
        CollectionAssert.AreEqual(new float[3], paddingRow, "The padding id's row must get no gradient.");
    }

    /// <summary>
    /// Wide &amp; deep: the sparse wide part beside a pooled head (attention and mean pooling, dropouts with a fixed
    /// mask). Every parameter's gradient — wide.weight's at every entry, touched or not — matches central differences,
    /// and the wide part's forward equals the dense product x · Wᵀ.
    /// </summary>
    [TestMethod]
    [DataRow(PoolingKind.Mean | PoolingKind.Attention)]
    [DataRow(PoolingKind.FinalState)]
    public void WideAndDeepGradientsMatchFiniteDifferences(PoolingKind pooling)
    {
        const int wideSize = 9, classes = 3;
        var network = new RecurrentNetwork(new NetworkConfig
        {
            Cell = RecurrentCellKind.Lstm, VocabularySize = 7, InputSize = 3, HiddenSize = 3, NumLayers = 1, Bidirectional = true,
            Pooling = pooling, OutputSize = classes, Dropout = 0.3f, InputDropout = 0.2f, HeadDropout = 0.2f, WideSize = wideSize, WideDropout = 0.3f,
        });
        network.Initialize(5);
        var batch = new RaggedBatch(Lengths);
        var random = new SeededRandom(9);
        random.FillUniform(network.Parameters.Values, -0.6f, 0.6f); // wide.weight starts at 0: give it values
        var tokens = new int[batch.TotalSteps];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = random.NextInt(7);
        // Sequence 0: three entries; 1: none; 2: one; 3: two (columns distinct within a row, shared across rows).
        int[] starts = [0, 3, 3, 4, 6];
        int[] indices = [0, 4, 8, 4, 2, 7];
        float[] values = [1.5f, -0.5f, 2f, 0.75f, 1f, -1.25f];
        int[] labels = [0, 2, 1, 2];
        var logits = new float[batch.BatchSize * classes];
        var probabilities = new float[logits.Length];
        var dLogits = new float[logits.Length];
        SequenceData Data() => new() { Tokens = tokens, WideStarts = starts, WideIndices = indices, WideValues = values };

        double Loss()
        {
            network.Forward(batch, Data(), logits, new SeededRandom(31));
            return SoftmaxCrossEntropy.Forward(batch.BatchSize, classes, logits, labels, default, default, probabilities, dLogits);
        }

        Loss();
        network.Parameters.ZeroGradients();
        network.Backward(batch, Data(), dLogits);
        var ps = network.Parameters;
        var failures = new List<string>();
        foreach (var p in ps.Parameters)
            CheckAll(p.Length, i => ps.Values[p.Offset + i], (i, v) => ps.Values[p.Offset + i] = v, ps.Gradient(p).ToArray(), Loss, p.Name, failures);
        Assert.AreEqual(0, failures.Count, string.Join("\n", failures.Take(20)));
        // Columns no row uses (1, 3, 5, 6) get exactly zero gradient: the update is sparse.
        var dWide = ps.Gradient(ps["wide.weight"]).ToArray();
        foreach (int column in new[] { 1, 3, 5, 6 })
            for (int c = 0; c < classes; c++)
                Assert.AreEqual(0f, dWide[c * wideSize + column], $"class {c}, unused column {column}");

        // The wide part's forward is the dense product: outputs(with W) − outputs(W = 0) = x · Wᵀ.
        var with = new float[logits.Length];
        var without = new float[logits.Length];
        network.Forward(batch, Data(), with);
        var w = ps.Value(ps["wide.weight"]).ToArray();
        ps.Value(ps["wide.weight"]).Clear();
        network.Forward(batch, Data(), without);
        w.CopyTo(ps.Value(ps["wide.weight"]));
        for (int b = 0; b < batch.BatchSize; b++)
            for (int c = 0; c < classes; c++)
            {
                double expected = 0;
                for (int k = starts[b]; k < starts[b + 1]; k++) expected += values[k] * w[c * wideSize + indices[k]];
                Assert.AreEqual(expected, with[b * classes + c] - without[b * classes + c], 1e-5, $"sequence {b}, class {c}");
            }
        // A network with a wide part refuses input without wide features.
        Assert.ThrowsExactly<ArgumentException>(() => network.Forward(batch, tokens, logits));
    }

    /// <summary>Dropout between layers: with the mask fixed (same seed every forward), gradients still match.</summary>
    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm)]
    [DataRow(RecurrentCellKind.Gru)]
    public void DropoutBetweenLayersHasExactGradients(RecurrentCellKind cell)
    {
        var batch = new RaggedBatch(Lengths);
        var parameters = new ParameterSet();
        var stack = new RecurrentStack(parameters, "", cell, InputSize, HiddenSize, 3, bidirectional: true, dropout: 0.4f);
        parameters.Allocate();
        var random = new SeededRandom(77);
        random.FillUniform(parameters.Values, -0.7f, 0.7f);
        var x = new float[batch.TotalSteps * InputSize];
        random.FillUniform(x, -1f, 1f);
        CheckStackOutputGradients(stack, parameters, batch, x, random, () => new SeededRandom(1234));
        // Training-time dropout really drops: outputs differ from inference.
        var train = stack.Forward(batch, x, new SeededRandom(1234)).ToArray();
        var infer = stack.Forward(batch, x, null).ToArray();
        CollectionAssert.AreNotEqual(train, infer);
    }

    /// <summary>
    /// Checks every parameter and input gradient of <paramref name="stack"/> for L = Σ Y ⊙ R (R random) by finite
    /// differences; <paramref name="dropout"/> gives the same dropout generator for every forward (or null).
    /// </summary>
    internal static void CheckStackOutputGradients(RecurrentStack stack, ParameterSet parameters, RaggedBatch batch, float[] x,
        SeededRandom random, Func<SeededRandom?> dropout)
    {
        var rY = new float[batch.TotalSteps * stack.OutputSize];
        random.FillUniform(rY, -1f, 1f);
        double Loss()
        {
            var y = stack.Forward(batch, x, dropout());
            double sum = 0;
            for (int i = 0; i < y.Length; i++) sum += (double)y[i] * rY[i];
            return sum;
        }
        Loss();
        parameters.ZeroGradients();
        var dX = new float[x.Length];
        stack.Backward(batch, x, rY, default, default, dX);
        var failures = new List<string>();
        foreach (var p in parameters.Parameters)
            CheckAll(p.Length, i => parameters.Values[p.Offset + i], (i, v) => parameters.Values[p.Offset + i] = v,
                parameters.Gradient(p).ToArray(), Loss, p.Name, failures);
        CheckAll(x.Length, i => x[i], (i, v) => x[i] = v, dX, Loss, "input", failures);
        Assert.AreEqual(0, failures.Count, string.Join("\n", failures.Take(20)));
    }

    /// <summary>Compares every analytic gradient with a central difference (float32 forward, step 1e−2).</summary>
    internal static void CheckAll(int count, Func<int, float> get, Action<int, float> set, float[] analytic,
        Func<double> loss, string name, List<string> failures, Func<int, bool>? skip = null)
    {
        const float step = 1e-2f;
        for (int i = 0; i < count; i++)
        {
            if (skip?.Invoke(i) == true) continue;
            float original = get(i);
            set(i, original + step);
            double plus = loss();
            set(i, original - step);
            double minus = loss();
            set(i, original);
            double numeric = (plus - minus) / (2 * step);
            double error = Math.Abs(numeric - analytic[i]);
            if (error > 2e-3 + 2e-3 * Math.Abs(numeric))
                failures.Add($"{name}[{i}]: analytic {analytic[i]:G6}, numeric {numeric:G6}");
        }
    }
}
