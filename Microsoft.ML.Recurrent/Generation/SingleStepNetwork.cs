using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Kernels;
using Microsoft.ML.Recurrent.Layers;
using Microsoft.ML.Recurrent.Layers.Cells;
using Microsoft.ML.Recurrent.Model;

namespace Microsoft.ML.Recurrent.Generation;

/// <summary>
/// One step of a unidirectional token network for one sequence, with matrix-vector products (<see cref="Gemv"/>)
/// instead of GEMMs: embedding row → for each layer, gates = W_ih·x + b_ih and W_hh·h_prev, then the cell's fused
/// update → head logits = W·h + b (W the embedding when tied). Reads the network's weights in place (nothing is
/// copied or packed), so each step streams every weight once: the memory-bound floor of sampling. Gives the same
/// values as <see cref="RecurrentNetwork.Forward(RaggedBatch, ReadOnlySpan{int}, Span{float}, SeededRandom?)"/> up to
/// the order of the additions (the tests hold it within float rounding).
/// </summary>
internal sealed class SingleStepNetwork
{
    private readonly ParameterSet _ps;
    private readonly RecurrentCell _cell;
    private readonly Parameter _embedding, _headWeight, _headBias;
    private readonly (Parameter Ih, Parameter Hh, Parameter BiasIh, Parameter BiasHh)[] _layers;
    private readonly float[] _gates, _gh, _h, _c, _zeros;

    /// <summary>Layers L.</summary>
    public int Layers { get; }

    /// <summary>Hidden width H.</summary>
    public int HiddenSize { get; }

    /// <summary>Vocabulary V.</summary>
    public int VocabularySize { get; }

    /// <summary>Values of one state tensor, L·H (the layout of <see cref="RecurrentNetwork.FinalStates"/> for one sequence).</summary>
    public int StateLength => Layers * HiddenSize;

    public SingleStepNetwork(RecurrentNetwork network)
    {
        var config = network.Config;
        if (!config.TokenInput || config.Bidirectional || config.Head != NetworkHeadKind.PerStep || config.UsesCharacters)
            throw new ArgumentException("A single-step network needs a unidirectional stack with token input and a per-step head.", nameof(network));
        _ps = network.Parameters;
        _cell = RecurrentCell.Create(config.Cell);
        Layers = config.NumLayers;
        HiddenSize = config.HiddenSize;
        VocabularySize = config.OutputSize;
        _embedding = _ps["embedding.weight"];
        _headWeight = config.TieWeights ? _embedding : _ps["head.weight"];
        _headBias = _ps["head.bias"];
        _layers = new (Parameter, Parameter, Parameter, Parameter)[Layers];
        for (int l = 0; l < Layers; l++)
            _layers[l] = (_ps[$"rnn.weight_ih_l{l}"], _ps[$"rnn.weight_hh_l{l}"], _ps[$"rnn.bias_ih_l{l}"], _ps[$"rnn.bias_hh_l{l}"]);
        int gw = _cell.Gates * HiddenSize;
        _gates = new float[gw];
        _gh = new float[gw];
        _h = new float[HiddenSize];
        _c = new float[HiddenSize];
        _zeros = new float[HiddenSize];
    }

    /// <summary>
    /// Reads <paramref name="token"/> from the states h [L·H] and (LSTM) c [L·H], updates them in place, and writes the
    /// next token's logits [V]. An LSTM needs c; the other cells take an empty c.
    /// </summary>
    public void Step(int token, Span<float> h, Span<float> c, Span<float> logits)
    {
        if ((uint)token >= (uint)VocabularySize)
            throw new ArgumentOutOfRangeException(nameof(token), token, $"Token id {token} is outside the vocabulary [0, {VocabularySize}).");
        int hs = HiddenSize, e = _ps.Value(_embedding).Length / VocabularySize;
        bool lstm = _cell.UsesAux && _cell is LstmCell;
        ReadOnlySpan<float> x = _ps.Value(_embedding).Slice(token * e, e);
        for (int l = 0; l < Layers; l++)
        {
            var (ih, hh, bih, bhh) = _layers[l];
            var hl = h.Slice(l * hs, hs);
            Gemv.Multiply(_ps.Value(ih), x, default, _gates);
            Gemv.Multiply(_ps.Value(hh), hl, default, _gh);
            _cell.ForwardRow(_gates, _ps.Value(bih), _gh, _ps.Value(bhh), hl, lstm ? c.Slice(l * hs, hs) : _zeros, _h, _cell.UsesAux ? _c : default);
            _h.CopyTo(hl);
            if (lstm) _c.CopyTo(c.Slice(l * hs, hs));
            x = hl;
        }
        Gemv.Multiply(_ps.Value(_headWeight), x, _ps.Value(_headBias), logits.Slice(0, VocabularySize));
    }
}
