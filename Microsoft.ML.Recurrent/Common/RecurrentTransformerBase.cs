using Microsoft.ML.Data;
using Microsoft.ML.Model.OnnxConverter;
using Microsoft.ML.Recurrent.Model;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// Base of the transformers produced by the recurrent trainers: reads the feature column, runs the trained network
/// and adds the task's output columns (Score, and PredictedLabel / Probability where the task has them).
/// <para><see cref="Transform(IDataView)"/> is lazy and scores rows in batches: a second cursor over the input reads
/// the feature column a batch ahead of the rows being served, and each row is matched to its batch by row id. Shuffled
/// cursors and the cursors of a parallel cursor set score one row at a time instead (each cursor of a set sees only
/// part of the rows, so reading ahead would read the whole input once per cursor). A <c>PredictionEngine</c> scores
/// one row per call.</para>
/// <para>Scoring never throws on a row's content. A row with no steps (an empty token vector, e.g. from an empty or
/// punctuation-only text) is scored as "no evidence": pooled features of zero, so the scores come from the head's
/// bias. A row the network cannot read (a NaN or infinite value, a key beyond the vocabulary, a dense length that is
/// not a multiple of the features per step) gets NaN scores and a missing predicted label. Both are counted and
/// reported as warnings through <c>MLContext.Log</c>.</para>
/// <para>ONNX: <c>mlContext.Model.ConvertToOnnx</c> (Microsoft.ML.OnnxConverter) writes the network as standard ONNX
/// operators (see docs/onnx.md); a model with character features or a CRF says so in a
/// <see cref="NotSupportedException"/>.</para>
/// </summary>
public abstract partial class RecurrentTransformerBase : RowToRowTransformerBase, ITransformer
{
    private readonly IHost _host;
    private long _emptyRows, _invalidRows;

    internal RecurrentModel Model { get; }

    internal static long DiagnosticBatchedRows => Interlocked.Read(ref ReadAheadScorer.ServedRows);
    internal static long DiagnosticSingleRows => Interlocked.Read(ref RowOutputs.SingleRows);

    /// <summary>Rows with no steps this transformer has scored as "no evidence" (head bias), over all its cursors and engines.</summary>
    internal long EmptyRowsScored => Interlocked.Read(ref _emptyRows);

