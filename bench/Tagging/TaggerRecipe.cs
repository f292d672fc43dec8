using System.Globalization;

namespace Tagging;

/// <summary>
/// The BiLSTM tagging recipe that model (c), libtorch, follows and that our tagger (d) copies. The names are those of
/// <c>RecurrentTrainerOptions</c> where the option exists; docs/tagging.md lists the recipe. Network: word embedding
/// (vocabulary = training words seen at least <see cref="MinimumTokenFrequency"/> times, plus one unknown row, index 0)
/// → dropout → one bidirectional LSTM layer → dropout on every step's output → linear layer to the tags; token-level
/// cross-entropy (mean over the batch's real tokens); Adam; length-bucketed batches of sentences; the epoch with the
/// best dev token accuracy is kept.
/// </summary>
internal sealed record TaggerRecipe
{
    /// <summary><c>lower=</c>: words are lower-cased before the vocabulary lookup (capitalization is then invisible to the model).</summary>
    public bool LowerCaseWords { get; init; } = true;
    /// <summary><c>mincount=</c>: training words seen fewer times are read as the unknown word, in training too, so its row is trained.</summary>
    public int MinimumTokenFrequency { get; init; } = 1;
    /// <summary><c>emb=</c>: E.</summary>
    public int EmbeddingSize { get; init; } = 100;
    /// <summary><c>hidden=</c>: H per direction.</summary>
    public int HiddenSize { get; init; } = 100;
    /// <summary><c>layers=</c>: stacked recurrent layers (our tagger only; libtorch implements 1).</summary>
    public int NumberOfLayers { get; init; } = 1;
    public bool Bidirectional { get; init; } = true;
    /// <summary><c>edrop=</c>: dropout on the word embeddings (training only).</summary>
    public float EmbeddingDropout { get; init; } = 0.5f;
    /// <summary><c>hdrop=</c>: dropout on the BiLSTM output of every step, before the linear head (training only).</summary>
    public float HeadDropout { get; init; } = 0.5f;
    /// <summary><c>lr=</c>: Adam (β = 0.9, 0.999, ε = 1e-8, no weight decay), constant learning rate, no warm-up.</summary>
    public float LearningRate { get; init; } = 2e-3f;
    /// <summary><c>batch=</c>: sentences per batch (length-bucketed: shuffle, sort windows of 50 batches by length, shuffle the batches).</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary><c>clip=</c>: global gradient 2-norm clip (0 = none).</summary>
    public float GradientClipNorm { get; init; } = 5f;
    /// <summary><c>epochs=</c>: passes over the training sentences; the best epoch on dev accuracy is kept.</summary>
    public int NumberOfEpochs { get; init; } = 5;
    /// <summary><c>seed=</c>.</summary>
    public int Seed { get; init; } = 1;
    /// <summary><c>threads=</c>: intra-op threads for training and inference.</summary>
    public int NumberOfThreads { get; init; } = 2;
    /// <summary><c>infer=</c>: sentences per inference batch, in corpus order (not sorted by length).</summary>
    public int InferenceBatchSize { get; init; } = 32;
    /// <summary><c>sched=constant|cosine</c>: learning-rate schedule (our tagger only; libtorch implements constant).</summary>
    public string Schedule { get; init; } = "constant";
    /// <summary><c>warmup=</c>: fraction of the steps with a linear warm-up (our tagger only; libtorch implements 0).</summary>
    public float WarmupFraction { get; init; }
    /// <summary><c>chardim=</c>: the character BiLSTM's embedding and hidden size per direction (our tagger with characters).</summary>
    public int CharacterSize { get; init; } = 25;

    /// <summary>Whether the recipe uses anything only our tagger implements.</summary>
    public bool BeyondLibTorch => Schedule != "constant" || WarmupFraction != 0 || NumberOfLayers != 1;

    public static TaggerRecipe Parse(string config)
    {
        var r = new TaggerRecipe();
        foreach (var part in config.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var kv = part.Split('=', 2);
            string v = kv.Length > 1 ? kv[1] : "";
            float F() => float.Parse(v, CultureInfo.InvariantCulture);
            int I() => int.Parse(v, CultureInfo.InvariantCulture);
            r = kv[0].ToLowerInvariant() switch
            {
                "lower" => r with { LowerCaseWords = I() != 0 },
                "mincount" => r with { MinimumTokenFrequency = I() },
                "emb" => r with { EmbeddingSize = I() },
                "hidden" => r with { HiddenSize = I() },
                "edrop" => r with { EmbeddingDropout = F() },
                "hdrop" => r with { HeadDropout = F() },
                "lr" => r with { LearningRate = F() },
                "batch" => r with { BatchSize = I() },
                "clip" => r with { GradientClipNorm = F() },
                "epochs" => r with { NumberOfEpochs = I() },
                "seed" => r with { Seed = I() },
                "threads" => r with { NumberOfThreads = I() },
                "infer" => r with { InferenceBatchSize = I() },
                "sched" => r with { Schedule = v is "constant" or "cosine" ? v : throw new ArgumentException($"sched={v}: constant or cosine") },
                "warmup" => r with { WarmupFraction = F() },
                "layers" => r with { NumberOfLayers = I() },
                "chardim" => r with { CharacterSize = I() },
                _ => throw new ArgumentException($"unknown recipe config key '{kv[0]}'"),
            };
        }
        return r;
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"LowerCaseWords={LowerCaseWords}, MinimumTokenFrequency={MinimumTokenFrequency}, EmbeddingSize={EmbeddingSize}, HiddenSize={HiddenSize}, " +
        $"NumberOfLayers={NumberOfLayers}, Bidirectional={Bidirectional}, EmbeddingDropout={EmbeddingDropout}, HeadDropout={HeadDropout}, " +
        $"Adam LearningRate={LearningRate} constant, BatchSize={BatchSize} (bucketed), GradientClipNorm={GradientClipNorm}, " +
        $"NumberOfEpochs={NumberOfEpochs} (best on dev), Seed={Seed}, NumberOfThreads={NumberOfThreads}, InferenceBatchSize={InferenceBatchSize}") +
        (BeyondLibTorch ? string.Create(CultureInfo.InvariantCulture, $", Schedule={Schedule}, WarmupFraction={WarmupFraction}") : "");
}
