using Microsoft.ML.Data;
using Microsoft.ML.Recurrent;

namespace Microsoft.ML;

// The recurrent language model's catalog methods.
public static partial class RecurrentCatalog
{
    /// <summary>
    /// A recurrent language model (a 2-layer LSTM by default) trained on a text column (character level) or a vector of
    /// keys (token level). The fitted transformer adds each row's log-likelihood and perplexity and generates text.
    /// </summary>
    /// <param name="catalog">The text transforms catalog.</param>
    /// <param name="inputColumnName">Text, or a vector of keys.</param>
    /// <param name="hiddenSize">Hidden units of every layer.</param>
    /// <param name="numberOfLayers">Stacked layers.</param>
    /// <param name="numberOfEpochs">Passes over the training text.</param>
    public static RecurrentLanguageModelEstimator RecurrentLanguageModel(this TransformsCatalog.TextTransforms catalog,
        string inputColumnName = "Text", int hiddenSize = 512, int numberOfLayers = 2, int numberOfEpochs = 10)
        => catalog.RecurrentLanguageModel(new RecurrentLanguageModelEstimator.Options
        {
            InputColumnName = inputColumnName, HiddenSize = hiddenSize, NumberOfLayers = numberOfLayers, NumberOfEpochs = numberOfEpochs,
        });

    /// <summary>A recurrent language model configured by <paramref name="options"/>.</summary>
    /// <param name="catalog">The text transforms catalog.</param>
    /// <param name="options">Network, training and column options.</param>
    public static RecurrentLanguageModelEstimator RecurrentLanguageModel(this TransformsCatalog.TextTransforms catalog,
        RecurrentLanguageModelEstimator.Options options)
        => new(CatalogUtils.GetEnvironment(catalog ?? throw new ArgumentNullException(nameof(catalog))), options);
}
