using Microsoft.ML.Data;
using Microsoft.ML.Recurrent;

namespace Microsoft.ML;

// The sequence tagger's catalog methods: the trainer and its evaluator.
public static partial class RecurrentCatalog
{
    /// <summary>
    /// A recurrent sequence tagger (bidirectional LSTM by default): a tag for every token — part of speech, named
    /// entities, chunks, slots.
    /// </summary>
    /// <param name="catalog">The multiclass trainers catalog.</param>
    /// <param name="labelColumnName">Vector of keys: one tag per token.</param>
    /// <param name="featureColumnName">Vector of keys: the tokens.</param>
    /// <param name="outputColumnName">The column of predicted tags (a vector of keys as long as the tokens).</param>
    /// <param name="hiddenSize">Hidden units per direction.</param>
    /// <param name="numberOfLayers">Stacked recurrent layers.</param>
    /// <param name="numberOfEpochs">Passes over the training data.</param>
    public static RecurrentTaggerTrainer RecurrentTagger(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = DefaultColumnNames.Label, string featureColumnName = DefaultColumnNames.Features,
        string outputColumnName = DefaultColumnNames.PredictedLabel, int hiddenSize = 100, int numberOfLayers = 1, int numberOfEpochs = 5)
        => catalog.RecurrentTagger(new RecurrentTaggerTrainer.Options
        {
            LabelColumnName = labelColumnName, FeatureColumnName = featureColumnName, OutputColumnName = outputColumnName,
            HiddenSize = hiddenSize, NumberOfLayers = numberOfLayers, NumberOfEpochs = numberOfEpochs,
        });

    /// <summary>A recurrent sequence tagger configured by <paramref name="options"/>.</summary>
    /// <param name="catalog">The multiclass trainers catalog.</param>
    /// <param name="options">Network, tagging and training options.</param>
    public static RecurrentTaggerTrainer RecurrentTagger(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        RecurrentTaggerTrainer.Options options)
        => new(CatalogUtils.GetEnvironment(catalog ?? throw new ArgumentNullException(nameof(catalog))), options);

    /// <summary>
    /// Evaluates a tagger's predictions: token accuracy, accuracy on tokens unseen in training and, for tags in a chunk
    /// scheme (BIO, IOB1, IOBES), entity-level precision, recall and F1 as conlleval computes them.
    /// </summary>
    /// <param name="catalog">The multiclass classification catalog.</param>
    /// <param name="data">Scored data: the gold tags, the predicted tags and the tokens.</param>
    /// <param name="labelColumnName">Gold tags: a vector of keys.</param>
    /// <param name="predictedLabelColumnName">Predicted tags: a vector of keys of the same key type.</param>
    /// <param name="featureColumnName">The token keys; key 0 marks a token unseen in training.</param>
    public static TaggingMetrics EvaluateTagging(this MulticlassClassificationCatalog catalog, IDataView data,
        string labelColumnName = DefaultColumnNames.Label, string predictedLabelColumnName = DefaultColumnNames.PredictedLabel,
        string featureColumnName = DefaultColumnNames.Features)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return TaggingEvaluator.Evaluate(data, labelColumnName, predictedLabelColumnName, featureColumnName);
    }
}
