using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Interop;
using PoolingKind = Microsoft.ML.Recurrent.PoolingKind;
using RecurrentCellKind = Microsoft.ML.Recurrent.RecurrentCellKind;
using Microsoft.ML.Recurrent.Model;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace TorchParity;

/// <summary>
/// Weights through safetensors files, both ways, on the classifier of docs/interop.md: <c>embedding</c>
/// (nn.Embedding(V, E)) → <c>rnn</c> (nn.LSTM/GRU/RNN(E, H, L, batch_first, bidirectional), packed, unsorted) → pooling
/// over the real steps (final state = the last layer's h_n, or mean and max) → <c>head</c> (nn.Linear(P, O)).
/// <list type="bullet">
/// <item>libtorch → ours: the module (seeded, U(−0.5, 0.5)) is saved with TorchSharp.PyBridge's <c>save_safetensors</c>
/// (<c>torch_{tag}.safetensors</c>); libtorch's logits are recorded, and the file is read by this library's reader into
/// its network, whose logits must agree within 1e-5.</item>
/// <item>ours → libtorch: this library's network (its own seeded initialization) is written by its writer
/// (<c>ours_{tag}.safetensors</c>) and loaded into a fresh module with PyBridge's <c>load_safetensors</c> (strict: every
/// name and shape must match); libtorch's logits from it are recorded and must agree with this library's within 1e-5.</item>
/// </list>
/// The tests (<c>Interop/SafetensorsTorchParityTests</c>) repeat both comparisons from the committed files without
/// libtorch, and check that today's writer still writes <c>ours_{tag}.safetensors</c> byte for byte.
/// </summary>
internal static class Safetensors
{
    private const int Vocab = 9, Embed = 5, Hidden = 4, Classes = 3;
    private static readonly int[] Lengths = [3, 6, 1, 4, 2];

    /// <summary>The largest |ours − libtorch| over all logits of every fixture, each way.</summary>
    public static float MaxDiffTorchToOurs, MaxDiffOursToTorch;

    /// <summary>The classifier module; its attribute names are the tensor names' prefixes.</summary>
    private sealed class Classifier : nn.Module
    {
        private readonly Embedding embedding;
        private readonly nn.Module rnn;
        private readonly Linear head;
        private readonly Recurrent.Rnn runner;
        private readonly string pooling;
        private readonly int layers, directions;

        public Classifier(string cell, int layers, bool bidirectional, string pooling) : base(nameof(Classifier))
        {
            this.layers = layers;
            this.directions = bidirectional ? 2 : 1;
            this.pooling = pooling;
            this.embedding = nn.Embedding(Vocab, Embed);
            this.runner = Recurrent.Create(cell, Embed, Hidden, layers, bidirectional);
            this.rnn = this.runner.Module;
            int width = this.directions * Hidden * (pooling == "final_state" ? 1 : 2);
            this.head = nn.Linear(width, Classes);
            this.RegisterComponents();
        }

        /// <summary>Logits [B, O] of padded ids [B, T] with <paramref name="lengths"/> (padding never read: the batch is packed).</summary>
        public Tensor Logits(Tensor ids, int[] lengths)
        {
            int t = lengths.Max(), h = Hidden, d = this.directions;
            var (output, hn, _) = Recurrent.RunPadded(this.runner, this.embedding.call(ids), lengths, t);
            Tensor features;
            if (this.pooling == "final_state")
            {
                // The last layer's h_n: forward at (L−1)·D, reverse at (L−1)·D + 1.
                features = d == 1 ? hn[this.layers - 1] : cat([hn[(this.layers - 1) * d], hn[((this.layers - 1) * d) + 1]], 1);
            }
            else
            {
                Tensor mask = Recurrent.Mask(lengths, t);
                Tensor mean = output.sum(1) / tensor(lengths.Select(x => (float)x).ToArray()).unsqueeze(1);
                Tensor max = output.masked_fill(mask.eq(0).unsqueeze(2), float.NegativeInfinity).max(1).values;
                features = cat([mean, max], 1);
            }
            Check.Shape(features, [lengths.Length, d * h * (this.pooling == "final_state" ? 1 : 2)], "pooled features");
            return this.head.call(features);
        }
    }

    /// <summary>The fixtures: every cell, uni and bi, 1 and 2 layers, both poolings.</summary>
    public static IEnumerable<(string Tag, string Cell, bool Bidirectional, int Layers, string Pooling)> Cases()
    {
        yield return ("lstm_uni_l1", "lstm", false, 1, "final_state");
        yield return ("lstm_bi_l2", "lstm", true, 2, "mean,max");
        yield return ("gru_uni_l2", "gru", false, 2, "mean,max");
        yield return ("gru_bi_l1", "gru", true, 1, "final_state");
        yield return ("rnn_tanh_uni_l2", "rnn_tanh", false, 2, "final_state");
        yield return ("rnn_tanh_bi_l1", "rnn_tanh", true, 1, "mean,max");
    }

