namespace Tagging;

/// <summary>
/// One model of the side-by-side comparison. The harness (Program.cs) times <see cref="Train"/> and
/// <see cref="Predict"/> and scores the predictions itself (<see cref="Scoring"/>), so every model is measured the same way.
/// </summary>
internal interface ITagger
{
    /// <summary>What exactly runs (model, features, hyper-parameters), stored with the result.</summary>
    string Settings { get; }

    /// <summary>
    /// Trains on <c>corpus.Train</c>. May read <c>corpus.Dev</c> (e.g. to choose the best epoch) and record per-epoch
    /// figures in <paramref name="result"/>; must never read <c>corpus.Test</c>.
    /// </summary>
    void Train(BrownCorpus corpus, TaggingResult result);

    /// <summary>One predicted tag per word of every sentence, sentences in the given order.</summary>
    string[][] Predict(IReadOnlyList<TaggedSentence> sentences);
}

/// <summary>The models by name. A model's config is "key=value,key=value" (keys in each model's file).</summary>
internal static class Taggers
{
    /// <summary>What <c>--model all</c> runs: every model that exists today.</summary>
    public static readonly string[] All = ["mft", "mft-rules", "maxent", "libtorch", "ours", "ours-crf", "ours-char", "ours-crf-char"];

    public static ITagger Create(string model, string config) => model switch
    {
        "mft" => new MostFrequentTagTagger(useRules: false),                 // (a)
        "mft-rules" => new MostFrequentTagTagger(useRules: true),            // (a), variant with unseen-word rules
        "maxent" => new MaxEntTagger(MaxEntTagger.Options.Parse(config)),     // (b)
        "libtorch" => new TorchTagger(TaggerRecipe.Parse(config)),           // (c)
        // (d) our tagger, without and with the CRF and the character features
        "ours" => new OursTagger(TaggerRecipe.Parse(config), useCrf: false, useChars: false),
        "ours-crf" => new OursTagger(TaggerRecipe.Parse(config), useCrf: true, useChars: false),
        "ours-char" => new OursTagger(TaggerRecipe.Parse(config), useCrf: false, useChars: true),
        "ours-crf-char" => new OursTagger(TaggerRecipe.Parse(config), useCrf: true, useChars: true),
        _ => throw new ArgumentException($"unknown model '{model}' (mft, mft-rules, maxent, libtorch, ours, ours-crf, ours-char, ours-crf-char)"),
    };
}
