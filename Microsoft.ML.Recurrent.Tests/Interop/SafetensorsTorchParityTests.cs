using System.Text.Json;
using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Interop;
using Microsoft.ML.Recurrent.Model;

namespace Microsoft.ML.Recurrent.Tests.Interop;

/// <summary>
/// Weights through safetensors files with libtorch, from the committed fixtures of
/// <c>dotnet run -c Release --project build/TorchParity -- --safetensors</c> (no libtorch needed here): a file written by
/// libtorch (TorchSharp.PyBridge's <c>save_safetensors</c> of an nn.Embedding → nn.LSTM/GRU/RNN → nn.Linear classifier)
/// gives libtorch's logits in this library within 1e-5, and a file written by this library — which today's writer must
/// still write byte for byte — gave libtorch (PyBridge's strict <c>load_safetensors</c>) the logits this library computes,
/// within 1e-5. LSTM, GRU and RNN-tanh, uni- and bidirectional, 1 and 2 layers, final-state and mean/max pooling.
/// </summary>
[TestClass]
public sealed class SafetensorsTorchParityTests
{
    private const float Tolerance = 1e-5f;

    public TestContext TestContext { get; set; } = null!;

    internal static string Folder => Path.Combine(AppContext.BaseDirectory, "Fixtures", "safetensors");

    public static IEnumerable<object[]> Cases() =>
        new[] { "lstm_uni_l1", "lstm_bi_l2", "gru_uni_l2", "gru_bi_l1", "rnn_tanh_uni_l2", "rnn_tanh_bi_l1" }.Select(tag => new object[] { tag });

    /// <summary>One fixture's record and the network shape it describes.</summary>
    internal sealed record Fixture(JsonElement Json, NetworkConfig Config, int[] Lengths, int[] Tokens)
    {
        public float[] Floats(string name) => Json.GetProperty(name).GetProperty("data").EnumerateArray().Select(e => e.GetSingle()).ToArray();

        public string File(string name) => Path.Combine(Folder, Json.GetProperty(name).GetString()!);
    }

    internal static Fixture Load(string tag)
    {
        string path = Path.Combine(Folder, $"safetensors_{tag}.json");
        Assert.IsTrue(File.Exists(path), $"Missing fixture {path}; regenerate with build/TorchParity --safetensors.");
        var json = JsonDocument.Parse(File.ReadAllText(path)).RootElement;
        var config = new NetworkConfig
        {
            Cell = json.GetProperty("cell").GetString() switch { "lstm" => RecurrentCellKind.Lstm, "gru" => RecurrentCellKind.Gru, _ => RecurrentCellKind.RnnTanh },
            VocabularySize = json.GetProperty("vocabulary_size").GetInt32(),
            InputSize = json.GetProperty("embedding_size").GetInt32(),
            HiddenSize = json.GetProperty("hidden_size").GetInt32(),
            NumLayers = json.GetProperty("num_layers").GetInt32(),
            Bidirectional = json.GetProperty("bidirectional").GetBoolean(),
            Pooling = json.GetProperty("pooling").GetString() == "final_state" ? PoolingKind.FinalState : PoolingKind.Mean | PoolingKind.Max,
            OutputSize = json.GetProperty("classes").GetInt32(),
        };
        int[] lengths = json.GetProperty("lengths").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var ids = json.GetProperty("ids");
        int t = ids.GetProperty("shape")[1].GetInt32();
        float[] padded = ids.GetProperty("data").EnumerateArray().Select(e => e.GetSingle()).ToArray();
        // The real steps of each padded row [B, T], concatenated.
        var tokens = new List<int>();
        for (int i = 0; i < lengths.Length; i++)
            for (int s = 0; s < lengths[i]; s++)
                tokens.Add((int)padded[i * t + s]);
        return new Fixture(json, config, lengths, [.. tokens]);
    }

    internal static float[] Logits(RecurrentNetwork network, Fixture fixture)
    {
        var outputs = new float[fixture.Lengths.Length * fixture.Config.OutputSize];
        network.Forward(new RaggedBatch(fixture.Lengths), fixture.Tokens.AsSpan(), outputs);
        return outputs;
    }

    private void AssertClose(float[] expected, float[] actual, string what)
    {
        Assert.AreEqual(expected.Length, actual.Length, what);
        float worst = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
        TestContext.WriteLine($"{what}: max |diff| = {worst:G3}");
        Assert.IsTrue(worst <= Tolerance, $"{what}: max |diff| {worst:G3} > {Tolerance}");
    }

    [TestMethod]
    [DynamicData(nameof(Cases))]
    public void AFileWrittenByLibtorchGivesLibtorchsOutputs(string tag)
    {
        var fixture = Load(tag);
        var file = SafetensorsReader.Read(fixture.File("torch_file"));
        var network = new RecurrentNetwork(fixture.Config);
        NetworkTensors.Import(network, file);
        AssertClose(fixture.Floats("torch_logits"), Logits(network, fixture), $"{tag}: libtorch's file");
    }

    [TestMethod]
    [DynamicData(nameof(Cases))]
    public void AFileWeWriteIsWhatLibtorchReadAndGaveOurOutputs(string tag)
    {
        var fixture = Load(tag);
        string path = fixture.File("ours_file");
        var file = SafetensorsReader.Read(path);
        var network = new RecurrentNetwork(fixture.Config);
        NetworkTensors.Import(network, file);
        AssertClose(fixture.Floats("torch_logits_from_ours_file"), Logits(network, fixture), $"{tag}: libtorch on our file vs ours");

        // Today's writer writes the very bytes libtorch read.
        using var stream = new MemoryStream();
        SafetensorsWriter.Write(stream, NetworkTensors.Export(network), NetworkTensors.Metadata(fixture.Config, fixture.Config.VocabularySize));
        CollectionAssert.AreEqual(File.ReadAllBytes(path), stream.ToArray(), $"{tag}: the writer's bytes changed; regenerate the fixtures with build/TorchParity --safetensors");
    }
}
