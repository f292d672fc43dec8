using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Recurrent;
using Microsoft.ML.Recurrent.Onnx;
using Microsoft.ML.Runtime;

[assembly: LoadableClass(typeof(RecurrentTaggerTransformer), null, typeof(SignatureLoadModel),
    "Recurrent Sequence Tagger", RecurrentTaggerTransformer.LoaderSignature)]

namespace Microsoft.ML.Recurrent;

/// <summary>
/// The model produced by <see cref="RecurrentTaggerTrainer"/>: adds the predicted tag of every token (a vector of keys
/// as long as the token vector, carrying the training label's key values, so <c>MapKeyToValue</c> gives back the tag
/// strings) and, optionally, every token's tag probabilities. With a CRF the tags are its Viterbi path and the
/// probabilities its posterior marginals. A sentence with no tokens gets empty vectors; a row that cannot be read gets
/// missing tags (key 0) and NaN probabilities.
/// </summary>
public sealed class RecurrentTaggerTransformer : RecurrentTransformerBase
{
    internal const string LoaderSignature = "RecurrentTagger";

    private static VersionInfo GetVersionInfo() => new(
        modelSignature: "RNNTAGGR",
        // verWrittenCur: 0x00010003, // Initial (the layout of the other recurrent models' version 0x00010003)
        verWrittenCur: 0x00010004, // Wide input flag (network format 4)
        verReadableCur: 0x00010004,
        verWeCanReadBack: 0x00010003,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(RecurrentTaggerTransformer).Assembly.GetName().Name);

    /// <summary>Number of tags.</summary>
    public int NumberOfTags => Model.OutputSize;

    /// <summary>The column of predicted tags.</summary>
    public string OutputColumnName { get; }

    /// <summary>The per-token probabilities column, or null when it is not produced.</summary>
    public string? ScoreColumnName { get; }

    internal RecurrentTaggerTransformer(IHostEnvironment env, RecurrentModel model, string outputColumnName, string? scoreColumnName)
        : base(env.Register(nameof(RecurrentTaggerTransformer)), model)
    {
        OutputColumnName = outputColumnName;
        ScoreColumnName = scoreColumnName;
    }

    // Factory method for SignatureLoadModel. Binary format: see ModelEntry, RecurrentModel.Write and SaveTaskFields.
    private static RecurrentTaggerTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(ctx);
        ctx.CheckAtModel(GetVersionInfo());
        var (model, reader) = ReadModel(ctx);
        string output = reader.ReadString("output column name", 1024);
        string score = reader.ReadString("score column name", 1024);
        reader.ExpectEnd();
        if (output.Length == 0)
            throw reader.Error("output column name", "is empty.");
        return new RecurrentTaggerTransformer(env, model, output, score.Length == 0 ? null : score);
    }

    // *** Binary format *** (after the RecurrentModel, inside the envelope)
    // string: output column name
    // string: score column name, empty when the probabilities are not produced
    private protected override void SaveTaskFields(BinaryWriter writer)
    {
        writer.Write(OutputColumnName);
        writer.Write(ScoreColumnName ?? "");
    }

    private protected override VersionInfo GetVersionInfoCore() => GetVersionInfo();

    private protected override DataViewSchema.DetachedColumn[] GetOutputColumns()
    {
        int tags = Model.OutputSize;
        var predicted = new DataViewSchema.Annotations.Builder();
        Model.LabelValues?.AddTo(predicted);
        var columns = new List<DataViewSchema.DetachedColumn>
        {
            new(OutputColumnName, new VectorDataViewType(new KeyDataViewType(typeof(uint), tags)), predicted.ToAnnotations()),
        };
        if (ScoreColumnName is not null)
            columns.Add(new(ScoreColumnName, new VectorDataViewType(NumberDataViewType.Single)));
        return [.. columns];
    }

    private protected override Delegate MakeOutputGetter(int index, RowOutputs outputs)
    {
        int tags = Model.OutputSize;
        var decoder = new TagDecoder(Model);
        if (index == 0)
        {
            // Each token's tag (key = index + 1): Viterbi through the CRF, or the best score; key 0 for a row that cannot be read.
            ValueGetter<VBuffer<uint>> predicted = (ref VBuffer<uint> dst) =>
            {
                var emissions = outputs.Current();
                var editor = VBufferEditor.Create(ref dst, emissions.Length / tags);
                decoder.Decode(emissions, editor.Values);
                dst = editor.Commit();
            };
            return predicted;
        }
        ValueGetter<VBuffer<float>> score = (ref VBuffer<float> dst) =>
        {
            var emissions = outputs.Current();
            var editor = VBufferEditor.Create(ref dst, emissions.Length);
            decoder.Probabilities(emissions, editor.Values);
            dst = editor.Commit();
        };
        return score;
    }

    // ONNX (no CRF): each token's tag = ArgMax of its scores + 1 as uint32 keys [1, T] (key 0 for a row that cannot be
    // read, as ours); the scores column = the softmax of each token's scores, flattened [1, T·C] as the column is.
    private protected override void SaveOutputsAsOnnx(OnnxGraph graph, NetworkOnnxWriter network, string[] outputs)
    {
        var logits = network.PerStepOutputs(); // [B, T, C]
        var best = graph.Node("ArgMax", "best_tag", n => { n.AddAttribute("axis", 2L); n.AddAttribute("keepdims", 0L); }, logits);
        var key = network.MissingIfInvalid(graph.Node("Add", "best_tag_key", best, graph.Long("one_key", 1)), "tag_keys");
        graph.NodeInto("Cast", outputs[0], n => n.AddAttribute("to", typeof(uint)), key);
        if (outputs.Length > 1)
        {
            var probabilities = graph.Node("Softmax", "tag_probabilities", n => n.AddAttribute("axis", 2L), logits);
            graph.NodeInto("Reshape", outputs[1], null, probabilities, graph.Longs("tag_probabilities_shape", 1, -1));
        }
    }
}
