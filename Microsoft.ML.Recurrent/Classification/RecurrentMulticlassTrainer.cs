using Microsoft.ML.Data;
using Microsoft.ML.Recurrent.Training;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// Trains a recurrent network (LSTM, GRU or RNN) to classify sequences into one of several classes.
/// Create it with <c>mlContext.MulticlassClassification.Trainers.Recurrent(...)</c>.
/// </summary>
/// <remarks>
/// <para>Input and output columns:</para>
/// <list type="table">
/// <listheader><term>Column</term><description>Type</description></listheader>
/// <item><term><c>Label</c></term><description>key (e.g. from <c>MapValueToKey</c>); rows whose key is missing are skipped</description></item>
/// <item><term><c>Features</c></term><description>variable-length vector of keys (token ids), or vector of <see cref="float"/> holding T × FeaturesPerStep values</description></item>
/// <item><term><c>Score</c> (output)</term><description>vector of <see cref="float"/>: the probability of each class</description></item>
/// <item><term><c>PredictedLabel</c> (output)</term><description>key of the most probable class, with the label's key values</description></item>
/// </list>
/// </remarks>
public sealed class RecurrentMulticlassTrainer : RecurrentTrainerBase<RecurrentMulticlassTransformer>
{
    /// <summary>Options for <see cref="RecurrentMulticlassTrainer"/>.</summary>
    public sealed class Options : RecurrentTrainerOptions
    {
        /// <summary>Loss weight of each class, in key order (e.g. to counter class imbalance); null = all 1. Default null.</summary>
        public float[]? ClassWeights;
    }

    internal RecurrentMulticlassTrainer(IHostEnvironment env, Options options)
        : base(env, nameof(RecurrentMulticlassTrainer), options)
    {
    }

    private protected override Objective Objective => Objective.Multiclass;

    private protected override float[] ClassWeights => ((Options)TrainerOptions).ClassWeights ?? [];

    private protected override int CheckLabel(DataViewSchema.Column label)
    {
        if (label.Type is not KeyDataViewType key || key.RawType != typeof(uint))
            throw new ArgumentOutOfRangeException(nameof(label), $"Label column '{label.Name}' has type {label.Type}; multiclass classification needs a key label (use MapValueToKey).");
        if (key.Count < 2 || key.Count > 1 << 20)
            throw new ArgumentOutOfRangeException(nameof(label), $"Label column '{label.Name}' has {key.Count} classes; need between 2 and 2^20.");
        return (int)key.Count;
    }

    private protected override TargetReader MakeTargetReader(DataViewRow row, DataViewSchema.Column label)
    {
        var getter = row.GetGetter<uint>(label);
        uint value = 0;
        return new ScalarTargetReader(() =>
        {
            getter(ref value);
            return value == 0 ? float.NaN : value - 1;
        });
    }

    private protected override RecurrentMulticlassTransformer MakeTransformer(RecurrentModel model) => new(Host, model);

    private protected override IEnumerable<SchemaShape.Column> OutputColumns(SchemaShape.Column label)
    {
        if (!label.IsKey || label.Kind != SchemaShape.Column.VectorKind.Scalar)
            throw new ArgumentOutOfRangeException(nameof(label), $"Label column '{label.Name}' must be a key (use MapValueToKey).");
        var scoreAnnotations = ScoreAnnotationShapes();
        var predictedAnnotations = ScoreAnnotationShapes();
        if (label.Annotations.TryFindColumn(AnnotationUtils.Kinds.KeyValues, out var keyValues))
        {
            scoreAnnotations.Add(new SchemaShape.Column(AnnotationUtils.Kinds.SlotNames, SchemaShape.Column.VectorKind.Vector, TextDataViewType.Instance, false));
            predictedAnnotations.Add(keyValues);
        }
        yield return new SchemaShape.Column(DefaultColumnNames.Score, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false, new SchemaShape(scoreAnnotations));
        yield return new SchemaShape.Column(DefaultColumnNames.PredictedLabel, SchemaShape.Column.VectorKind.Scalar, label.ItemType, true, new SchemaShape(predictedAnnotations));
    }
}
