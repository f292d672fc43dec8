using Microsoft.ML.Data;
using Microsoft.ML.Model.OnnxConverter;

namespace Microsoft.ML.Recurrent.Onnx;

/// <summary>
/// Checks that every step before one of ours is in the ONNX graph. ML.NET's converter stops walking a pipeline at the
/// first step that cannot be exported and takes the columns of the pipeline's <em>raw</em> input as the graph's inputs,
/// yet still asks the steps after it to write themselves; a step of ours would then read a raw column of the same name
/// as its input (for example a feature column a <c>CustomMapping</c> had rewritten in place) and the graph would score
/// something else, silently. So ours refuse unless every step from their input back to the first view that is not a
/// transform (the data, a cache, or the input of a recurrent-only export) can be exported.
/// </summary>
internal static class OnnxSources
{
    /// <summary>Throws, naming the step, when a step of <paramref name="source"/>'s chain cannot be written to <paramref name="ctx"/>.</summary>
    public static void RequireExportable(IDataView source, OnnxContext ctx, string who, string columns)
    {
        for (var view = source; view is IDataTransform step; view = step.Source)
        {
            if (view is ITransformCanSaveOnnx exportable && exportable.CanSaveOnnx(ctx))
                continue;
            string name = view is RowToRowMapperTransform mapped && mapped.GetTransformer() is { } transformer
                ? transformer.GetType().Name
                : view.GetType().Name;
            throw new InvalidOperationException(
                $"{who} cannot be exported to ONNX as part of this pipeline: a step before it ({name}) has no ONNX export, so ML.NET's converter " +
                $"would leave that step and everything before it out and feed {columns} from the pipeline's raw input. Export the recurrent part on " +
                $"its own, from its input columns: mlContext.Model.ConvertToOnnx(recurrentModel, mlContext.Data.Cache(mlContext.Transforms.SelectColumns(" +
                $"{columns}).Fit(featurized).Transform(featurized)), stream), and run the steps before it outside ONNX. See docs/onnx.md.");
        }
    }
}
