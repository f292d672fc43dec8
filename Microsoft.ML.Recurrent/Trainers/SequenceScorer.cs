using Microsoft.ML.Data;
using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Model;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// Scores rows in batches with its own inference copy of the network (shared weights, private activations), so
/// each cursor can score independently. Collect rows with <c>Add</c>, then <see cref="Run"/>.
/// </summary>
internal sealed class SequenceScorer
{
    private readonly RecurrentModel _model;
    private readonly RecurrentNetwork _network;
    private readonly List<int> _tokens = new();
    private readonly List<float> _features = new();
    private readonly List<int> _lengths = new();
    private float[] _outputs = [];

    public SequenceScorer(RecurrentModel model)
    {
        _model = model;
        _network = model.Network.CreateInferenceSibling();
        // Two directions on two cores when there are two (a busy worker makes the call run both on this thread).
        _network.Threads = Math.Min(2, Environment.ProcessorCount);
    }

    /// <summary>Rows collected so far.</summary>
    public int Count => _lengths.Count;

    /// <summary>Outputs of the last <see cref="Run"/>, [Count, O].</summary>
    public ReadOnlySpan<float> Outputs => _outputs.AsSpan(0, _lengths.Count * _model.OutputSize);

    /// <summary>Forgets the collected rows.</summary>
    public void Clear()
    {
        _tokens.Clear();
        _features.Clear();
        _lengths.Clear();
    }

    /// <summary>Adds one row's token keys (validated; <paramref name="row"/> is for messages).</summary>
    public void Add(in VBuffer<uint> tokens, long row) => _lengths.Add(_model.Input.ReadTokens(tokens, row, _tokens));

    /// <summary>Adds one row's dense features.</summary>
    public void Add(in VBuffer<float> features, long row) => _lengths.Add(_model.Input.ReadFeatures(features, row, _features));

    /// <summary>Runs the network over the collected rows.</summary>
    public void Run()
    {
        if (_lengths.Count == 0) return;
        var batch = new RaggedBatch(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_lengths));
        var outputs = Workspace.Ensure(ref _outputs, _lengths.Count * _model.OutputSize);
        if (_model.Input.IsTokens)
            _network.Forward(batch, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_tokens), outputs);
        else
            _network.Forward(batch, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_features), outputs);
    }
}
