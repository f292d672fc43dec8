using Microsoft.ML.Recurrent;
using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Layers;
using Microsoft.ML.Recurrent.Model;

namespace Recurrent.Bench;

/// <summary>Shape of an LSTM case: batch B, length T (all sequences full length), input E, hidden H, layers L.</summary>
internal sealed record LstmShape(int B, int T, int E, int H, int L, bool Bidirectional)
{
    public int D => Bidirectional ? 2 : 1;
    public int OutputWidth => D * H;
    public override string ToString() => $"B={B} T={T} E={E} H={H} L={L} {(Bidirectional ? "bi" : "uni")}";
}

/// <summary>
/// Our model (the source of all weights: peers get copies of these values) plus the case's inputs, batch-first
/// [B, T, E] as every implementation receives them.
/// </summary>
internal sealed class Fixture
{
    public const int Classes = 10;

    public LstmShape Shape { get; }
    public RecurrentNetwork Network { get; }
    public RaggedBatch Batch { get; }
    /// <summary>Input [B, T, E], batch-first (= concatenated per-sequence features since every length is T).</summary>
    public float[] X { get; }
    /// <summary>Class labels [B] (training cases).</summary>
    public int[] Labels { get; }
    /// <summary>Fixed upstream gradient on the top layer's output [B, T, D·H] (d-train).</summary>
    public float[] OutputGradient { get; }

    public Fixture(LstmShape s, long seed, bool withOutputGradient = false)
    {
        Shape = s;
        Network = new RecurrentNetwork(new NetworkConfig
        {
            Cell = RecurrentCellKind.Lstm,
            VocabularySize = 0,
            InputSize = s.E,
            HiddenSize = s.H,
            NumLayers = s.L,
            Bidirectional = s.Bidirectional,
            Pooling = PoolingKind.FinalState,
            OutputSize = Classes,
        });
        Network.Initialize(seed);
        var lengths = Enumerable.Repeat(s.T, s.B).ToArray();
        Batch = new RaggedBatch(lengths);
        var rng = new SeededRandom(seed + 1);
        X = new float[s.B * s.T * s.E];
        rng.FillNormal(X, 1f);
        Labels = new int[s.B];
        for (int i = 0; i < s.B; i++) Labels[i] = rng.NextInt(Classes);
        OutputGradient = withOutputGradient ? new float[s.B * s.T * s.OutputWidth] : [];
        if (withOutputGradient) rng.FillUniform(OutputGradient, -0.01f, 0.01f);
    }

    /// <summary>Our parameter values by PyTorch name (e.g. <c>weight_ih_l0_reverse</c> for prefix <c>rnn.</c>).</summary>
    public float[] Values(string name) => Network.Parameters.Value(Network.Parameters[name]).ToArray();
}
