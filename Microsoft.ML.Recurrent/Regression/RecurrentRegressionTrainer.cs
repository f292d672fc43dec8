using Microsoft.ML.Data;
using Microsoft.ML.Recurrent.Training;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// Trains a recurrent network (LSTM, GRU or RNN) to predict a real value from a sequence, e.g. the next value of a
/// multivariate time series. Create it with <c>mlContext.Regression.Trainers.Recurrent(...)</c>.
/// </summary>
/// <remarks>
/// <list type="table">
/// <listheader><term>Column</term><description>Type</description></listheader>
/// <item><term><c>Label</c></term><description><see cref="float"/>; rows with NaN are skipped</description></item>
/// <item><term><c>Features</c></term><description>vector of <see cref="float"/> holding T × FeaturesPerStep values, or a variable-length vector of keys</description></item>
/// <item><term><c>Score</c> (output)</term><description><see cref="float"/>: the predicted value</description></item>
/// </list>
/// </remarks>
public sealed class RecurrentRegressionTrainer : RecurrentTrainerBase<RecurrentRegressionTransformer>
{
    /// <summary>Options for <see cref="RecurrentRegressionTrainer"/>.</summary>
    public sealed class Options : RecurrentTrainerOptions
    {
    }

    internal RecurrentRegressionTrainer(IHostEnvironment env, Options options)
        : base(env, nameof(RecurrentRegressionTrainer), options)
    {
    }

    private protected override Objective Objective => Objective.Regression;

    private protected override int CheckLabel(DataViewSchema.Column label)
    {
        if (label.Type != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(nameof(label), $"Label column '{label.Name}' has type {label.Type}; regression needs a Single label.");
        return 1;
    }

    private protected override TargetReader MakeTargetReader(DataViewRow row, DataViewSchema.Column label)
    {
        var getter = row.GetGetter<float>(label);
        float value = 0;
        return new ScalarTargetReader(() =>
        {
            getter(ref value);
            return float.IsFinite(value) ? value : float.NaN;
        });
    }

    private protected override RecurrentRegressionTransformer MakeTransformer(RecurrentModel model) => new(Host, model);

    private protected override IEnumerable<SchemaShape.Column> OutputColumns(SchemaShape.Column label)
    {
        if (label.Kind != SchemaShape.Column.VectorKind.Scalar || label.ItemType != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(nameof(label), $"Label column '{label.Name}' must be Single.");
        yield return new SchemaShape.Column(DefaultColumnNames.Score, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single, false, new SchemaShape(ScoreAnnotationShapes()));
    }
}
