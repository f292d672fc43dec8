using Microsoft.ML.Data;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// Reads a model's input columns — the token keys or dense features, and the words of a character input — from the
/// current row of a cursor and adds them to a <see cref="SequenceScorer"/>. Shared by the single-row and the read-ahead
/// scoring paths, so both read rows identically.
/// </summary>
internal sealed class RowReader
{
    private readonly ValueGetter<VBuffer<uint>>? _tokens;
    private readonly ValueGetter<VBuffer<float>>? _features;
    private readonly ValueGetter<VBuffer<ReadOnlyMemory<char>>>? _words;
    private readonly ValueGetter<VBuffer<float>>? _wide;
    private VBuffer<uint> _tokenBuffer;
    private VBuffer<float> _wideBuffer;
    private VBuffer<float> _featureBuffer;
    private VBuffer<ReadOnlyMemory<char>> _wordBuffer;

    public RowReader(RecurrentModel model, DataViewRow row)
    {
        var input = model.Input;
        var column = row.Schema[input.ColumnName];
        if (input.IsTokens) _tokens = row.GetGetter<VBuffer<uint>>(column);
        else _features = row.GetGetter<VBuffer<float>>(column);
        if (input.Characters is { } characters)
            _words = row.GetGetter<VBuffer<ReadOnlyMemory<char>>>(row.Schema[characters.ColumnIndex(row.Schema)]);
        if (input.Wide is { } wide)
            _wide = row.GetGetter<VBuffer<float>>(row.Schema[wide.ColumnIndex(row.Schema)]);
    }

    /// <summary>The columns a model reads from a schema: the feature column, and the character and wide columns when it has them.</summary>
    public static IEnumerable<DataViewSchema.Column> Columns(RecurrentModel model, DataViewSchema schema)
    {
        yield return schema[model.Input.ColumnName];
        if (model.Input.Characters is { } characters)
            yield return schema[characters.ColumnIndex(schema)];
        if (model.Input.Wide is { } wide)
            yield return schema[wide.ColumnIndex(schema)];
    }

    /// <summary>Adds the current row to <paramref name="scorer"/>; returns its status (<paramref name="problem"/> says why a row is invalid).</summary>
    public RowStatus AddTo(SequenceScorer scorer, out string? problem)
    {
        _wide?.Invoke(ref _wideBuffer);
        if (_tokens is null)
        {
            _features!(ref _featureBuffer);
            return scorer.Add(_featureBuffer, _wideBuffer, out problem);
        }
        _tokens(ref _tokenBuffer);
        _words?.Invoke(ref _wordBuffer);
        return scorer.Add(_tokenBuffer, _wordBuffer, _wideBuffer, out problem);
    }
}
