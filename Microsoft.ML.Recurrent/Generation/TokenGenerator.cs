using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Layers;
using Microsoft.ML.Recurrent.Model;

namespace Microsoft.ML.Recurrent.Generation;

/// <summary>
/// Runs a trained language model one sequence at a time, keeping its recurrent state between calls: feed a prompt,
/// read the logits of the next token, feed the token drawn, and so on. Holds its own inference copy of the network
/// (shared weights, own activations), so one generator per thread. Knows nothing of ML.NET.
/// </summary>
internal sealed class TokenGenerator
{
    private readonly RecurrentNetwork _network;
    private readonly float[] _h, _c;
    private readonly RaggedBatch _batch = new([1]);
    private readonly int[] _lengths = new int[1];
    private readonly SingleStepNetwork _step;
    private readonly float[] _logits;
    private float[] _outputs = [];
    private bool _hasState;

    /// <summary>A generator over <paramref name="trained"/>'s weights (which must no longer change), on one thread.</summary>
    public TokenGenerator(RecurrentNetwork trained)
    {
        if (!trained.Config.TokenInput || trained.Config.Head != NetworkHeadKind.PerStep || trained.Config.Bidirectional)
            throw new ArgumentException("Generation needs a unidirectional network with token input and a per-step head.", nameof(trained));
        _network = trained.CreateInferenceSibling();
        _network.Threads = 1;
        int length = _network.StateLength(1);
        _h = new float[length];
        _c = trained.Config.Cell == RecurrentCellKind.Lstm ? new float[length] : [];
        _step = new SingleStepNetwork(_network);
        _logits = new float[_network.Config.OutputSize];
    }

    /// <summary>Vocabulary size V (the width of the logits).</summary>
    public int VocabularySize => _network.Config.OutputSize;

    /// <summary>Forgets the state: the next <see cref="Feed(ReadOnlySpan{int})"/> starts from zeros.</summary>
    public void Reset()
    {
        _hasState = false;
        _network.ClearInitialStates();
    }

    /// <summary>
    /// Reads <paramref name="tokens"/> (at least one) from the current state and returns the logits [V] of the token
    /// that follows them (valid until the next call). Ids must lie in [0, V).
    /// </summary>
    public ReadOnlySpan<float> Feed(ReadOnlySpan<int> tokens)
    {
        if (tokens.IsEmpty) throw new ArgumentException("Feed at least one token.", nameof(tokens));
        int v = VocabularySize;
        _lengths[0] = tokens.Length;
        _batch.Reset(_lengths);
        if (_hasState) _network.SetInitialStates(_h, _c);
        else _network.ClearInitialStates();
        var outputs = Workspace.Ensure(ref _outputs, tokens.Length * v);
        _network.Forward(_batch, tokens, outputs);
        _network.FinalStates(_batch, _h, _c);
        _hasState = true;
        return outputs.Slice((tokens.Length - 1) * v, v);
    }

    /// <summary>
    /// Reads one token; see <see cref="Feed(ReadOnlySpan{int})"/>. Runs <see cref="SingleStepNetwork"/>'s
    /// matrix-vector step instead of the batched forward (the same values up to float rounding).
    /// </summary>
    public ReadOnlySpan<float> Feed(int token)
    {
        if (!_hasState)
        {
            Array.Clear(_h);
            Array.Clear(_c);
        }
        _step.Step(token, _h, _c, _logits);
        _hasState = true;
        return _logits;
    }

    /// <summary>
    /// Σ log p(tokens[t+1] | tokens[0..t]) over t, in nats, from the current state, and the number of predictions
    /// (tokens.Length − 1); the state then follows the whole sequence. Forward only.
    /// </summary>
    public (double LogLikelihood, int Predictions) Score(ReadOnlySpan<int> tokens)
    {
        if (tokens.Length < 2) throw new ArgumentException("Scoring needs at least two tokens.", nameof(tokens));
        Feed(tokens.Slice(0, tokens.Length - 1));
        int v = VocabularySize;
        double total = 0;
        for (int t = 0; t + 1 < tokens.Length; t++)
        {
            var row = _outputs.AsSpan(t * v, v);
            total += LogProbability(row, tokens[t + 1]);
        }
        // The state must also have read the last token.
        Feed(tokens[^1]);
        return (total, tokens.Length - 1);
    }

    /// <summary>log softmax(row)[target] in nats, computed stably in double precision.</summary>
    internal static double LogProbability(ReadOnlySpan<float> row, int target)
    {
        float max = System.Numerics.Tensors.TensorPrimitives.Max(row);
        double sum = 0;
        foreach (float z in row) sum += Math.Exp(z - max);
        return row[target] - max - Math.Log(sum);
    }
}
