namespace Microsoft.ML.Recurrent;

/// <summary>
/// Evaluation results of a sequence tagger (<c>mlContext.MulticlassClassification.EvaluateTagging(...)</c>): token
/// accuracy, accuracy on tokens unseen in training, and — when the tags are in a chunk scheme (BIO, IOB1, IOBES) —
/// entity-level precision, recall and F1 computed the way the CoNLL <c>conlleval</c> script does.
/// </summary>
public sealed class TaggingMetrics
{
    internal TaggingMetrics(long tokens, long correctTokens, long unseenTokens, long correctUnseenTokens,
        IReadOnlyDictionary<string, EntityMetrics>? entities, EntityMetrics? overall, long tokensWithoutGoldTag = 0)
    {
        Tokens = tokens;
        TokensWithoutGoldTag = tokensWithoutGoldTag;
        TokenAccuracy = tokens == 0 ? double.NaN : (double)correctTokens / tokens;
        UnseenTokens = unseenTokens;
        UnseenTokenAccuracy = unseenTokens == 0 ? double.NaN : (double)correctUnseenTokens / unseenTokens;
        EntitiesByType = entities ?? new Dictionary<string, EntityMetrics>();
        Entities = overall;
    }

    /// <summary>Tokens evaluated (tokens with a gold tag).</summary>
    public long Tokens { get; }

    /// <summary>
    /// Tokens left out because their gold tag is missing (key 0) — for example a tag that <c>MapValueToKey</c>, fitted
    /// on the training data, never met. The tagger cannot predict such a tag; check this count when it is not 0.
    /// </summary>
    public long TokensWithoutGoldTag { get; }

    /// <summary>Fraction of tokens whose predicted tag is the gold tag.</summary>
    public double TokenAccuracy { get; }

    /// <summary>
    /// Tokens unseen in training: key 0 in the feature column, which is what <c>MapValueToKey</c> fitted on the
    /// training data gives a word it never met.
    /// </summary>
    public long UnseenTokens { get; }

    /// <summary>Token accuracy on <see cref="UnseenTokens"/>; NaN when there are none.</summary>
    public double UnseenTokenAccuracy { get; }

    /// <summary>Entity-level (chunk) scores over all entity types, or null when the tags are not a chunk scheme.</summary>
    public EntityMetrics? Entities { get; }

    /// <summary>Entity-level scores per entity type (empty when the tags are not a chunk scheme).</summary>
    public IReadOnlyDictionary<string, EntityMetrics> EntitiesByType { get; }
}

/// <summary>Entity-level scores: an entity is correct when its first token, last token and type all match the gold.</summary>
public sealed class EntityMetrics
{
    internal EntityMetrics(long correct, long predicted, long gold)
    {
        Correct = correct;
        Predicted = predicted;
        Gold = gold;
        Precision = predicted == 0 ? 0 : (double)correct / predicted;
        Recall = gold == 0 ? 0 : (double)correct / gold;
        F1 = Precision + Recall == 0 ? 0 : 2 * Precision * Recall / (Precision + Recall);
    }

    /// <summary>Predicted entities that match a gold entity exactly.</summary>
    public long Correct { get; }

    /// <summary>Predicted entities.</summary>
    public long Predicted { get; }

    /// <summary>Gold entities.</summary>
    public long Gold { get; }

    /// <summary>Correct / Predicted (0 when nothing was predicted, as conlleval reports it).</summary>
    public double Precision { get; }

    /// <summary>Correct / Gold.</summary>
    public double Recall { get; }

    /// <summary>Harmonic mean of precision and recall.</summary>
    public double F1 { get; }
}
