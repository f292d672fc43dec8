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
/// <para>What a row's output is: the head's outputs ([O], or [T, O] for a per-step head), or with
/// <see cref="ScorerOutput.Representation"/> the pooled representation followed by every step's top-layer state
/// ([P + T·D·H]; zeros and no steps for an empty row).</para>
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
    private readonly List<int> _characters = new();          // the valid rows' tokens' characters (character input)
    private readonly List<int> _characterLengths = new();    // one per token of the valid rows
    private readonly List<float> _features = new();
    private readonly List<int> _wideStarts = [0];             // wide & deep: first wide entry of each row added, [Count + 1]
    private readonly List<int> _wideIndices = new();          // every row's wide entries (none for an invalid row)
    private readonly List<float> _wideValues = new();
    private readonly List<int> _validWideStarts = new();      // the valid rows' entries, when some rows are not valid
    private readonly List<int> _validWideIndices = new();
    private readonly List<float> _validWideValues = new();
    private readonly List<int> _lengths = new();      // lengths of the valid rows
    private readonly List<RowStatus> _status = new(); // per row added
    private readonly List<int> _rowSizes = new();     // output values of each row added
    private int[] _rowStarts = [];                    // first output value of each row added, [Count + 1]
    private readonly ScorerOutput _output;
    private float[] _outputs = [];
    private float[] _validOutputs = [];
    private RaggedBatch? _batch; // reused: one PredictionEngine call allocates nothing once the longest row was seen
    private bool _trimOnClear;

    public SequenceScorer(RecurrentModel model, ScorerOutput output = ScorerOutput.Head)
    {
        _model = model;
        _output = output;
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
    /// per-step head (T = the row's steps; 0 for an empty row; NaN values for a row that could not be read); with
    /// <see cref="ScorerOutput.Representation"/>, [P + T·D·H].
    /// </summary>
    public ReadOnlySpan<float> RowOutputs(int index) => _outputs.AsSpan(_rowStarts[index], _rowSizes[index]);

    /// <summary>Forgets the collected rows.</summary>
    public void Clear()
    {
        _tokens.Clear();
        _features.Clear();
        _characters.Clear();
        _characterLengths.Clear();
        _lengths.Clear();
        _status.Clear();
        _rowSizes.Clear();
        _wideStarts.Clear();
        _wideStarts.Add(0);
        _wideIndices.Clear();
        _wideValues.Clear();
        if (_trimOnClear)
        {
            _tokens.TrimExcess();
            _features.TrimExcess();
            _wideIndices.TrimExcess();
            _wideValues.TrimExcess();
            _characters.TrimExcess();
            _characterLengths.TrimExcess();
            _batch = null;
            _outputs = [];
            _validOutputs = [];
            _trimOnClear = false;
        }
    }

    /// <summary>Adds one row's token keys; returns its status (<paramref name="problem"/> says why a row is invalid).</summary>
    public RowStatus Add(in VBuffer<uint> tokens, out string? problem) => Add(tokens, default, default, out problem);

    /// <summary>Adds one row's token keys and, for a character input, its words (one per token).</summary>
    public RowStatus Add(in VBuffer<uint> tokens, in VBuffer<ReadOnlyMemory<char>> words, out string? problem) => Add(tokens, words, default, out problem);

    /// <summary>
    /// Adds one row's token keys, for a character input its words (one per token), and for a wide &amp; deep model its
    /// wide features; returns its status (<paramref name="problem"/> says why a row is invalid, e.g. words not aligned
    /// with the tokens, or a NaN wide feature).
    /// </summary>
    public RowStatus Add(in VBuffer<uint> tokens, in VBuffer<ReadOnlyMemory<char>> words, in VBuffer<float> wide, out string? problem)
    {
        int before = _tokens.Count, rowCharacters = _characters.Count, rowCharacterLengths = _characterLengths.Count;
        var status = _model.Input.ReadTokens(tokens, _tokens, out int length, out problem);
        if (status == RowStatus.Valid && _model.Input.Characters is { } characters)
        {
            int charactersBefore = _characters.Count, lengthsBefore = _characterLengths.Count;
            status = characters.ReadWords(words, tokens.Length, length, _characters, _characterLengths, raw: false, out problem);
            if (status != RowStatus.Valid)
            {
                _tokens.RemoveRange(before, _tokens.Count - before);
                _characters.RemoveRange(charactersBefore, _characters.Count - charactersBefore);
                _characterLengths.RemoveRange(lengthsBefore, _characterLengths.Count - lengthsBefore);
            }
        }
        if (status != RowStatus.Invalid && !ReadWide(wide, ref problem))
        {
            _tokens.RemoveRange(before, _tokens.Count - before);
            _characters.RemoveRange(rowCharacters, _characters.Count - rowCharacters);
            _characterLengths.RemoveRange(rowCharacterLengths, _characterLengths.Count - rowCharacterLengths);
            status = RowStatus.Invalid;
        }
        return Record(status, length);
    }

    /// <summary>Adds one row's dense features; returns its status.</summary>
    public RowStatus Add(in VBuffer<float> features, out string? problem) => Add(features, default, out problem);

    /// <summary>Adds one row's dense features and, for a wide &amp; deep model, its wide features; returns its status.</summary>
    public RowStatus Add(in VBuffer<float> features, in VBuffer<float> wide, out string? problem)
    {
        int before = _features.Count;
        var status = _model.Input.ReadFeatures(features, _features, out int steps, out problem);
        if (status != RowStatus.Invalid && !ReadWide(wide, ref problem))
        {
            _features.RemoveRange(before, _features.Count - before);
            status = RowStatus.Invalid;
        }
        return Record(status, steps);
    }

    /// <summary>Reads the row's wide features (a wide &amp; deep model); false, with the problem, when they cannot be read.</summary>
    private bool ReadWide(in VBuffer<float> wide, ref string? problem)
    {
        if (_model.Input.Wide is not { } input) return true;
        var status = input.Read(wide, _wideIndices, _wideValues, out var wideProblem);
        if (status == RowStatus.Valid) return true;
        problem = wideProblem;
        return false;
    }

    private RowStatus Record(RowStatus status, int length)
    {
        _wideStarts.Add(_wideIndices.Count);
        _status.Add(status);
        if (status == RowStatus.Valid) _lengths.Add(length);
        int steps = status == RowStatus.Empty ? 0 : length;
        _rowSizes.Add(_output == ScorerOutput.Representation ? _network.RepresentationSize + steps * _network.StateSize
            : _network.Head.PerStep ? steps * _model.OutputSize : _model.OutputSize);
        return status;
    }

    /// <summary>Runs the network over the valid rows and fills the outputs of every row.</summary>
    public void Run()
    {
        int rows = _status.Count;
        if (rows == 0) return;
        var starts = Workspace.Ensure(ref _rowStarts, rows + 1);
        starts[0] = 0;
        for (int i = 0; i < rows; i++) starts[i + 1] = starts[i] + _rowSizes[i];
        var outputs = Workspace.Ensure(ref _outputs, starts[rows]);
        if (_output == ScorerOutput.Representation)
        {
            Represent(outputs, starts);
        }
        else
        {
            // The head's outputs of the valid rows are contiguous; when every row is valid (the usual case) they are the outputs.
            bool allValid = _lengths.Count == rows;
            int validSize = _network.Head.PerStep ? Sum(_lengths) * _model.OutputSize : _lengths.Count * _model.OutputSize;
            Span<float> valid = allValid ? outputs : Workspace.Ensure(ref _validOutputs, validSize);
            if (_lengths.Count > 0)
                _network.Forward(Batch(), Data(), valid);
            if (!allValid)
            {
                // Place the valid rows' outputs; an empty row gets the pooled head's output for zero pooled features
                // (a per-step head has no step to output), an invalid row NaN.
                int next = 0;
                for (int i = 0; i < rows; i++)
                {
                    var row = outputs.Slice(starts[i], _rowSizes[i]);
                    switch (_status[i])
                    {
                        case RowStatus.Valid: valid.Slice(next, row.Length).CopyTo(row); next += row.Length; break;
                        case RowStatus.Empty:
                            if (!row.IsEmpty)
                            {
                                int from = _wideStarts[i], count = _wideStarts[i + 1] - from;
                                _network.ForwardEmpty(row, CollectionsMarshal.AsSpan(_wideIndices).Slice(from, count), CollectionsMarshal.AsSpan(_wideValues).Slice(from, count));
                            }
                            break;
                        default: row.Fill(float.NaN); break;
                    }
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

    /// <summary>The layout of the valid rows (one batch kept and reset, so a call allocates nothing in steady state).</summary>
    private RaggedBatch Batch()
    {
        var lengths = CollectionsMarshal.AsSpan(_lengths);
        var batch = _batch ??= new RaggedBatch(lengths);
        batch.Reset(lengths);
        return batch;
    }

    private SequenceData Data()
    {
        var (starts, indices, values) = ValidWide();
        return _model.Input.IsTokens
            ? new SequenceData
            {
                Tokens = CollectionsMarshal.AsSpan(_tokens),
                Characters = CollectionsMarshal.AsSpan(_characters),
                CharacterLengths = CollectionsMarshal.AsSpan(_characterLengths),
                WideStarts = CollectionsMarshal.AsSpan(starts), WideIndices = CollectionsMarshal.AsSpan(indices), WideValues = CollectionsMarshal.AsSpan(values),
            }
            : new SequenceData
            {
                Features = CollectionsMarshal.AsSpan(_features),
                WideStarts = CollectionsMarshal.AsSpan(starts), WideIndices = CollectionsMarshal.AsSpan(indices), WideValues = CollectionsMarshal.AsSpan(values),
            };
    }

    /// <summary>The valid rows' wide entries in compressed rows (none without a wide part): every row's when all are valid.</summary>
    private (List<int>? Starts, List<int>? Indices, List<float>? Values) ValidWide()
    {
        if (_model.Input.Wide is null) return default;
        if (_lengths.Count == _status.Count)
            return (_wideStarts, _wideIndices, _wideValues);
        _validWideStarts.Clear();
        _validWideIndices.Clear();
        _validWideValues.Clear();
        _validWideStarts.Add(0);
        for (int i = 0; i < _status.Count; i++)
        {
            if (_status[i] != RowStatus.Valid) continue;
            int from = _wideStarts[i], count = _wideStarts[i + 1] - from;
            _validWideIndices.AddRange(CollectionsMarshal.AsSpan(_wideIndices).Slice(from, count));
            _validWideValues.AddRange(CollectionsMarshal.AsSpan(_wideValues).Slice(from, count));
            _validWideStarts.Add(_validWideIndices.Count);
        }
        return (_validWideStarts, _validWideIndices, _validWideValues);
    }

    /// <summary>Every row's pooled representation and step states: [P + T·W] per row, zeros for empty rows, NaN for invalid ones.</summary>
    private void Represent(Span<float> outputs, ReadOnlySpan<int> starts)
    {
        int p = _network.RepresentationSize, w = _network.StateSize, validRows = _lengths.Count;
        int steps = Sum(_lengths);
        var pooled = Workspace.Ensure(ref _validOutputs, validRows * p + steps * w);
        if (validRows > 0)
            _network.Represent(Batch(), Data(), pooled.Slice(0, validRows * p), pooled.Slice(validRows * p, steps * w));
        int v = 0, step = 0;
        for (int i = 0; i < _status.Count; i++)
        {
            var row = outputs.Slice(starts[i], _rowSizes[i]);
            switch (_status[i])
            {
                case RowStatus.Valid:
                {
                    int length = _lengths[v];
                    pooled.Slice(v * p, p).CopyTo(row);
                    pooled.Slice(validRows * p + step * w, length * w).CopyTo(row.Slice(p));
                    v++;
                    step += length;
                    break;
                }
                case RowStatus.Empty: row.Clear(); break;
                default: row.Fill(float.NaN); break;
            }
        }
    }
}

/// <summary>What a <see cref="SequenceScorer"/> produces for each row.</summary>
internal enum ScorerOutput
{
    /// <summary>The head's outputs: [O] per row, or [T, O] for a per-step head.</summary>
    Head,
    /// <summary>The pooled representation and every step's top-layer state: [P + T·D·H] per row.</summary>
    Representation,
}
