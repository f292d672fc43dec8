using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Layers;
using Microsoft.ML.Recurrent.Model;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// Turns one sentence's emission scores [T, C] into tags and tag probabilities: through the model's CRF (Viterbi,
/// posterior marginals) when it has one, otherwise each token's best score and its softmax. One per cursor: the CRF's
/// work buffers are its own (its parameters are a private copy of the model's, C·(C + 2) values).
/// </summary>
internal sealed class TagDecoder
{
    private readonly LinearChainCrf? _crf;
    private readonly int _tags;
    private readonly RaggedBatch _batch = new([1]);
    private int[] _decoded = [];

    public TagDecoder(RecurrentModel model)
    {
        _tags = model.OutputSize;
        if (model.Network.Head is not PerStepHead { Crf: { } trained })
            return;
        var parameters = new ParameterSet();
        _crf = new LinearChainCrf(parameters, "crf.", _tags, trained.Constraints);
        parameters.Allocate(withGradients: false);
        foreach (var p in parameters.Parameters)
            model.Network.Parameters.Value(model.Network.Parameters[p.Name]).CopyTo(parameters.Value(p));
        _crf.FreezeParameters(); // a private copy that never changes: its potentials are computed once, not per sentence
    }

    /// <summary>Writes each token's tag as a key (tag index + 1) into <paramref name="keys"/> [T]; key 0 for NaN scores.</summary>
    public void Decode(ReadOnlySpan<float> emissions, Span<uint> keys)
    {
        int steps = emissions.Length / _tags;
        if (steps == 0) return;
        if (float.IsNaN(emissions[0]))
        {
            keys.Slice(0, steps).Clear();
            return;
        }
        if (_crf is null)
        {
            for (int t = 0; t < steps; t++)
                keys[t] = (uint)System.Numerics.Tensors.TensorPrimitives.IndexOfMax(emissions.Slice(t * _tags, _tags)) + 1;
            return;
        }
        // One sequence: its packed layout is its own order.
        _batch.Reset([steps]);
        var decoded = Workspace.Ensure(ref _decoded, steps);
        _crf.Decode(_batch, emissions, decoded);
        for (int t = 0; t < steps; t++) keys[t] = (uint)decoded[t] + 1;
    }

    /// <summary>Writes each token's tag probabilities [T, C]: the CRF's marginals, or the softmax of the scores.</summary>
    public void Probabilities(ReadOnlySpan<float> emissions, Span<float> probabilities)
    {
        int steps = emissions.Length / _tags;
        if (steps == 0) return;
        if (_crf is null || float.IsNaN(emissions[0]))
        {
            for (int t = 0; t < steps; t++)
                System.Numerics.Tensors.TensorPrimitives.SoftMax(emissions.Slice(t * _tags, _tags), probabilities.Slice(t * _tags, _tags));
            return;
        }
        _batch.Reset([steps]);
        _crf.Marginals(_batch, emissions, probabilities);
    }
}
