using Microsoft.ML.Model.OnnxConverter;
using Microsoft.ML.Recurrent.Onnx;

namespace Microsoft.ML.Recurrent;

// ONNX export through ML.NET's ConvertToOnnx (docs/onnx.md): the view Transform returns is the step ML.NET's converter
// finds; it writes the network and the task's output columns.
public abstract partial class RecurrentTransformerBase
{
    /// <summary>
    /// Writes the network and the task's output columns into an ONNX graph being built by ML.NET's converter. Every step
    /// between the data and <paramref name="source"/> must be in the graph (see <see cref="OnnxSources"/>).
    /// </summary>
    private void SaveAsOnnx(OnnxContext ctx, IDataView source)
    {
        string column = Model.Input.ColumnName;
        if (NetworkOnnxWriter.Unsupported(Model, ScorerOutput == ScorerOutput.Representation) is { } why)
            throw new NotSupportedException($"{GetType().Name} cannot be exported to ONNX: {why}.");
        var wideInput = Model.Input.Wide;
        string columns = wideInput is null ? $"\"{column}\"" : $"\"{column}\", \"{wideInput.ColumnName}\"";
        OnnxSources.RequireExportable(source, ctx, GetType().Name, columns);
        foreach (var name in new[] { column, wideInput?.ColumnName })
            if (name is not null && !ctx.ContainsColumn(name))
                throw new InvalidOperationException($"{GetType().Name} cannot be exported to ONNX: its input column '{name}' is not in the graph.");
        var graph = new OnnxGraph(ctx, "Recurrent.");
        var network = NetworkOnnxWriter.Write(graph, Model, ctx.GetVariableName(column), wideInput is null ? null : ctx.GetVariableName(wideInput.ColumnName));
        var outputs = GetOutputColumns().Select(c => ctx.AddIntermediateVariable(c.Type, c.Name)).ToArray();
        SaveOutputsAsOnnx(graph, network, outputs);
    }

    /// <summary>
    /// Writes the task's output columns (in <see cref="GetOutputColumns"/> order) into the variables
    /// <paramref name="outputs"/> from the network written by <paramref name="network"/>; a row the network cannot read
    /// gets what our scorer gives it (NaN scores, key 0).
    /// </summary>
    private protected abstract void SaveOutputsAsOnnx(OnnxGraph graph, NetworkOnnxWriter network, string[] outputs);
}
