using System.Runtime.InteropServices;
using Microsoft.ML.Data;
using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Model;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// Scores rows in batches with its own inference copy of the network (shared weights, private activations), so
/// each cursor can score independently. Collect rows with <c>Add</c>, then <see cref="Run"/>.
/// <para>Scoring is total: every row gets an output. A row with no steps gets the network's output for "no evidence"
/// (pooled features of zero, so the head's bias); a row the network cannot read (a non-finite value, a key beyond the
/// vocabulary, a length that is not a multiple of the features per step) gets NaN outputs.</para>
/// </summary>
internal sealed class SequenceScorer
{
    /// <summary>
    /// Activation memory (bytes, estimated) above which the scorer lets go of its workspace after a run, so that one
    /// very long row does not keep hundreds of megabytes alive for the scorer's lifetime.
    /// </summary>
    internal const long RetainedWorkspaceLimit = 64L << 20;

    private readonly RecurrentModel _model;
    private RecurrentNetwork _network;
    private readonly List<int> _tokens = new();
    private readonly List<float> _features = new();
    private readonly List<int> _lengths = new();      // lengths of the valid rows
    private readonly List<RowStatus> _status = new(); // per row added
    private float[] _outputs = [];
    private float[] _validOutputs = [];
    private RaggedBatch? _batch; // reused: one PredictionEngine call allocates nothing once the longest row was seen
    private bool _trimOnClear;

    public SequenceScorer(RecurrentModel model)
    {
        _model = model;
        // Two directions on two threads at most (a busy worker makes the call run both on this thread).
        Threads = Math.Min(2, model.ScoringThreads);
        _network = CreateNetwork();
    }

    /// <summary>Threads the network uses for one batch (at most 2: the two directions of a layer).</summary>
    public int Threads { get; }

    private RecurrentNetwork CreateNetwork()
    {
        var network = _model.Network.CreateInferenceSibling();
        network.Threads = Threads;
        return network;
    }

    /// <summary>Rows collected so far.</summary>
    public int Count => _status.Count;

    /// <summary>Outputs of the last <see cref="Run"/>, [Count, O].</summary>
    public ReadOnlySpan<float> Outputs => _outputs.AsSpan(0, _status.Count * _model.OutputSize);

    /// <summary>Status of row <paramref name="index"/> of the collected rows.</summary>
    public RowStatus StatusOf(int index) => _status[index];

    /// <summary>Forgets the collected rows.</summary>
    public void Clear()
    {
        _tokens.Clear();
        _features.Clear();
        _lengths.Clear();
        _status.Clear();
        if (_trimOnClear)
        {
            _tokens.TrimExcess();
            _features.TrimExcess();
            _batch = null;
            _outputs = [];
            _validOutputs = [];
            _trimOnClear = false;
        }
    }

    /// <summary>Adds one row's token keys; returns its status (<paramref name="problem"/> says why a row is invalid).</summary>
    public RowStatus Add(in VBuffer<uint> tokens, out string? problem) =>
        Record(_model.Input.ReadTokens(tokens, _tokens, out int length, out problem), length);

    /// <summary>Adds one row's dense features; returns its status.</summary>
    public RowStatus Add(in VBuffer<float> features, out string? problem) =>
        Record(_model.Input.ReadFeatures(features, _features, out int steps, out problem), steps);

    private RowStatus Record(RowStatus status, int length)
    {
        _status.Add(status);
        if (status == RowStatus.Valid) _lengths.Add(length);
        return status;
    }

    /// <summary>Runs the network over the valid rows and fills the outputs of every row.</summary>
    public void Run()
    {
        int o = _model.OutputSize, rows = _status.Count;
        if (rows == 0) return;
        var outputs = Workspace.Ensure(ref _outputs, rows * o);
        bool allValid = _lengths.Count == rows; // the usual case: the network writes straight into the outputs
        Span<float> valid = allValid ? outputs : Workspace.Ensure(ref _validOutputs, _lengths.Count * o);
        if (_lengths.Count > 0)
        {
            var lengths = CollectionsMarshal.AsSpan(_lengths);
            var batch = _batch ??= new RaggedBatch(lengths);
            batch.Reset(lengths);
            if (_model.Input.IsTokens)
                _network.Forward(batch, CollectionsMarshal.AsSpan(_tokens), valid);
            else
                _network.Forward(batch, CollectionsMarshal.AsSpan(_features), valid);
        }
        if (!allValid)
        {
            // Place the valid rows' outputs; empty rows get the head's output for zero pooled features, invalid rows NaN.
            for (int i = 0, v = 0; i < rows; i++)
            {
                var row = outputs.Slice(i * o, o);
                switch (_status[i])
                {
                    case RowStatus.Valid: valid.Slice(v++ * o, o).CopyTo(row); break;
                    case RowStatus.Empty: _network.ForwardEmpty(row); break;
                    default: row.Fill(float.NaN); break;
                }
            }
        }
        if (_network.EstimatedWorkspaceBytes > RetainedWorkspaceLimit)
        {
            // The large activations go with the old copy; the row buffers shrink back at the next Clear.
            _network = CreateNetwork();
            _trimOnClear = true;
        }
    }
}
