using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// Estimator for <see cref="TokenizeToIdsTransformer"/> (nothing to learn). Create it with
/// <c>mlContext.Transforms.Text.TokenizeToIds(outputColumnName, inputColumnName, tokenizer)</c>.
/// </summary>
/// <remarks>
/// <list type="table">
/// <listheader><term>Column</term><description>Type</description></listheader>
/// <item><term>input</term><description>text</description></item>
/// <item><term>output</term><description>variable-length vector of keys (id + 1) with the tokenizer's vocabulary size as key count</description></item>
/// </list>
/// </remarks>
public sealed class TokenizeToIdsEstimator : TrivialEstimator<TokenizeToIdsTransformer>
{
    internal TokenizeToIdsEstimator(IHostEnvironment env, string outputColumnName, string inputColumnName, TokenizerData tokenizer)
        : base(env.Register(nameof(TokenizeToIdsEstimator)), new TokenizeToIdsTransformer(env, outputColumnName, inputColumnName, tokenizer))
    {
    }

    /// <summary>The input schema plus the output key-vector column; checks that the input column is text.</summary>
    public override SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        if (!inputSchema.TryFindColumn(Transformer.InputColumnName, out var input))
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Input column '{Transformer.InputColumnName}' not found.");
        if (input.Kind != SchemaShape.Column.VectorKind.Scalar || input.ItemType is not TextDataViewType)
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Input column '{Transformer.InputColumnName}' must be text.");
        var result = inputSchema.ToDictionary(c => c.Name);
        result[Transformer.OutputColumnName] = new SchemaShape.Column(Transformer.OutputColumnName,
            SchemaShape.Column.VectorKind.VariableVector, NumberDataViewType.UInt32, true);
        return new SchemaShape(result.Values);
    }
}
