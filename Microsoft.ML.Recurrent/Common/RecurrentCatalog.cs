using Microsoft.ML.Data;
using Microsoft.ML.Recurrent;

namespace Microsoft.ML;

/// <summary>Catalog extension methods that create the recurrent trainers.</summary>
public static partial class RecurrentCatalog
{
    /// <summary>
    /// A recurrent network (bidirectional LSTM by default) that classifies sequences into one of several classes.
    /// </summary>
    /// <param name="catalog">The multiclass trainers catalog.</param>
    /// <param name="labelColumnName">Key label column.</param>
    /// <param name="featureColumnName">Vector of keys (tokens) or of <see cref="float"/> values.</param>
    /// <param name="hiddenSize">Hidden units per direction.</param>
    /// <param name="numberOfLayers">Stacked recurrent layers.</param>
    /// <param name="bidirectional">Whether each layer also reads the sequence backwards.</param>
    /// <param name="numberOfEpochs">Passes over the training data.</param>
    public static RecurrentMulticlassTrainer Recurrent(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = DefaultColumnNames.Label, string featureColumnName = DefaultColumnNames.Features,
        int hiddenSize = 128, int numberOfLayers = 1, bool bidirectional = true, int numberOfEpochs = 5)
        => catalog.Recurrent(new RecurrentMulticlassTrainer.Options
        {
            LabelColumnName = labelColumnName, FeatureColumnName = featureColumnName, HiddenSize = hiddenSize,
            NumberOfLayers = numberOfLayers, Bidirectional = bidirectional, NumberOfEpochs = numberOfEpochs,
        });

    /// <summary>A recurrent multiclass classifier configured by <paramref name="options"/>.</summary>
    /// <param name="catalog">The multiclass trainers catalog.</param>
    /// <param name="options">Network and training options.</param>
    public static RecurrentMulticlassTrainer Recurrent(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        RecurrentMulticlassTrainer.Options options)
        => new(CatalogUtils.GetEnvironment(catalog ?? throw new ArgumentNullException(nameof(catalog))), options);

    /// <summary>A recurrent network (bidirectional LSTM by default) that classifies sequences into two classes.</summary>
    /// <param name="catalog">The binary trainers catalog.</param>
    /// <param name="labelColumnName">Boolean label column.</param>
    /// <param name="featureColumnName">Vector of keys (tokens) or of <see cref="float"/> values.</param>
    /// <param name="hiddenSize">Hidden units per direction.</param>
    /// <param name="numberOfLayers">Stacked recurrent layers.</param>
    /// <param name="bidirectional">Whether each layer also reads the sequence backwards.</param>
    /// <param name="numberOfEpochs">Passes over the training data.</param>
    public static RecurrentBinaryTrainer Recurrent(this BinaryClassificationCatalog.BinaryClassificationTrainers catalog,
        string labelColumnName = DefaultColumnNames.Label, string featureColumnName = DefaultColumnNames.Features,
        int hiddenSize = 128, int numberOfLayers = 1, bool bidirectional = true, int numberOfEpochs = 5)
        => catalog.Recurrent(new RecurrentBinaryTrainer.Options
        {
            LabelColumnName = labelColumnName, FeatureColumnName = featureColumnName, HiddenSize = hiddenSize,
            NumberOfLayers = numberOfLayers, Bidirectional = bidirectional, NumberOfEpochs = numberOfEpochs,
        });

    /// <summary>A recurrent binary classifier configured by <paramref name="options"/>.</summary>
    /// <param name="catalog">The binary trainers catalog.</param>
    /// <param name="options">Network and training options.</param>
    public static RecurrentBinaryTrainer Recurrent(this BinaryClassificationCatalog.BinaryClassificationTrainers catalog,
        RecurrentBinaryTrainer.Options options)
        => new(CatalogUtils.GetEnvironment(catalog ?? throw new ArgumentNullException(nameof(catalog))), options);

    /// <summary>A recurrent network (bidirectional LSTM by default) that predicts a value from a sequence.</summary>
    /// <param name="catalog">The regression trainers catalog.</param>
    /// <param name="labelColumnName">Single label column.</param>
    /// <param name="featureColumnName">Vector of <see cref="float"/> values (T × FeaturesPerStep) or of keys.</param>
    /// <param name="hiddenSize">Hidden units per direction.</param>
    /// <param name="numberOfLayers">Stacked recurrent layers.</param>
    /// <param name="bidirectional">Whether each layer also reads the sequence backwards.</param>
    /// <param name="numberOfEpochs">Passes over the training data.</param>
    public static RecurrentRegressionTrainer Recurrent(this RegressionCatalog.RegressionTrainers catalog,
        string labelColumnName = DefaultColumnNames.Label, string featureColumnName = DefaultColumnNames.Features,
        int hiddenSize = 128, int numberOfLayers = 1, bool bidirectional = true, int numberOfEpochs = 5)
        => catalog.Recurrent(new RecurrentRegressionTrainer.Options
        {
            LabelColumnName = labelColumnName, FeatureColumnName = featureColumnName, HiddenSize = hiddenSize,
            NumberOfLayers = numberOfLayers, Bidirectional = bidirectional, NumberOfEpochs = numberOfEpochs,
        });

    /// <summary>A recurrent regressor configured by <paramref name="options"/>.</summary>
    /// <param name="catalog">The regression trainers catalog.</param>
    /// <param name="options">Network and training options.</param>
    public static RecurrentRegressionTrainer Recurrent(this RegressionCatalog.RegressionTrainers catalog,
        RecurrentRegressionTrainer.Options options)
        => new(CatalogUtils.GetEnvironment(catalog ?? throw new ArgumentNullException(nameof(catalog))), options);
}

/// <summary>Catalog extension methods for tokenizing text into key vectors with Microsoft.ML.Tokenizers.</summary>
public static class TokenizerCatalog
{
    /// <summary>
    /// Tokenizes a text column into a variable-length vector of keys (token id + 1) with a Microsoft.ML.Tokenizers
    /// tokenizer; the tokenizer's data is saved with the model.
    /// </summary>
    /// <param name="catalog">The text transforms catalog.</param>
    /// <param name="outputColumnName">Name of the key-vector column to create.</param>
    /// <param name="inputColumnName">Text column to tokenize.</param>
    /// <param name="tokenizer">The tokenizer and its data, e.g. <see cref="TokenizerData.Bert"/>.</param>
    public static TokenizeToIdsEstimator TokenizeToIds(this TransformsCatalog.TextTransforms catalog,
        string outputColumnName, string inputColumnName, TokenizerData tokenizer)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentException.ThrowIfNullOrWhiteSpace(outputColumnName);
        ArgumentException.ThrowIfNullOrWhiteSpace(inputColumnName);
        ArgumentNullException.ThrowIfNull(tokenizer);
        return new TokenizeToIdsEstimator(CatalogUtils.GetEnvironment(catalog), outputColumnName, inputColumnName, tokenizer);
    }
}