    /// <summary>Rows this transformer could not read and scored as NaN, over all its cursors and engines.</summary>
    internal long InvalidRowsScored => Interlocked.Read(ref _invalidRows);

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
        var rowByRow = new RowToRowMapperTransform(_host, input, new Mapper(this, input.Schema), schema => new Mapper(this, schema));
        return new ScoredView(this, input, rowByRow, batched: Model.ScoringBatchSize > 1);
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
        ModelEntry.Write(ctx.Writer, writer =>
        {
            Model.Write(writer);
            SaveTaskFields(writer);
        });
    }

    /// <summary>Model version of the first entry layout, before the integrity envelope (still read).</summary>
    private protected const uint VersionWithoutEnvelope = 0x00010001;

    /// <summary>Model version that brought the integrity envelope, thread count and vocabulary hash.</summary>
    private protected const uint VersionEnveloped = 0x00010002;

    /// <summary>Model version that brought the character input after the vocabulary hash.</summary>
    private protected const uint VersionWithCharacters = 0x00010003;

    /// <summary>Model version written today: a wide input may follow the character input.</summary>
    private protected const uint VersionWithWide = 0x00010004;

    private protected abstract VersionInfo GetVersionInfoCore();

    /// <summary>The output columns of the task.</summary>
    private protected abstract DataViewSchema.DetachedColumn[] GetOutputColumns();

    /// <summary>A getter for output column <paramref name="index"/> that reads the current row's raw network outputs.</summary>
    private protected abstract Delegate MakeOutputGetter(int index, RowOutputs outputs);

    /// <summary>
    /// Reads a <see cref="RecurrentModel"/> from a loader context after ML.NET checked its signature and version; the
    /// returned reader is positioned after it, where a task's own fields follow (see <see cref="SaveTaskFields"/>).
    /// </summary>
    private protected static (RecurrentModel Model, BoundedReader Reader) ReadModel(ModelLoadContext ctx)
    {
        // Branch on the version the entry was written with: 0x00010001 has no envelope, thread count or vocabulary hash.
        uint written = ctx.Header.ModelVerWritten;
        var reader = ModelEntry.Open(ctx, enveloped: written >= VersionEnveloped);
        return (RecurrentModel.Read(reader, written >= VersionWithWide ? 4 : written >= VersionWithCharacters ? 3 : written >= VersionEnveloped ? 2 : 1), reader);
    }

    /// <summary>Reads the model of a task that has no fields of its own.</summary>
    private protected static RecurrentModel ReadModelOnly(ModelLoadContext ctx)
    {
        var (model, reader) = ReadModel(ctx);
        reader.ExpectEnd();
        return model;
    }

    /// <summary>What the scorers compute for each row: the head's outputs, or (featurizer) the representation.</summary>
    private protected virtual ScorerOutput ScorerOutput => ScorerOutput.Head;

    /// <summary>Writes the task's own fields after the model, inside the entry's envelope (none by default).</summary>
    private protected virtual void SaveTaskFields(BinaryWriter writer)
    {
    }

    /// <summary>Counts a row that was scored without a real prediction (see the class remarks).</summary>
    private void CountIssue(RowStatus status)
    {
        if (status == RowStatus.Empty) Interlocked.Increment(ref _emptyRows);
        else Interlocked.Increment(ref _invalidRows);
    }

    /// <summary>
    /// The output of <see cref="Transform"/>. Each sequential cursor, or each cursor set, gets its own
    /// <see cref="ReadAheadScorer"/>, which reads the source once and scores batches ahead for all cursors of the set.
    /// Shuffled cursors, and every cursor when the model's scoring batch size is 1, score row by row.
    /// <para>It is also the step ML.NET's ONNX converter finds when it walks back from a pipeline's output (through
    /// <c>IDataTransform.Source</c>): it writes the network (see <c>RecurrentTransformerBase.Onnx.cs</c>), and it can be
    /// re-applied to other data (<c>ITransformTemplate</c>) as the row-by-row mapping can.</para>
    /// </summary>
    private sealed class ScoredView(RecurrentTransformerBase parent, IDataView source, IDataView rowByRow, bool batched) : ITransformCanSaveOnnx, ITransformTemplate
    {
        public IDataView Source => source;

        public bool CanSaveOnnx(OnnxContext ctx) => true; // what cannot be written is said by SaveAsOnnx, not skipped silently

        public void SaveAsOnnx(OnnxContext ctx) => parent.SaveAsOnnx(ctx, source);

        void ICanSaveModel.Save(ModelSaveContext ctx) => ((ICanSaveModel)rowByRow).Save(ctx);

        IDataTransform ITransformTemplate.ApplyToData(IHostEnvironment env, IDataView newSource) => (IDataTransform)parent.Transform(newSource);

        public bool CanShuffle => rowByRow.CanShuffle;

        public DataViewSchema Schema => rowByRow.Schema;

        public long? GetRowCount() => rowByRow.GetRowCount();

        /// <summary>The same mapping as <c>rowByRow</c> (its schema was validated there), with a fresh read-ahead scorer.</summary>
        private IDataView ReadingAhead()
        {
            var readAhead = new ReadAheadScorer(parent.Model, source, source.Schema[parent.Model.Input.ColumnName].Index, parent.ScorerOutput);
            return new RowToRowMapperTransform(parent._host, source, new Mapper(parent, source.Schema, readAhead, validate: false),
                schema => new Mapper(parent, schema));
        }

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) =>
            batched && rand is null ? ReadingAhead().GetRowCursor(columnsNeeded) : rowByRow.GetRowCursor(columnsNeeded, rand);

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
            batched && rand is null ? ReadingAhead().GetRowCursorSet(columnsNeeded, n) : rowByRow.GetRowCursorSet(columnsNeeded, n, rand);
    }

    private sealed class Mapper : MapperBase
    {
        private readonly RecurrentTransformerBase _parent;
        private readonly ReadAheadScorer? _readAhead;
        private readonly int _featureIndex;

        public Mapper(RecurrentTransformerBase parent, DataViewSchema schema, ReadAheadScorer? readAhead = null, bool validate = true)
            : base(parent._host, schema, parent)
        {
            if (validate)
            {
                parent.Model.Input.CheckCompatible(schema);
                parent.Model.Input.Wide?.ColumnIndex(schema);
                if (parent.Model.Vocabulary is { } trained && VocabularyHash.Of(schema[parent.Model.Input.ColumnName]) is { } actual
                    && !trained.AsSpan().SequenceEqual(actual))
                    throw new ArgumentOutOfRangeException(nameof(schema),
                        $"Feature column '{parent.Model.Input.ColumnName}' has a different vocabulary from the one the model was trained on: " +
                        "its key values (the tokens behind the keys) differ. Score with the featurizer the model was trained with " +
                        "(the same fitted pipeline), or check the model file: its vocabulary entry may be corrupted.");
            }
            _parent = parent;
            _readAhead = readAhead;
            _featureIndex = schema[parent.Model.Input.ColumnName].Index;
            _characterIndex = parent.Model.Input.Characters?.ColumnIndex(schema) ?? -1;
            _wideIndex = parent.Model.Input.Wide?.ColumnIndex(schema) ?? -1;
        }

        private readonly int _wideIndex;

        private readonly int _characterIndex;

        protected override DataViewSchema.DetachedColumn[] GetOutputColumnsCore() => _parent.GetOutputColumns();

        protected override Func<int, bool> GetDependenciesCore(Func<int, bool> activeOutput)
        {
            bool any = Enumerable.Range(0, OutputColumns.Value.Length).Any(activeOutput);
            return column => any && (column == _featureIndex || column == _characterIndex || column == _wideIndex);
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
            var outputs = new RowOutputs(_parent, input, _featureIndex, _readAhead);
            for (int i = 0; i < n; i++)
                if (activeOutput(i))
                    getters[i] = _parent.MakeOutputGetter(i, outputs);
            disposer = outputs.Dispose;
            return getters;
        }

        protected override Delegate MakeGetter(DataViewRow input, int iinfo, Func<int, bool> activeOutput, out Action disposer)
        {
            var outputs = new RowOutputs(_parent, input, _featureIndex, readAhead: null);
            disposer = outputs.Dispose;
            return _parent.MakeOutputGetter(iinfo, outputs);
        }
    }

    /// <summary>
    /// The raw network outputs of the current row of a cursor, computed once per row: taken from the shared
    /// <see cref="ReadAheadScorer"/> when there is one and it has the row, otherwise scored alone. Rows scored without
    /// a real prediction are counted, the first one of each cursor is described in a warning, and a summary is logged
    /// when the cursor is disposed.
    /// </summary>
    private protected sealed class RowOutputs : IDisposable
    {
        /// <summary>Rows scored alone, process-wide (diagnostics for tests).</summary>
        internal static long SingleRows;

        private readonly RecurrentTransformerBase _parent;
        private readonly RecurrentModel _model;
        private readonly DataViewRow _input;
        private readonly RowReader _reader;
        private readonly ValueGetter<DataViewRowId> _id;
        private readonly ReadAheadScorer? _readAhead;
        private SequenceScorer? _single;
        private float[] _current = [];
        private int _currentLength;
        private long _position = -1;
        private long _emptyRows, _invalidRows;
        public RowOutputs(RecurrentTransformerBase parent, DataViewRow input, int featureIndex, ReadAheadScorer? readAhead)
        {
            _parent = parent;
            _model = parent.Model;
            _input = input;
            _reader = new RowReader(_model, input);
            _id = input.GetIdGetter();
            _readAhead = readAhead;
            _readAhead?.Acquire();
        }

        /// <summary>
        /// Raw outputs of the input's current row: [O] for a pooled head, [T, O] for a per-step head (NaN for a row that
        /// could not be read).
        /// </summary>
        public ReadOnlySpan<float> Current()
        {
            long position = _input.Position;
            if (position != _position)
            {
                DataViewRowId id = default;
                if (_readAhead is not null)
                    _id(ref id);
                if (_readAhead is not null && _readAhead.TryTake(id, ref _current, out _currentLength, out var status, out var problem))
                {
                    if (status != RowStatus.Valid) Report(status, position, problem);
                }
                else
                {
                    ScoreSingle(position);
                }
                _position = position;
            }
            return _current.AsSpan(0, _currentLength);
        }

        private void ScoreSingle(long position)
        {
            Interlocked.Increment(ref SingleRows);
            _single ??= new SequenceScorer(_model, _parent.ScorerOutput);
            _single.Clear();
            var status = _reader.AddTo(_single, out var problem);
            _single.Run();
            var row = _single.RowOutputs(0);
            _currentLength = row.Length;
            row.CopyTo(Core.Workspace.Ensure(ref _current, _currentLength));
            if (status != RowStatus.Valid)
                Report(status, position, problem);
        }

        /// <summary>Counts a row scored without a real prediction; the first of this cursor is described in a warning.</summary>
        private void Report(RowStatus status, long position, string? problem)
        {
            _parent.CountIssue(status);
            bool first = _emptyRows + _invalidRows == 0;
            if (status == RowStatus.Empty) _emptyRows++;
            else _invalidRows++;
            if (!first) return;
            using var channel = _parent._host.Start("Scoring");
            channel.Warning(status == RowStatus.Empty
                ? $"Row {position}: the sequence in column '{_model.Input.ColumnName}' is empty; it is scored as \"no evidence\" (pooled features of zero: the head's bias). Further such rows of this cursor are counted and summarized when it is disposed."
                : $"Row {position}: {problem}; its scores are NaN and its predicted label is missing. Further such rows of this cursor are counted and summarized when it is disposed.");
        }

        public void Dispose()
        {
            _readAhead?.Release();
            if (_emptyRows + _invalidRows > 1)
            {
                using var channel = _parent._host.Start("Scoring");
                channel.Warning($"Scored {_emptyRows:N0} row(s) with an empty sequence as \"no evidence\" (the head's bias) and {_invalidRows:N0} row(s) that could not be read as NaN.");
            }
        }
    }
}
