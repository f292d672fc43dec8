using Microsoft.ML.Data;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// Scores the rows of a source view in batches, ahead of the cursors that serve them. One instance serves all cursors
/// of one cursor set (or the single cursor of a sequential read): it reads the source once, in order, through its own
/// cursor over the feature column, scores <see cref="RecurrentModel.ScoringBatchSize"/> rows at a time and keeps each
/// row's outputs until the cursor that serves that row (matched by row id) takes them. A cursor whose row is not found
/// within a bounded distance — a shuffled or otherwise unrelated order — scores the row itself instead.
/// Thread-safe: the cursors of a set call it from their own threads.
/// </summary>
internal sealed class ReadAheadScorer
{
    /// <summary>How far the leader reads past the pending rows looking for a requested row before giving up on order.</summary>
    private const int MaxSkip = 1 << 14;

    private readonly RecurrentModel _model;
    private readonly IDataView _source;
    private readonly int _featureIndex;
    private readonly object _gate = new();
    private readonly Dictionary<DataViewRowId, (Batch Batch, int Slot)> _pending = new();
    private readonly Stack<Batch> _free = new();
    private readonly int _maxPending;
    private DataViewRowCursor? _leader;
    private RowReader? _reader;
    private ValueGetter<DataViewRowId>? _id;
    private SequenceScorer? _scorer;
    private int _users;
    private bool _exhausted, _unaligned;

    private readonly ScorerOutput _output;

    public ReadAheadScorer(RecurrentModel model, IDataView source, int featureIndex, ScorerOutput output)
    {
        _output = output;
        _model = model;
        _source = source;
        _featureIndex = featureIndex;
        // Rows scored but not yet taken: enough for the cursors of a set to drift apart by many batches.
        _maxPending = Math.Max(64 * model.ScoringBatchSize, 4096);
    }

    /// <summary>Rows served from a batch, process-wide (diagnostics for tests).</summary>
    internal static long ServedRows;

    /// <summary>Registers a cursor that will ask for rows; pair with <see cref="Release"/>.</summary>
    public void Acquire()
    {
        lock (_gate) _users++;
    }

    /// <summary>Unregisters a cursor; the last one closes the leader and drops the pending rows.</summary>
    public void Release()
    {
        lock (_gate)
        {
            if (--_users > 0) return;
            _leader?.Dispose();
            _leader = null;
            _pending.Clear();
            _scorer = null;
            _exhausted = _unaligned = false;
        }
    }

    /// <summary>
    /// Copies the outputs of the row with <paramref name="id"/> into <paramref name="outputs"/> (grown when too small;
    /// <paramref name="length"/> values) when it was or can be scored ahead; false when the caller must score the row itself.
    /// </summary>
    public bool TryTake(DataViewRowId id, ref float[] outputs, out int length, out RowStatus status, out string? problem)
    {
        lock (_gate)
        {
            status = RowStatus.Valid;
            problem = null;
            length = 0;
            if (!_pending.Remove(id, out var found))
            {
                if (!ReadUntil(id))
                    return false;
                _pending.Remove(id, out found);
            }
            var (batch, slot) = found;
            var row = batch.Outputs.AsSpan(batch.Starts[slot], batch.Starts[slot + 1] - batch.Starts[slot]);
            length = row.Length;
            row.CopyTo(Core.Workspace.Ensure(ref outputs, length));
            status = batch.Status[slot];
            problem = batch.Problems[slot];
            if (--batch.Remaining == 0)
                _free.Push(batch);
            Interlocked.Increment(ref ServedRows);
            return true;
        }
    }

    /// <summary>Scores batches ahead until the row with <paramref name="id"/> is pending, within the bounds.</summary>
    private bool ReadUntil(DataViewRowId id)
    {
        if (_exhausted || _unaligned)
            return false;
        if (_leader is null)
        {
            _leader = _source.GetRowCursor(RowReader.Columns(_model, _source.Schema));
            _reader = new RowReader(_model, _leader);
            _id = _leader.GetIdGetter();
            _scorer = new SequenceScorer(_model, _output);
        }
        for (int read = 0; read <= MaxSkip && _pending.Count < _maxPending;)
        {
            int count = ReadBatch(out bool contains, id);
            if (count == 0)
            {
                _exhausted = true;
                return false;
            }
            if (contains)
                return true;
            read += count;
        }
        // Far ahead of the requested row, or too many rows waiting for other cursors: the order is not the source's.
        if (_pending.Count < _maxPending) _unaligned = true;
        return false;
    }

    /// <summary>Reads and scores the next batch; returns its row count (0 at the end of the source).</summary>
    private int ReadBatch(out bool contains, DataViewRowId wanted)
    {
        contains = false;
        var scorer = _scorer!;
        scorer.Clear();
        var batch = _free.Count > 0 ? _free.Pop() : new Batch(_model.ScoringBatchSize);
        int rows = 0;
        DataViewRowId id = default;
        while (rows < _model.ScoringBatchSize && _leader!.MoveNext())
        {
            _id!(ref id);
            batch.Status[rows] = _reader!.AddTo(scorer, out var problem);
            batch.Problems[rows] = problem;
            _pending[id] = (batch, rows);
            contains |= id.Equals(wanted);
            rows++;
        }
        if (rows == 0)
        {
            _free.Push(batch);
            return 0;
        }
        scorer.Run();
        // Rows' outputs back to back: [O] each (pooled head) or [T, O] (per-step head).
        batch.Starts[0] = 0;
        for (int i = 0; i < rows; i++) batch.Starts[i + 1] = batch.Starts[i] + scorer.RowOutputs(i).Length;
        var outputs = Core.Workspace.Ensure(ref batch.Outputs, batch.Starts[rows]);
        for (int i = 0; i < rows; i++) scorer.RowOutputs(i).CopyTo(outputs.Slice(batch.Starts[i]));
        batch.Remaining = rows;
        return rows;
    }

    /// <summary>The outputs of one scored batch, kept until every row was taken.</summary>
    private sealed class Batch(int size)
    {
        public float[] Outputs = [];                              // the rows' outputs back to back
        public readonly int[] Starts = new int[size + 1];         // where row i's outputs start in Outputs
        public readonly RowStatus[] Status = new RowStatus[size];
        public readonly string?[] Problems = new string?[size];
        public int Remaining;
    }
}
