using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Recurrent;
using Microsoft.ML.Recurrent.Onnx;
using Microsoft.ML.Runtime;

[assembly: LoadableClass(typeof(RecurrentMulticlassTransformer), null, typeof(SignatureLoadModel),
    "Recurrent Multiclass Classifier", RecurrentMulticlassTransformer.LoaderSignature)]

namespace Microsoft.ML.Recurrent;

/// <summary>
/// The model produced by <see cref="RecurrentMulticlassTrainer"/>: adds <c>Score</c> (vector of class probabilities,
/// softmax of the network's outputs, with the class names as slot names) and <c>PredictedLabel</c> (key of the most
/// probable class, carrying the training label's key values, so <c>MapKeyToValue</c> turns it back into the label).
/// </summary>
public sealed class RecurrentMulticlassTransformer : RecurrentTransformerBase
{
    internal const string LoaderSignature = "RecurrentMulticlass";

    private static VersionInfo GetVersionInfo() => new(
        modelSignature: "RNNMCLAS",
        // verWrittenCur: 0x00010001, // Initial
        // verWrittenCur: 0x00010002, // Integrity envelope (SHA-256), number of threads, vocabulary hash
        // verWrittenCur: 0x00010003, // Character input (network format 2: head kind, CRF, character encoder)
        verWrittenCur: 0x00010004, // Wide input (network format 4: attention pooling, wide part)
        verReadableCur: 0x00010004,
        verWeCanReadBack: 0x00010001,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(RecurrentMulticlassTransformer).Assembly.GetName().Name);

    /// <summary>Number of classes.</summary>
    public int NumberOfClasses => Model.OutputSize;

    internal RecurrentMulticlassTransformer(IHostEnvironment env, RecurrentModel model)
        : base(env.Register(nameof(RecurrentMulticlassTransformer)), model)
    {
    }

    // Factory method for SignatureLoadModel. Binary format: see ModelEntry and RecurrentModel.Write.
    private static RecurrentMulticlassTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(ctx);
        ctx.CheckAtModel(GetVersionInfo());
        return new RecurrentMulticlassTransformer(env, ReadModelOnly(ctx));
    }

    private protected override VersionInfo GetVersionInfoCore() => GetVersionInfo();

    private protected override DataViewSchema.DetachedColumn[] GetOutputColumns()
    {
        int classes = Model.OutputSize;
        var score = new DataViewSchema.Annotations.Builder();
        if (Model.LabelValues is { } labels)
        {
            var names = labels.Names;
            score.AddSlotNames(classes, (ref VBuffer<ReadOnlyMemory<char>> dst) => new VBuffer<ReadOnlyMemory<char>>(names.Length, names).CopyTo(ref dst));
        }
        ScoreAnnotations.Add(score, AnnotationUtils.Const.ScoreColumnKind.MulticlassClassification, AnnotationUtils.Const.ScoreValueKind.Score);
        var predicted = new DataViewSchema.Annotations.Builder();
        Model.LabelValues?.AddTo(predicted);
        ScoreAnnotations.Add(predicted, AnnotationUtils.Const.ScoreColumnKind.MulticlassClassification, AnnotationUtils.Const.ScoreValueKind.PredictedLabel);
        return
        [
            new DataViewSchema.DetachedColumn(DefaultColumnNames.Score, new VectorDataViewType(NumberDataViewType.Single, classes), score.ToAnnotations()),
            new DataViewSchema.DetachedColumn(DefaultColumnNames.PredictedLabel, new KeyDataViewType(typeof(uint), classes), predicted.ToAnnotations()),
        ];
    }

    private protected override Delegate MakeOutputGetter(int index, RowOutputs outputs)
    {
        int classes = Model.OutputSize;
        if (index == 0)
        {
            ValueGetter<VBuffer<float>> score = (ref VBuffer<float> dst) =>
            {
                var editor = VBufferEditor.Create(ref dst, classes);
                System.Numerics.Tensors.TensorPrimitives.SoftMax(outputs.Current(), editor.Values);
                dst = editor.Commit();
            };
            return score;
        }
        // Key 0 (missing) for a row that could not be read (NaN outputs).
        ValueGetter<uint> predicted = (ref uint dst) =>
        {
            var current = outputs.Current();
            dst = float.IsNaN(current[0]) ? 0 : (uint)System.Numerics.Tensors.TensorPrimitives.IndexOfMax(current) + 1;
        };
        return predicted;
    }

    // ONNX: Score = Softmax(logits) [1, C]; PredictedLabel = ArgMax(logits) + 1 as a uint32 key [1, 1] (key 0, missing, for a
    // row that cannot be read, as ours).
    private protected override void SaveOutputsAsOnnx(OnnxGraph graph, NetworkOnnxWriter network, string[] outputs)
    {
        var logits = network.PooledOutputs();
        graph.NodeInto("Softmax", outputs[0], n => n.AddAttribute("axis", 1L), logits);
        var best = graph.Node("ArgMax", "best_class", n => { n.AddAttribute("axis", 1L); n.AddAttribute("keepdims", 1L); }, logits);
        var key = network.MissingIfInvalid(graph.Node("Add", "best_key", best, graph.Long("one_key", 1)), "predicted_key");
        graph.NodeInto("Cast", outputs[1], n => n.AddAttribute("to", typeof(uint)), key);
    }
}
