using System.Globalization;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.Recurrent.Tests.Scorer;

/// <summary>Writes the output columns of a scored view as text, floats as their exact bit patterns, one line per row.</summary>
public static class ScoreDump
{
    public static readonly string[] Columns = ["Score", "Probability", "PredictedLabel", "RecurrentFeatures", "LogLikelihood", "Perplexity", "Forecast", "LowerBound", "UpperBound"];

    public static string Dump(IDataView scored)
    {
        var columns = Columns.Select(name => scored.Schema.GetColumnOrNull(name)).Where(c => c is not null).Select(c => c!.Value).ToList();
        var text = new StringBuilder();
        using var cursor = scored.GetRowCursor(columns);
        var writers = columns.Select(c => MakeWriter(cursor, c)).ToList();
        while (cursor.MoveNext())
        {
            for (int i = 0; i < writers.Count; i++)
            {
                text.Append(columns[i].Name).Append('=');
                writers[i](text);
                text.Append(';');
            }
            text.Append('\n');
        }
        return text.ToString();
    }

    /// <summary>
    /// For a language model (the model, or the last transformer of a chain): text generated with fixed seeds at two
    /// temperatures and with top-k/top-p, one line each; empty for other models.
    /// </summary>
    public static string DumpGeneration(ITransformer model)
    {
        if (model is RecurrentForecastingTransformer forecaster)
        {
            // A checkpointed engine continues from its saved rows: its forecast for the hours after them.
            var engine = forecaster.CreateForecastEngine();
            if (engine.ObservationCount < forecaster.LookBack) return "";
            var future = new float[forecaster.Horizon * forecaster.FutureCovariateColumnNames.Count];
            for (int i = 0; i < future.Length; i++) future[i] = i % 24;
            var f = engine.Predict(future.Length == 0 ? null : future);
            return "Engine=" + string.Join(',', f.Values.Concat(f.LowerBounds ?? []).Concat(f.UpperBounds ?? []).Select(x => BitConverter.SingleToInt32Bits(x).ToString("X8"))) + "\n";
        }
        var lm = model as RecurrentLanguageModelTransformer
            ?? (model as IEnumerable<ITransformer>)?.LastOrDefault() as RecurrentLanguageModelTransformer;
        if (lm is null) return "";
        var text = new StringBuilder();
        foreach (var options in new[]
        {
            new GenerationOptions { Seed = 7, MaximumLength = 60 },
            new GenerationOptions { Seed = 8, MaximumLength = 60, Temperature = 0.5f, TopK = 5, TopP = 0.9f },
        })
            text.Append("Generated=").Append(lm.Generate(lm.IsCharacterModel ? "the " : "", options).Replace("\n", "\\n")).Append('\n');
        return text.ToString();
    }

    private static Action<StringBuilder> MakeWriter(DataViewRowCursor cursor, DataViewSchema.Column column)
    {
        var type = column.Type;
        if (type == NumberDataViewType.Single)
        {
            var get = cursor.GetGetter<float>(column);
            return sb => { float v = 0; get(ref v); sb.Append(BitConverter.SingleToInt32Bits(v).ToString("X8")); };
        }
        if (type is VectorDataViewType { ItemType: NumberDataViewType n } && n == NumberDataViewType.Single)
        {
            var get = cursor.GetGetter<VBuffer<float>>(column);
            return sb => { VBuffer<float> v = default; get(ref v); sb.AppendJoin(',', v.DenseValues().Select(x => BitConverter.SingleToInt32Bits(x).ToString("X8"))); };
        }
        if (type is VectorDataViewType { ItemType: KeyDataViewType })
        {
            var get = cursor.GetGetter<VBuffer<uint>>(column);
            return sb => { VBuffer<uint> v = default; get(ref v); sb.AppendJoin(',', v.DenseValues().Select(x => x.ToString(CultureInfo.InvariantCulture))); };
        }
        if (type is BooleanDataViewType)
        {
            var get = cursor.GetGetter<bool>(column);
            return sb => { bool v = false; get(ref v); sb.Append(v); };
        }
        if (type is TextDataViewType)
        {
            var get = cursor.GetGetter<ReadOnlyMemory<char>>(column);
            return sb => { ReadOnlyMemory<char> v = default; get(ref v); sb.Append(v.Span); };
        }
        if (type is KeyDataViewType)
        {
            var get = cursor.GetGetter<uint>(column);
            return sb => { uint v = 0; get(ref v); sb.Append(v.ToString(CultureInfo.InvariantCulture)); };
        }
        throw new NotSupportedException($"Column {column.Name} of type {type}");
    }
}
