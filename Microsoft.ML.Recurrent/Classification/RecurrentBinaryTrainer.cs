using Microsoft.ML.Data;
using Microsoft.ML.Recurrent.Training;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// Trains a recurrent network (LSTM, GRU or RNN) to classify sequences into two classes.
/// Create it with <c>mlContext.BinaryClassification.Trainers.Recurrent(...)</c>.
/// </summary>
/// <remarks>
/// <list type="table">
/// <listheader><term>Column</term><description>Type</description></listheader>
/// <item><term><c>Label</c></term><description><see cref="bool"/></description></item>
/// <item><term><c>Features</c></term><description>variable-length vector of keys (token ids), or vector of <see cref="float"/> holding T × FeaturesPerStep values</description></item>
/// <item><term><c>Score</c> (output)</term><description><see cref="float"/>: the logit</description></item>
/// <item><term><c>Probability</c> (output)</term><description><see cref="float"/>: the probability of <c>true</c></description></item>
/// <item><term><c>PredictedLabel</c> (output)</term><description><see cref="bool"/>: Score &gt; 0</description></item>
/// </list>
/// </remarks>
public sealed class RecurrentBinaryTrainer : RecurrentTrainerBase<RecurrentBinaryTransformer>
{
    /// <summary>Options for <see cref="RecurrentBinaryTrainer"/>.</summary>
    public sealed class Options : RecurrentTrainerOptions
    {
    }

    internal RecurrentBinaryTrainer(IHostEnvironment env, Options options)
        : base(env, nameof(RecurrentBinaryTrainer), options)
    {
    }

    private protected override Objective Objective => Objective.Binary;

    private protected override int CheckLabel(DataViewSchema.Column label)
    {
        if (label.Type is not BooleanDataViewType)
            throw new ArgumentOutOfRangeException(nameof(label), $"Label column '{label.Name}' has type {label.Type}; binary classification needs a Boolean label.");
        return 1;
    }

    private protected override TargetReader MakeTargetReader(DataViewRow row, DataViewSchema.Column label)
    {
        var getter = row.GetGetter<bool>(label);
        bool value = false;
        return new ScalarTargetReader(() =>
        {
            getter(ref value);
            return value ? 1f : 0f;
        });
    }

    private protected override RecurrentBinaryTransformer MakeTransformer(RecurrentModel model) => new(Host, model);

    private protected override IEnumerable<SchemaShape.Column> OutputColumns(SchemaShape.Column label)
    {
        if (label.Kind != SchemaShape.Column.VectorKind.Scalar || label.ItemType is not BooleanDataViewType)
            throw new ArgumentOutOfRangeException(nameof(label), $"Label column '{label.Name}' must be Boolean.");
        yield return new SchemaShape.Column(DefaultColumnNames.Score, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single, false, new SchemaShape(ScoreAnnotationShapes()));
        yield return new SchemaShape.Column(DefaultColumnNames.Probability, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single, false, new SchemaShape(ScoreAnnotationShapes(normalized: true)));
        yield return new SchemaShape.Column(DefaultColumnNames.PredictedLabel, SchemaShape.Column.VectorKind.Scalar, BooleanDataViewType.Instance, false, new SchemaShape(ScoreAnnotationShapes()));
    }
}
