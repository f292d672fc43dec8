using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// Estimator for <see cref="RecurrentFeaturizerTransformer"/>: applies an already trained recurrent model as a
/// featurizer (nothing to learn). Create it with <c>mlContext.Transforms.RecurrentFeatures(model, ...)</c>.
/// </summary>
/// <remarks>
/// <list type="table">
/// <listheader><term>Column</term><description>Type</description></listheader>
/// <item><term>the model's feature column (input)</term><description>as when the model was trained: a vector of keys, or of <see cref="float"/></description></item>
/// <item><term>pooled column (output)</term><description>known-size vector of <see cref="float"/> (<see cref="RecurrentFeaturizerTransformer.PooledSize"/>)</description></item>
/// <item><term>states column (output)</term><description>variable-length vector of <see cref="float"/>, T × D·H</description></item>
/// </list>
/// </remarks>
public sealed class RecurrentFeaturizerEstimator : TrivialEstimator<RecurrentFeaturizerTransformer>
{
    internal RecurrentFeaturizerEstimator(IHostEnvironment env, RecurrentFeaturizerTransformer transformer)
        : base(env.Register(nameof(RecurrentFeaturizerEstimator)), transformer)
    {
    }

    /// <summary>The input schema plus the output columns; checks that the model's feature column is there.</summary>
    public override SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        if (!inputSchema.TryFindColumn(Transformer.FeatureColumnName, out var feature))
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Feature column '{Transformer.FeatureColumnName}' not found.");
        if (feature.Kind == SchemaShape.Column.VectorKind.Scalar)
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Feature column '{Transformer.FeatureColumnName}' must be a vector of keys or of Single.");
        var result = inputSchema.ToDictionary(c => c.Name);
        if (Transformer.PooledColumnName is { } pooled)
            result[pooled] = new SchemaShape.Column(pooled, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false);
        if (Transformer.StatesColumnName is { } states)
            result[states] = new SchemaShape.Column(states, SchemaShape.Column.VectorKind.VariableVector, NumberDataViewType.Single, false);
        return new SchemaShape(result.Values);
    }
}
