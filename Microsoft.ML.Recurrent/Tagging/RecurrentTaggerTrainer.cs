using Microsoft.ML.Data;
using Microsoft.ML.Recurrent.Layers;
using Microsoft.ML.Recurrent.Model;
using Microsoft.ML.Recurrent.Training;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// Trains a recurrent sequence tagger (a bidirectional LSTM by default): one tag for every token of a sentence — part
/// of speech, named-entity (BIO/IOBES) tags, chunks, slots. Create it with
/// <c>mlContext.MulticlassClassification.Trainers.RecurrentTagger(...)</c>.
/// </summary>
/// <remarks>
/// <para>Input and output columns:</para>
/// <list type="table">
/// <listheader><term>Column</term><description>Type</description></listheader>
/// <item><term><c>Label</c></term><description>variable-length vector of keys (tags, e.g. from <c>MapValueToKey</c> over a vector of tag strings), aligned one to one with the tokens; rows with a missing tag are skipped</description></item>
/// <item><term><c>Features</c></term><description>variable-length vector of keys (token ids, e.g. <c>TokenizeIntoWords</c> → <c>MapValueToKey</c>)</description></item>
/// <item><term><c>PredictedLabel</c> (output)</term><description>vector of keys of the same length: the tag of every token, with the label's key values</description></item>
/// <item><term><c>Score</c> (output, with <see cref="Options.OutputProbabilities"/>)</term><description>vector of <see cref="float"/> [T × C]: each token's tag probabilities, token after token, in the label's key order</description></item>
/// </list>
/// </remarks>
public sealed class RecurrentTaggerTrainer : RecurrentTrainerBase<RecurrentTaggerTransformer>
{
    /// <summary>
    /// Options for <see cref="RecurrentTaggerTrainer"/>. The recurrent options are the classifiers'
    /// (<see cref="RecurrentTrainerOptions"/>), with defaults for tagging: <see cref="RecurrentTrainerOptions.EmbeddingSize"/>
    /// 100, <see cref="RecurrentTrainerOptions.HiddenSize"/> 100, <see cref="RecurrentTrainerOptions.LearningRate"/> 0.01
    /// (Adam, cosine schedule), <see cref="RecurrentTrainerOptions.EmbeddingDropout"/> 0.25 and
    /// <see cref="RecurrentTrainerOptions.HeadDropout"/> 0.25 (on every token's output, before the tag layer) — chosen by
    /// a study on the whole Brown corpus and on a 4,400-sentence subset of it (docs/tagging.md).
    /// <see cref="RecurrentTrainerOptions.Pooling"/> does not apply.
    /// </summary>
    public sealed class Options : RecurrentTrainerOptions
    {
        /// <summary>Creates the options with the tagging defaults.</summary>
        public Options()
        {
            EmbeddingSize = 100;
            HiddenSize = 100;
            LearningRate = 1e-2f;
            EmbeddingDropout = 0.25f;
            HeadDropout = 0.25f;
        }

        /// <summary>The output column of predicted tags. Default <c>PredictedLabel</c>.</summary>
        public string OutputColumnName = DefaultColumnNames.PredictedLabel;

        /// <summary>Whether to add the per-token tag probabilities column (<see cref="ScoreColumnName"/>). Default false.</summary>
        public bool OutputProbabilities;

        /// <summary>The per-token probabilities column, [T × C] values. Default <c>Score</c>.</summary>
        public string ScoreColumnName = DefaultColumnNames.Score;

        /// <summary>Loss weight of each tag, in key order; null = all 1 (not with <see cref="UseCrf"/>). Default null.</summary>
        public float[]? ClassWeights;

        /// <summary>
        /// Whether a linear-chain CRF scores whole tag sequences on top of the per-token scores: trained by the
        /// sequence's negative log-likelihood (forward algorithm), decoded by Viterbi. Default false.
        /// </summary>
        public bool UseCrf;

        /// <summary>
        /// With <see cref="UseCrf"/>, the chunk scheme whose invalid transitions the CRF never allows (training and
        /// decoding), read from the label's key values (the tag strings). Default <see cref="TagScheme.None"/>.
        /// </summary>
        public TagScheme TagScheme = TagScheme.None;
    }

    private readonly Options _options;

    internal RecurrentTaggerTrainer(IHostEnvironment env, Options options)
        : base(env, nameof(RecurrentTaggerTrainer), options)
    {
        if (string.IsNullOrWhiteSpace(options.OutputColumnName)) throw new ArgumentException("OutputColumnName must be set.", nameof(options));
        if (options.OutputProbabilities && string.IsNullOrWhiteSpace(options.ScoreColumnName)) throw new ArgumentException("ScoreColumnName must be set.", nameof(options));
        if (options.OutputProbabilities && options.ScoreColumnName == options.OutputColumnName)
            throw new ArgumentException($"ScoreColumnName and OutputColumnName are both '{options.OutputColumnName}'.", nameof(options));
        if (!Enum.IsDefined(options.TagScheme))
            throw new ArgumentOutOfRangeException(nameof(options), options.TagScheme, "Unknown TagScheme.");
        if (options.UseCrf && options.ClassWeights is not null)
            throw new ArgumentException("ClassWeights cannot be combined with UseCrf: the CRF scores whole tag sequences.", nameof(options));
        if (options.UseCrf && options.ExampleWeightColumnName is not null)
            throw new ArgumentException("ExampleWeightColumnName cannot be combined with UseCrf.", nameof(options));
        if (options.TagScheme != TagScheme.None && !options.UseCrf)
            throw new ArgumentException("TagScheme constrains the CRF's transitions; set UseCrf too.", nameof(options));
        _options = options;
    }

