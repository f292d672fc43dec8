using Microsoft.ML.Data;
using Microsoft.ML.Recurrent;

namespace Microsoft.ML;

// A trained recurrent model as a featurizer.
public static partial class RecurrentCatalog
{
    /// <summary>
    /// Applies a trained recurrent model (classifier, regressor or tagger) as a featurizer: its pooled representation
    /// of each sequence as a fixed-size vector of <see cref="float"/>, and/or its top layer's state at every token, for
    /// any ML.NET trainer (SDCA, L-BFGS, FastTree, LightGBM) to learn from. It reads the column the model was trained on.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="model">The trained model, e.g. the last transformer of a fitted pipeline.</param>
    /// <param name="pooledColumnName">The pooled representation's column, or null for none.</param>
    /// <param name="statesColumnName">The per-token states' column (T × D·H values), or null for none.</param>
    public static RecurrentFeaturizerEstimator RecurrentFeatures(this TransformsCatalog catalog, RecurrentTransformerBase model,
        string? pooledColumnName = "RecurrentFeatures", string? statesColumnName = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(model);
        var env = CatalogUtils.GetEnvironment(catalog);
        return new RecurrentFeaturizerEstimator(env, new RecurrentFeaturizerTransformer(env, model.Model, pooledColumnName, statesColumnName));
    }
}
