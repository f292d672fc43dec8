using Microsoft.ML.Data;

namespace Microsoft.ML.Recurrent;

/// <summary>The annotations ML.NET's scorers put on their output columns (score column kind, value kind, normalization).</summary>
internal static class ScoreAnnotations
{
    public static void Add(DataViewSchema.Annotations.Builder builder, string columnKind, string valueKind, bool isNormalized = false)
    {
        var kind = columnKind.AsMemory();
        var value = valueKind.AsMemory();
        builder.Add(AnnotationUtils.Kinds.ScoreColumnKind, TextDataViewType.Instance, (ref ReadOnlyMemory<char> dst) => dst = kind);
        builder.Add(AnnotationUtils.Kinds.ScoreValueKind, TextDataViewType.Instance, (ref ReadOnlyMemory<char> dst) => dst = value);
        if (isNormalized)
            builder.Add(AnnotationUtils.Kinds.IsNormalized, BooleanDataViewType.Instance, (ref bool dst) => dst = true);
    }

    public static DataViewSchema.Annotations Build(string columnKind, string valueKind, bool isNormalized = false)
    {
        var builder = new DataViewSchema.Annotations.Builder();
        Add(builder, columnKind, valueKind, isNormalized);
        return builder.ToAnnotations();
    }
}
