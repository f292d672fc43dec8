using Microsoft.ML.Data;

namespace Microsoft.ML.Recurrent;

/// <summary>Computes <see cref="TaggingMetrics"/> over a scored view (see <c>EvaluateTagging</c>).</summary>
internal static class TaggingEvaluator
{
    public static TaggingMetrics Evaluate(IDataView data, string labelColumnName, string predictedColumnName, string featureColumnName)
    {
        ArgumentNullException.ThrowIfNull(data);
        var schema = data.Schema;
        var label = KeyVector(schema, labelColumnName, "label");
        var predicted = KeyVector(schema, predictedColumnName, "predicted label");
        var feature = KeyVector(schema, featureColumnName, "feature");
        int tags = (int)((KeyDataViewType)((VectorDataViewType)label.Type).ItemType).Count;
        if (((KeyDataViewType)((VectorDataViewType)predicted.Type).ItemType).Count != (ulong)tags)
            throw new ArgumentOutOfRangeException(nameof(predictedColumnName), $"Column '{predictedColumnName}' has another key type than '{labelColumnName}'.");
        var chunks = ChunkScorer.ForTags(TagNames(label, tags));
        long tokens = 0, correct = 0, unseen = 0, correctUnseen = 0, withoutGold = 0;
        var gold = new List<int>();
        var guess = new List<int>();
        using (var cursor = data.GetRowCursor([label, predicted, feature]))
        {
            var getLabel = cursor.GetGetter<VBuffer<uint>>(label);
            var getPredicted = cursor.GetGetter<VBuffer<uint>>(predicted);
            var getFeature = cursor.GetGetter<VBuffer<uint>>(feature);
            VBuffer<uint> labels = default, predictions = default, features = default;
            while (cursor.MoveNext())
            {
                getLabel(ref labels);
                getPredicted(ref predictions);
                getFeature(ref features);
                if (labels.Length != features.Length)
                    throw new InvalidOperationException($"Row {cursor.Position}: '{labelColumnName}' holds {labels.Length} tags but '{featureColumnName}' holds {features.Length} tokens.");
                gold.Clear();
                guess.Clear();
                var l = labels.DenseValues().GetEnumerator();
                var p = predictions.DenseValues().GetEnumerator();
                var f = features.DenseValues().GetEnumerator();
                for (int t = 0; t < labels.Length; t++)
                {
                    l.MoveNext();
                    f.MoveNext();
                    uint predictedKey = t < predictions.Length && p.MoveNext() ? p.Current : 0;
                    gold.Add((int)l.Current - 1);
                    guess.Add((int)predictedKey - 1);
                    if (l.Current == 0)
                    {
                        withoutGold++; // no gold tag: not evaluated, counted
                        continue;
                    }
                    bool right = predictedKey == l.Current;
                    tokens++;
                    if (right) correct++;
                    if (f.Current == 0)
                    {
                        unseen++;
                        if (right) correctUnseen++;
                    }
                }
                chunks?.Add(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(gold), System.Runtime.InteropServices.CollectionsMarshal.AsSpan(guess));
            }
        }
        if (chunks is null)
            return new TaggingMetrics(tokens, correct, unseen, correctUnseen, null, null, withoutGold);
        var (total, byType) = chunks.Counts();
        return new TaggingMetrics(tokens, correct, unseen, correctUnseen,
            byType.ToDictionary(kv => kv.Key, kv => new EntityMetrics(kv.Value.Correct, kv.Value.Predicted, kv.Value.Gold)),
            new EntityMetrics(total.Correct, total.Predicted, total.Gold), withoutGold);
    }

    private static DataViewSchema.Column KeyVector(DataViewSchema schema, string name, string what)
    {
        var column = schema.GetColumnOrNull(name)
            ?? throw new ArgumentOutOfRangeException(nameof(name), $"The {what} column '{name}' is not in the data.");
        if (column.Type is not VectorDataViewType { ItemType: KeyDataViewType key } || key.RawType != typeof(uint))
            throw new ArgumentOutOfRangeException(nameof(name), $"The {what} column '{name}' has type {column.Type}; expected a vector of keys.");
        return column;
    }

    /// <summary>The tag names from the label's key values (text), or their indices when it has none.</summary>
    private static string[] TagNames(DataViewSchema.Column label, int tags)
    {
        if (label.Annotations.Schema.GetColumnOrNull(AnnotationUtils.Kinds.KeyValues) is { Type: VectorDataViewType { ItemType: TextDataViewType } })
        {
            VBuffer<ReadOnlyMemory<char>> names = default;
            label.GetKeyValues(ref names);
            return names.DenseValues().Select(n => n.ToString()).ToArray();
        }
        return Enumerable.Range(0, tags).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
    }
}