    private protected override Objective Objective => Objective.Tagging;

    private protected override NetworkHeadKind Head => NetworkHeadKind.PerStep;

    private protected override float[] ClassWeights => _options.ClassWeights ?? [];

    private CrfConstraints? _constraints;
    private string[] _tagNames = [];

    private protected override int CheckLabel(DataViewSchema.Column label)
    {
        if (label.Type is not VectorDataViewType { ItemType: KeyDataViewType key } || key.RawType != typeof(uint))
            throw new ArgumentOutOfRangeException(nameof(label), $"Label column '{label.Name}' has type {label.Type}; the tagger needs a vector of keys, one tag per token (use MapValueToKey on a vector of tag strings).");
        if (key.Count < 2 || key.Count > 1 << 20)
            throw new ArgumentOutOfRangeException(nameof(label), $"Label column '{label.Name}' has {key.Count} tags; need between 2 and 2^20.");
        if (_options.TagScheme != TagScheme.None)
        {
            _tagNames = LabelKeyValues.FromColumn(label)?.Names.Select(n => n.ToString()).ToArray()
                ?? throw new ArgumentOutOfRangeException(nameof(label), $"Label column '{label.Name}' has no tag strings (key values), so TagScheme {_options.TagScheme} cannot be applied.");
            try
            {
                _constraints = _options.TagScheme == TagScheme.Bio ? CrfConstraints.ForBio(_tagNames) : CrfConstraints.ForIobes(_tagNames);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentOutOfRangeException(nameof(label), $"Label column '{label.Name}': {e.Message}");
            }
        }
        return (int)key.Count;
    }

    private protected override NetworkConfig Configure(NetworkConfig config) =>
        config with { UseCrf = _options.UseCrf, CrfConstraints = _constraints is { AllowsEverything: false } ? _constraints : null };

    private protected override TargetReader MakeTargetReader(DataViewRow row, DataViewSchema.Column label) =>
        new TagReader(row.GetGetter<VBuffer<uint>>(label), label.Name, _options.FeatureColumnName, _constraints, _tagNames, _options.TagScheme);

    /// <summary>
    /// One tag per token; a tag vector of another length than the tokens', or (with a tag scheme) a tag sequence the
    /// scheme forbids, is an error naming the row.
    /// </summary>
    private sealed class TagReader(ValueGetter<VBuffer<uint>> getter, string labelName, string featureName,
        CrfConstraints? constraints, string[] tagNames, TagScheme scheme) : TargetReader
    {
        private VBuffer<uint> _tags;

        public override bool TryRead(long row, int rawSteps, int steps, List<float> targets, List<int> stepTargets)
        {
            getter(ref _tags);
            if (_tags.Length != rawSteps)
                throw new InvalidOperationException($"Row {row}: label column '{labelName}' holds {_tags.Length} tags but feature column '{featureName}' holds {rawSteps} tokens; every token needs exactly one tag.");
            int start = stepTargets.Count;
            var values = _tags.GetValues();
            for (int t = 0; t < steps; t++)
            {
                uint key = _tags.IsDense ? values[t] : 0;
                if (!_tags.IsDense)
                {
                    int at = _tags.GetIndices().IndexOf(t);
                    key = at >= 0 ? values[at] : 0;
                }
                if (key == 0)
                {
                    stepTargets.RemoveRange(start, stepTargets.Count - start);
                    return false; // a missing tag: the row is skipped, as rows with a missing label are
                }
                stepTargets.Add((int)key - 1);
            }
            if (constraints is not null)
            {
                var path = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(stepTargets).Slice(start);
                int at = constraints.FirstViolation(path);
                if (at >= 0)
                {
                    string where = at == 0 ? $"it starts with '{tagNames[path[0]]}'"
                        : at == path.Length ? $"it ends with '{tagNames[path[^1]]}'"
                        : $"'{tagNames[path[at]]}' follows '{tagNames[path[at - 1]]}' at token {at}";
                    throw new InvalidOperationException($"Row {row}: the tags in column '{labelName}' are not valid {(scheme == TagScheme.Bio ? "BIO" : "IOBES")}: {where}. " +
                        "The labels may use another scheme (for example IOB1, where I- may begin an entity); choose the matching TagScheme or TagScheme.None.");
                }
            }
            return true;
        }
    }

    private protected override RecurrentTaggerTransformer MakeTransformer(RecurrentModel model) =>
        new(Host, model, _options.OutputColumnName, _options.OutputProbabilities ? _options.ScoreColumnName : null);

    private protected override IEnumerable<SchemaShape.Column> OutputColumns(SchemaShape.Column label)
    {
        if (!label.IsKey || label.Kind != SchemaShape.Column.VectorKind.VariableVector && label.Kind != SchemaShape.Column.VectorKind.Vector)
            throw new ArgumentOutOfRangeException(nameof(label), $"Label column '{label.Name}' must be a vector of keys (use MapValueToKey on a vector of tag strings).");
        var annotations = new List<SchemaShape.Column>();
        if (label.Annotations.TryFindColumn(AnnotationUtils.Kinds.KeyValues, out var keyValues))
            annotations.Add(keyValues);
        yield return new SchemaShape.Column(_options.OutputColumnName, SchemaShape.Column.VectorKind.VariableVector, label.ItemType, true, new SchemaShape(annotations));
        if (_options.OutputProbabilities)
            yield return new SchemaShape.Column(_options.ScoreColumnName, SchemaShape.Column.VectorKind.VariableVector, NumberDataViewType.Single, false);
    }
}
