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
    private readonly List<int> _rowSteps = new();     // output rows of each row added: 1 (pooled head), or its steps (per-step head)
    private int[] _rowStarts = [];                    // first output row of each row added, [Count + 1]
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

    /// <summary>
    /// Outputs of row <paramref name="index"/> from the last <see cref="Run"/>: [O] for a pooled head, [T, O] for a
    /// per-step head (T = the row's steps; 0 for an empty row; NaN values for a row that could not be read).
    /// </summary>
    public ReadOnlySpan<float> RowOutputs(int index)
    {
        int o = _model.OutputSize;
        return _outputs.AsSpan(_rowStarts[index] * o, _rowSteps[index] * o);
    }

    /// <summary>Status of row <paramref name="index"/> of the collected rows.</summary>
    public RowStatus StatusOf(int index) => _status[index];

    /// <summary>Forgets the collected rows.</summary>
    public void Clear()
    {
        _tokens.Clear();
        _features.Clear();
        _lengths.Clear();
        _status.Clear();
        _rowSteps.Clear();
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
        _rowSteps.Add(_network.Head.PerStep ? (status == RowStatus.Empty ? 0 : length) : 1);
        return status;
    }

    /// <summary>Runs the network over the valid rows and fills the outputs of every row.</summary>
    public void Run()
    {
        int o = _model.OutputSize, rows = _status.Count;
        if (rows == 0) return;
        var starts = Workspace.Ensure(ref _rowStarts, rows + 1);
        starts[0] = 0;
        for (int i = 0; i < rows; i++) starts[i + 1] = starts[i] + _rowSteps[i];
        var outputs = Workspace.Ensure(ref _outputs, starts[rows] * o);
        bool allValid = _lengths.Count == rows; // the usual case: the network writes straight into the outputs
        int validRows = _network.Head.PerStep ? Sum(_lengths) : _lengths.Count;
        Span<float> valid = allValid ? outputs : Workspace.Ensure(ref _validOutputs, validRows * o);
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
            // Place the valid rows' outputs; an empty row gets the pooled head's output for zero pooled features (a
            // per-step head has no step to output), an invalid row NaN.
            int next = 0;
            for (int i = 0; i < rows; i++)
            {
                var row = outputs.Slice(starts[i] * o, _rowSteps[i] * o);
                switch (_status[i])
                {
                    case RowStatus.Valid: valid.Slice(next, row.Length).CopyTo(row); next += row.Length; break;
                    case RowStatus.Empty: if (!row.IsEmpty) _network.ForwardEmpty(row); break;
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

    private static int Sum(List<int> values)
    {
        int total = 0;
        foreach (int v in values) total += v;
        return total;
    }
}
