using Microsoft.ML.Data;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// Reads a text or key-vector column into the one stream of ids a language model trains on: end of row, the first
/// row's ids, end of row, the second row's, …, end of row.
/// </summary>
internal static class LanguageModelStream
{
    public static int[] Read(IDataView data, string columnName, LanguageModelVocabulary vocabulary, string what)
    {
        var column = data.Schema[columnName];
        var ids = new List<int> { LanguageModelVocabulary.EndOfRow };
        long rows = 0;
        using (var cursor = data.GetRowCursor([column]))
        {
            if (vocabulary.IsCharacters)
            {
                var getter = cursor.GetGetter<ReadOnlyMemory<char>>(column);
                ReadOnlyMemory<char> text = default;
                while (cursor.MoveNext())
                {
                    getter(ref text);
                    vocabulary.AppendCharacters(text.Span, ids);
                    ids.Add(LanguageModelVocabulary.EndOfRow);
                    rows++;
                }
            }
            else
            {
                var getter = cursor.GetGetter<VBuffer<uint>>(column);
                VBuffer<uint> keys = default;
                while (cursor.MoveNext())
                {
                    getter(ref keys);
                    foreach (uint k in keys.DenseValues()) ids.Add(vocabulary.OfKey(k));
                    ids.Add(LanguageModelVocabulary.EndOfRow);
                    rows++;
                }
            }
        }
        if (ids.Count < 2)
            throw new InvalidOperationException($"The {what} data has no rows in column '{columnName}'.");
        if (ids.Count > int.MaxValue / 2)
            throw new InvalidOperationException($"The {what} data holds more than {int.MaxValue / 2:N0} tokens.");
        return [.. ids];
    }
}
