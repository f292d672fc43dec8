using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// Base of the transformers produced by the recurrent trainers: reads the feature column, runs the trained network
/// and adds the task's output columns (Score, and PredictedLabel / Probability where the task has them).
/// <para><see cref="Transform(IDataView)"/> is lazy and scores rows in batches: a second cursor over the input reads
/// the feature column a batch ahead of the rows being served, and each row is matched to its batch by row id (when
/// cursors are shuffled or split, rows are scored one at a time instead). A <c>PredictionEngine</c> scores one row
/// per call.</para>
/// </summary>
public abstract class RecurrentTransformerBase : RowToRowTransformerBase, ITransformer
{
    private readonly IHost _host;

    internal RecurrentModel Model { get; }

    internal static long DiagnosticBatchedRows => Interlocked.Read(ref RowOutputs.BatchedRows);
    internal static long DiagnosticSingleRows => Interlocked.Read(ref RowOutputs.SingleRows);

    /// <summary>Name of the feature column the model reads.</summary>
    public string FeatureColumnName => Model.Input.ColumnName;

    private protected RecurrentTransformerBase(IHost host, RecurrentModel model) : base(host)
    {
        _host = host;
        Model = model;
    }

    /// <summary>Scores <paramref name="input"/> lazily, in batches; the result has the input's columns plus the output columns.</summary>
    public new IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new RowToRowMapperTransform(_host, input, new Mapper(this, input.Schema, input), schema => new Mapper(this, schema, null));
    }

    IDataView ITransformer.Transform(IDataView input) => Transform(input);

    /// <inheritdoc/>
    protected override IRowMapper MakeRowMapper(DataViewSchema schema) => new Mapper(this, schema, null);

    /// <inheritdoc/>
    protected override void SaveModel(ModelSaveContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfoCore());
        Model.Write(ctx.Writer);
    }

    private protected abstract VersionInfo GetVersionInfoCore();

    /// <summary>The output columns of the task.</summary>
    private protected abstract DataViewSchema.DetachedColumn[] GetOutputColumns();

    /// <summary>A getter for output column <paramref name="index"/> that reads the current row's raw network outputs.</summary>
    private protected abstract Delegate MakeOutputGetter(int index, RowOutputs outputs);

    /// <summary>Reads a <see cref="RecurrentModel"/> from a loader context after its version was checked.</summary>
    private protected static RecurrentModel ReadModel(ModelLoadContext ctx)
    {
        try
        {
            return RecurrentModel.Read(ctx.Reader);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"The recurrent model in '{ctx.Directory ?? "the model"}' cannot be read: {e.Message}", e);
        }
    }

    private sealed class Mapper : MapperBase
    {
        private readonly RecurrentTransformerBase _parent;
        private readonly IDataView? _source;
        private readonly int _featureIndex;

        public Mapper(RecurrentTransformerBase parent, DataViewSchema schema, IDataView? source)
            : base(parent._host, schema, parent)
        {
            parent.Model.Input.CheckCompatible(schema);
            _parent = parent;
            _source = source;
            _featureIndex = schema[parent.Model.Input.ColumnName].Index;
        }

        protected override DataViewSchema.DetachedColumn[] GetOutputColumnsCore() => _parent.GetOutputColumns();

        protected override Func<int, bool> GetDependenciesCore(Func<int, bool> activeOutput)
        {
            bool any = Enumerable.Range(0, OutputColumns.Value.Length).Any(activeOutput);
            return column => any && column == _featureIndex;
        }

        protected override void SaveModel(ModelSaveContext ctx) => _parent.SaveModel(ctx);

        public override Delegate[] CreateGetters(DataViewRow input, Func<int, bool> activeOutput, out Action disposer)
        {
            int n = OutputColumns.Value.Length;
            var getters = new Delegate[n];
            if (!Enumerable.Range(0, n).Any(activeOutput))
            {
                disposer = null!;
                return getters;
            }
            // All output columns of a row share one network evaluation.
            var outputs = new RowOutputs(_parent.Model, input, _featureIndex, _source);
            for (int i = 0; i < n; i++)
                if (activeOutput(i))
                    getters[i] = _parent.MakeOutputGetter(i, outputs);
            disposer = outputs.Dispose;
            return getters;
        }

        protected override Delegate MakeGetter(DataViewRow input, int iinfo, Func<int, bool> activeOutput, out Action disposer)
        {
            var outputs = new RowOutputs(_parent.Model, input, _featureIndex, source: null);
            disposer = outputs.Dispose;
            return _parent.MakeOutputGetter(iinfo, outputs);
        }
    }

    /// <summary>
    /// The raw network outputs of the current row of a cursor, computed once per row. With a source view it scores
    /// a batch ahead through a second cursor and matches rows by id; otherwise (or when ids do not line up) one row at a time.
    /// </summary>
    private protected sealed class RowOutputs : IDisposable
    {
        /// <summary>Rows served from a read-ahead batch and rows scored alone, process-wide (diagnostics for tests).</summary>
        internal static long BatchedRows, SingleRows;

        private readonly RecurrentModel _model;
        private readonly DataViewRow _input;
        private readonly ValueGetter<VBuffer<uint>>? _tokens;
        private readonly ValueGetter<VBuffer<float>>? _features;
        private readonly ValueGetter<DataViewRowId> _id;
        private readonly SequenceScorer _single;
        private readonly float[] _current;
        private long _position = -1;

        // Read-ahead state.
        private readonly DataViewRowCursor? _leader;
        private readonly ValueGetter<VBuffer<uint>>? _leaderTokens;
        private readonly ValueGetter<VBuffer<float>>? _leaderFeatures;
        private readonly ValueGetter<DataViewRowId>? _leaderId;
        private readonly SequenceScorer? _batchScorer;
        private readonly List<DataViewRowId> _batchIds = new();
        private int _nextSlot;
        private bool _batchScored;
        private const int MaxSkip = 1 << 14;
        private bool _aligned = true;
        private VBuffer<uint> _tokenBuffer;
        private VBuffer<float> _featureBuffer;

        public RowOutputs(RecurrentModel model, DataViewRow input, int featureIndex, IDataView? source)
        {
            _model = model;
            _input = input;
            var column = input.Schema[featureIndex];
            if (model.Input.IsTokens) _tokens = input.GetGetter<VBuffer<uint>>(column);
            else _features = input.GetGetter<VBuffer<float>>(column);
            _id = input.GetIdGetter();
            _single = new SequenceScorer(model);
            _current = new float[model.OutputSize];
            if (source is not null && model.ScoringBatchSize > 1)
            {
                _leader = source.GetRowCursor(new[] { source.Schema[featureIndex] });
                if (model.Input.IsTokens) _leaderTokens = _leader.GetGetter<VBuffer<uint>>(_leader.Schema[featureIndex]);
                else _leaderFeatures = _leader.GetGetter<VBuffer<float>>(_leader.Schema[featureIndex]);
                _leaderId = _leader.GetIdGetter();
                _batchScorer = new SequenceScorer(model);
            }
        }

        /// <summary>Raw outputs [O] of the input's current row.</summary>
        public ReadOnlySpan<float> Current()
        {
            long position = _input.Position;
            if (position != _position)
            {
                if (!TryFromBatch(position))
                    ScoreSingle(position);
                _position = position;
            }
            return _current;
        }

        private void ScoreSingle(long position)
        {
            Interlocked.Increment(ref SingleRows);
            _single.Clear();
            if (_tokens is not null)
            {
                _tokens(ref _tokenBuffer);
                _single.Add(_tokenBuffer, position);
            }
            else
            {
                _features!(ref _featureBuffer);
                _single.Add(_featureBuffer, position);
            }
            _single.Run();
            _single.Outputs.CopyTo(_current);
        }

        /// <summary>
        /// Serves the row from the read-ahead batch. The follower (the cursor being served) may see every row of the
        /// source in order, or — when ML.NET splits a cursor into parallel cursors — an increasing subsequence of it;
        /// so rows are matched by id: the leader skips forward (reading, not scoring) to the requested row and then
        /// scores it together with the rows that follow it.
        /// </summary>
        private bool TryFromBatch(long position)
        {
            if (_leader is null || !_aligned)
                return false;
            DataViewRowId id = default;
            _id(ref id);
            int slot = _batchIds.IndexOf(id, _nextSlot);
            if (slot < 0 && !ReadBatchStartingAt(id))
            {
                _aligned = false; // shuffled or otherwise unrelated order: score one row at a time from now on
                return false;
            }
            if (slot < 0) slot = 0;
            if (!_batchScored)
            {
                _batchScorer!.Run();
                _batchScored = true;
            }
            _nextSlot = slot + 1;
            int o = _model.OutputSize;
            _batchScorer!.Outputs.Slice(slot * o, o).CopyTo(_current);
            Interlocked.Increment(ref BatchedRows);
            return true;
        }

        /// <summary>Moves the leader to the row with <paramref name="id"/> (at most <see cref="MaxSkip"/> rows on) and reads a batch from it.</summary>
        private bool ReadBatchStartingAt(DataViewRowId id)
        {
            _batchIds.Clear();
            _batchScorer!.Clear();
            _batchScored = false;
            _nextSlot = 0;
            DataViewRowId leaderId = default;
            for (int skipped = 0; ; skipped++)
            {
                if (skipped > MaxSkip || !_leader!.MoveNext())
                    return false;
                _leaderId!(ref leaderId);
                if (leaderId.Equals(id))
                    break;
            }
            while (true)
            {
                if (_leaderTokens is not null)
                {
                    _leaderTokens(ref _tokenBuffer);
                    _batchScorer.Add(_tokenBuffer, _leader.Position);
                }
                else
                {
                    _leaderFeatures!(ref _featureBuffer);
                    _batchScorer.Add(_featureBuffer, _leader.Position);
                }
                _batchIds.Add(leaderId);
                if (_batchIds.Count == _model.ScoringBatchSize || !_leader.MoveNext())
                    return true;
                _leaderId!(ref leaderId);
            }
        }

        public void Dispose() => _leader?.Dispose();
    }
}
