using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Recurrent;
using Microsoft.ML.Recurrent.Onnx;
using Microsoft.ML.Runtime;

[assembly: LoadableClass(typeof(RecurrentFeaturizerTransformer), null, typeof(SignatureLoadModel),
    "Recurrent Featurizer", RecurrentFeaturizerTransformer.LoaderSignature)]

namespace Microsoft.ML.Recurrent;

/// <summary>
/// A trained recurrent model — a classifier, a regressor or a tagger — applied as a featurizer: adds the pooled
/// representation of each sequence (a fixed-size vector of <see cref="float"/>: what a classifier's linear head reads,
/// or for a tagger the mean and the max of its top layer's states) and/or the top layer's state at every token (a
/// variable-length vector of T × D·H values, token after token), for any ML.NET trainer to learn from. Create it with
/// <c>mlContext.Transforms.RecurrentFeatures(model, ...)</c>. An empty sequence gets a pooled vector of zeros and no
/// states; a row that cannot be read gets NaN values.
/// </summary>
public sealed class RecurrentFeaturizerTransformer : RecurrentTransformerBase
{
    internal const string LoaderSignature = "RecurrentFeaturizer";

    private static VersionInfo GetVersionInfo() => new(
        modelSignature: "RNNFEATR",
        // verWrittenCur: 0x00010003, // Initial (the layout of the other recurrent models' version 0x00010003)
        verWrittenCur: 0x00010004, // Wide input (network format 4)
        verReadableCur: 0x00010004,
        verWeCanReadBack: 0x00010003,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(RecurrentFeaturizerTransformer).Assembly.GetName().Name);

    /// <summary>The column of pooled representations, or null when it is not produced.</summary>
    public string? PooledColumnName { get; }

    /// <summary>The column of per-token states, or null when it is not produced.</summary>
    public string? StatesColumnName { get; }

    /// <summary>Width of the pooled representation.</summary>
    public int PooledSize => Model.Network.RepresentationSize;

    /// <summary>Width of one token's state (D·H); the states column holds T times as many values.</summary>
    public int StateSize => Model.Network.StateSize;

    internal RecurrentFeaturizerTransformer(IHostEnvironment env, RecurrentModel model, string? pooledColumnName, string? statesColumnName)
        : base(env.Register(nameof(RecurrentFeaturizerTransformer)), model)
    {
        if (pooledColumnName is null && statesColumnName is null)
            throw new ArgumentException("Name the pooled column, the states column, or both.");
        if (pooledColumnName is not null && pooledColumnName == statesColumnName)
            throw new ArgumentException($"The pooled and the states column are both '{pooledColumnName}'.");
        PooledColumnName = pooledColumnName;
        StatesColumnName = statesColumnName;
    }

    // Factory method for SignatureLoadModel. Binary format: see ModelEntry, RecurrentModel.Write and SaveTaskFields.
    private static RecurrentFeaturizerTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(ctx);
        ctx.CheckAtModel(GetVersionInfo());
        var (model, reader) = ReadModel(ctx);
        string pooled = reader.ReadString("pooled column name", 1024), states = reader.ReadString("states column name", 1024);
        reader.ExpectEnd();
        if (pooled.Length == 0 && states.Length == 0)
            throw reader.Error("column names", "are both empty.");
        return new RecurrentFeaturizerTransformer(env, model, pooled.Length == 0 ? null : pooled, states.Length == 0 ? null : states);
    }

    // *** Binary format *** (after the RecurrentModel, inside the envelope)
    // string: pooled column name, empty when not produced
    // string: states column name, empty when not produced
    private protected override void SaveTaskFields(BinaryWriter writer)
    {
        writer.Write(PooledColumnName ?? "");
        writer.Write(StatesColumnName ?? "");
    }

    private protected override VersionInfo GetVersionInfoCore() => GetVersionInfo();

    private protected override ScorerOutput ScorerOutput => ScorerOutput.Representation;

    private protected override DataViewSchema.DetachedColumn[] GetOutputColumns()
    {
        var columns = new List<DataViewSchema.DetachedColumn>();
        if (PooledColumnName is not null)
            columns.Add(new(PooledColumnName, new VectorDataViewType(NumberDataViewType.Single, PooledSize)));
        if (StatesColumnName is not null)
            columns.Add(new(StatesColumnName, new VectorDataViewType(NumberDataViewType.Single)));
        return [.. columns];
    }

    private protected override Delegate MakeOutputGetter(int index, RowOutputs outputs)
    {
        // A row's scorer output is [P + T·D·H]: the pooled representation, then every token's state.
        bool pooled = PooledColumnName is not null && index == 0;
        int p = PooledSize;
        ValueGetter<VBuffer<float>> getter = (ref VBuffer<float> dst) =>
        {
            var row = outputs.Current();
            var values = pooled ? row[..p] : row[p..];
            var editor = VBufferEditor.Create(ref dst, values.Length);
            values.CopyTo(editor.Values);
            dst = editor.Commit();
        };
        return getter;
    }

    // ONNX: the pooled representation [1, P] (the pooled head's pooled vector, or the masked mean and max of the top
    // layer for a per-step head) and every token's top-layer state, flattened [1, T·D·H]; NaN for a row that cannot be read.
    private protected override void SaveOutputsAsOnnx(OnnxGraph graph, NetworkOnnxWriter network, string[] outputs)
    {
        int next = 0;
        if (PooledColumnName is not null)
        {
            var pooled = Model.Network.Head is Model.PooledHead
                ? network.Pooled()
                : network.NaNIfInvalid(network.ZeroWithoutSteps(graph.Node("Concat", "representation_pieces", n => n.AddAttribute("axis", 1L),
                    network.MaskedMean(network.Y, "represent_mean"), network.MaskedMax(network.Y, "represent_max")), "representation_or_zero"), "representation");
            graph.NodeInto("Identity", outputs[next++], null, pooled);
        }
        if (StatesColumnName is not null)
        {
            var states = graph.Transpose(network.RealY(), "states_btw", 1, 0, 2);
            graph.NodeInto("Reshape", outputs[next], null, states, graph.Longs("states_shape", 1, -1));
        }
    }
}