    /// <summary>This library's shape of the same classifier.</summary>
    public static NetworkConfig Config(string cell, bool bidirectional, int layers, string pooling) => new()
    {
        Cell = cell switch { "lstm" => RecurrentCellKind.Lstm, "gru" => RecurrentCellKind.Gru, _ => RecurrentCellKind.RnnTanh },
        VocabularySize = Vocab,
        InputSize = Embed,
        HiddenSize = Hidden,
        NumLayers = layers,
        Bidirectional = bidirectional,
        Pooling = pooling == "final_state" ? PoolingKind.FinalState : PoolingKind.Mean | PoolingKind.Max,
        OutputSize = Classes,
    };

    /// <summary>
    /// One fixture: writes <c>torch_{tag}.safetensors</c> and <c>ours_{tag}.safetensors</c> into <paramref name="directory"/>
    /// and returns the JSON record (ids, lengths, both sets of libtorch logits).
    /// </summary>
    public static JObj Fixture(string tag, string cell, bool bidirectional, int layers, string pooling, long seed, string directory)
    {
        int b = Lengths.Length, t = Lengths.Max();
        torch.manual_seed(seed);
        var ids = new long[b * t];
        var tokens = new List<int>();
        var random = new Random((int)seed);
        for (int i = 0; i < b; i++)
            for (int s = 0; s < Lengths[i]; s++)
            {
                int id = random.Next(Vocab);
                ids[(i * t) + s] = id;
                tokens.Add(id);
            }
        Tensor idTensor = tensor(ids, [b, t]);
        var config = Config(cell, bidirectional, layers, pooling);

        // libtorch → ours.
        var module = new Classifier(cell, layers, bidirectional, pooling);
        Recurrent.InitUniform(module, 0.5f);
        string torchFile = Path.Combine(directory, $"torch_{tag}.safetensors");
        module.save_safetensors(torchFile);
        float[] torchLogits;
        using (no_grad())
            torchLogits = JTensor.From(module.Logits(idTensor, Lengths)).Data;
        var fromTorch = new RecurrentNetwork(config);
        NetworkTensors.Import(fromTorch, SafetensorsReader.Read(torchFile));
        MaxDiffTorchToOurs = Math.Max(MaxDiffTorchToOurs, Compare(torchLogits, OurLogits(fromTorch, tokens), $"{tag}: torch file → ours"));

        // ours → libtorch.
        var ours = new RecurrentNetwork(config);
        ours.Initialize(seed);
        string oursFile = Path.Combine(directory, $"ours_{tag}.safetensors");
        SafetensorsWriter.Write(oursFile, NetworkTensors.Export(ours), NetworkTensors.Metadata(config, Vocab));
        var loaded = new Classifier(cell, layers, bidirectional, pooling);
        var found = new Dictionary<string, bool>();
        loaded.load_safetensors(oursFile, strict: true, loadedParameters: found);
        Check.That(found.Count == ours.Parameters.Parameters.Count && found.Values.All(v => v), $"{tag}: libtorch loaded every tensor of our file");
        float[] loadedLogits;
        using (no_grad())
            loadedLogits = JTensor.From(loaded.Logits(idTensor, Lengths)).Data;
        MaxDiffOursToTorch = Math.Max(MaxDiffOursToTorch, Compare(OurLogits(ours, tokens), loadedLogits, $"{tag}: our file → torch"));

        return new JObj()
            .Add("generator", Program.GeneratorName + " + TorchSharp.PyBridge 1.4.4")
            .Add("seed", seed)
            .Add("cell", cell)
            .Add("bidirectional", bidirectional)
            .Add("num_layers", layers)
            .Add("pooling", pooling)
            .Add("vocabulary_size", Vocab)
            .Add("embedding_size", Embed)
            .Add("hidden_size", Hidden)
            .Add("classes", Classes)
            .Add("lengths", Lengths)
            .Add("ids", new JTensor([b, t], ids.Select(x => (float)x).ToArray()))
            .Add("torch_file", $"torch_{tag}.safetensors")
            .Add("torch_logits", new JTensor([b, Classes], torchLogits))
            .Add("ours_file", $"ours_{tag}.safetensors")
            .Add("torch_logits_from_ours_file", new JTensor([b, Classes], loadedLogits));
    }

    private static float[] OurLogits(RecurrentNetwork network, List<int> tokens)
    {
        var outputs = new float[Lengths.Length * Classes];
        network.Forward(new RaggedBatch(Lengths), tokens.ToArray().AsSpan(), outputs);
        return outputs;
    }

    private static float Compare(float[] expected, float[] actual, string what)
    {
        float worst = 0;
        for (int i = 0; i < expected.Length; i++) worst = Math.Max(worst, Math.Abs(expected[i] - actual[i]));
        Check.That(expected.Length == actual.Length && worst <= 1e-5f, $"{what}: max |diff| {worst:G3} ≤ 1e-5");
        Console.WriteLine($"  {what}: max |diff| {worst:G3}");
        return worst;
    }
}
