using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Recurrent;
using Microsoft.ML.Recurrent.Onnx;
using Microsoft.ML.Runtime;

[assembly: LoadableClass(typeof(RecurrentBinaryTransformer), null, typeof(SignatureLoadModel),
    "Recurrent Binary Classifier", RecurrentBinaryTransformer.LoaderSignature)]

namespace Microsoft.ML.Recurrent;

/// <summary>
/// The model produced by <see cref="RecurrentBinaryTrainer"/>: adds <c>Score</c> (the network's logit),
/// <c>Probability</c> (its logistic sigmoid) and <c>PredictedLabel</c> (true when Score &gt; 0).
/// </summary>
public sealed class RecurrentBinaryTransformer : RecurrentTransformerBase
{
    internal const string LoaderSignature = "RecurrentBinary";

    private static VersionInfo GetVersionInfo() => new(
        modelSignature: "RNNBINCL",
        // verWrittenCur: 0x00010001, // Initial
        // verWrittenCur: 0x00010002, // Integrity envelope (SHA-256), number of threads, vocabulary hash
        // verWrittenCur: 0x00010003, // Character input (network format 2: head kind, CRF, character encoder)
        verWrittenCur: 0x00010004, // Wide input (network format 4: attention pooling, wide part)
        verReadableCur: 0x00010004,
        verWeCanReadBack: 0x00010001,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(RecurrentBinaryTransformer).Assembly.GetName().Name);

    internal RecurrentBinaryTransformer(IHostEnvironment env, RecurrentModel model)
        : base(env.Register(nameof(RecurrentBinaryTransformer)), model)
    {
    }

    // Factory method for SignatureLoadModel. Binary format: see ModelEntry and RecurrentModel.Write.
    private static RecurrentBinaryTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(ctx);
        ctx.CheckAtModel(GetVersionInfo());
        return new RecurrentBinaryTransformer(env, ReadModelOnly(ctx));
    }

    private protected override VersionInfo GetVersionInfoCore() => GetVersionInfo();

    private protected override DataViewSchema.DetachedColumn[] GetOutputColumns()
    {
        const string kind = AnnotationUtils.Const.ScoreColumnKind.BinaryClassification;
        return
        [
            new DataViewSchema.DetachedColumn(DefaultColumnNames.Score, NumberDataViewType.Single, ScoreAnnotations.Build(kind, AnnotationUtils.Const.ScoreValueKind.Score)),
            new DataViewSchema.DetachedColumn(DefaultColumnNames.Probability, NumberDataViewType.Single, ScoreAnnotations.Build(kind, AnnotationUtils.Const.ScoreValueKind.Probability, isNormalized: true)),
            new DataViewSchema.DetachedColumn(DefaultColumnNames.PredictedLabel, BooleanDataViewType.Instance, ScoreAnnotations.Build(kind, AnnotationUtils.Const.ScoreValueKind.PredictedLabel)),
        ];
    }

    private protected override Delegate MakeOutputGetter(int index, RowOutputs outputs) => index switch
    {
        0 => (ValueGetter<float>)((ref float dst) => dst = outputs.Current()[0]),
        1 => (ValueGetter<float>)((ref float dst) => dst = 1f / (1f + MathF.Exp(-outputs.Current()[0]))),
        _ => (ValueGetter<bool>)((ref bool dst) => dst = outputs.Current()[0] > 0),
    };

    // ONNX: Score = the logit [B, 1], Probability = Sigmoid(Score), PredictedLabel = Score > 0.
    private protected override void SaveOutputsAsOnnx(OnnxGraph graph, NetworkOnnxWriter network, string[] outputs)
    {
        var logits = network.PooledOutputs();
        graph.NodeInto("Identity", outputs[0], null, logits);
        graph.NodeInto("Sigmoid", outputs[1], null, logits);
        graph.NodeInto("Greater", outputs[2], null, logits, graph.Float("zero", 0f));
    }
}
