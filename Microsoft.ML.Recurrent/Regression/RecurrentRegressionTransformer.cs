using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Recurrent;
using Microsoft.ML.Recurrent.Onnx;
using Microsoft.ML.Runtime;

[assembly: LoadableClass(typeof(RecurrentRegressionTransformer), null, typeof(SignatureLoadModel),
    "Recurrent Regression", RecurrentRegressionTransformer.LoaderSignature)]

namespace Microsoft.ML.Recurrent;

/// <summary>The model produced by <see cref="RecurrentRegressionTrainer"/>: adds <c>Score</c>, the predicted value.</summary>
public sealed class RecurrentRegressionTransformer : RecurrentTransformerBase
{
    internal const string LoaderSignature = "RecurrentRegression";

    private static VersionInfo GetVersionInfo() => new(
        modelSignature: "RNNREGRS",
        // verWrittenCur: 0x00010001, // Initial
        // verWrittenCur: 0x00010002, // Integrity envelope (SHA-256), number of threads, vocabulary hash
        // verWrittenCur: 0x00010003, // Character input (network format 2: head kind, CRF, character encoder)
        verWrittenCur: 0x00010004, // Wide input (network format 4: attention pooling, wide part)
        verReadableCur: 0x00010004,
        verWeCanReadBack: 0x00010001,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(RecurrentRegressionTransformer).Assembly.GetName().Name);

    internal RecurrentRegressionTransformer(IHostEnvironment env, RecurrentModel model)
        : base(env.Register(nameof(RecurrentRegressionTransformer)), model)
    {
    }

    // Factory method for SignatureLoadModel. Binary format: see ModelEntry and RecurrentModel.Write.
    private static RecurrentRegressionTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(ctx);
        ctx.CheckAtModel(GetVersionInfo());
        return new RecurrentRegressionTransformer(env, ReadModelOnly(ctx));
    }

    private protected override VersionInfo GetVersionInfoCore() => GetVersionInfo();

    private protected override DataViewSchema.DetachedColumn[] GetOutputColumns() =>
    [
        new DataViewSchema.DetachedColumn(DefaultColumnNames.Score, NumberDataViewType.Single,
            ScoreAnnotations.Build(AnnotationUtils.Const.ScoreColumnKind.Regression, AnnotationUtils.Const.ScoreValueKind.Score)),
    ];

    private protected override Delegate MakeOutputGetter(int index, RowOutputs outputs) =>
        (ValueGetter<float>)((ref float dst) => dst = outputs.Current()[0]);

    // ONNX: Score = the network's output [B, 1].
    private protected override void SaveOutputsAsOnnx(OnnxGraph graph, NetworkOnnxWriter network, string[] outputs) =>
        graph.NodeInto("Identity", outputs[0], null, network.PooledOutputs());
}
