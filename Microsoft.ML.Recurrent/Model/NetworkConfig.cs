using Microsoft.ML.Recurrent.Layers;

namespace Microsoft.ML.Recurrent.Model;

/// <summary>The shape of a <see cref="RecurrentNetwork"/>.</summary>
internal sealed record NetworkConfig
{
    /// <summary>Cell of every recurrent layer.</summary>
    public RecurrentCellKind Cell { get; init; } = RecurrentCellKind.Lstm;
    /// <summary>Vocabulary size V for token input; 0 for dense input.</summary>
    public int VocabularySize { get; init; }
    /// <summary>Embedding width E (token input) or features per step (dense input): the recurrent stack's input width.</summary>
    public int InputSize { get; init; }
    /// <summary>Hidden width H per direction.</summary>
    public int HiddenSize { get; init; }
    /// <summary>Number of stacked layers L.</summary>
    public int NumLayers { get; init; } = 1;
    /// <summary>Whether each layer has a reverse direction.</summary>
    public bool Bidirectional { get; init; }
    /// <summary>Dropout between recurrent layers (training only).</summary>
    public float Dropout { get; init; }
    /// <summary>Dropout on the stack's input — the embedded tokens or the dense features (training only, not saved).</summary>
    public float InputDropout { get; init; }
    /// <summary>Dropout on the head's input — the pooled vector, or every step's output (training only, not saved).</summary>
    public float HeadDropout { get; init; }
    /// <summary>What the head predicts from: the pooled sequence, or every step.</summary>
    public NetworkHeadKind Head { get; init; } = NetworkHeadKind.Pooled;
    /// <summary>Whether a linear-chain CRF scores the per-step head's tag sequences (per-step head only).</summary>
    public bool UseCrf { get; init; }
    /// <summary>Allowed tag transitions of the CRF, or null for none (every transition allowed).</summary>
    public CrfConstraints? CrfConstraints { get; init; }
    /// <summary>
    /// Weight tying (language models): the per-step head's weight is the input embedding [V, E], so the outputs are
    /// the vocabulary (O = V) and the stack's output width D·H must equal E.
    /// </summary>
    public bool TieWeights { get; init; }
    /// <summary>Character vocabulary of the character-level word encoder (token input), or 0 for none.</summary>
    public int CharacterVocabularySize { get; init; }
    /// <summary>Character embedding width of the character encoder.</summary>
    public int CharacterEmbeddingSize { get; init; }
    /// <summary>Hidden width per direction of the character encoder; each word gets 2× this many features.</summary>
    public int CharacterHiddenSize { get; init; }
    /// <summary>Characters the encoder reads per word at most (0 = all): the first ⌈k/2⌉ and the last ⌊k/2⌋.</summary>
    public int MaximumWordLength { get; init; }

    /// <summary>Whether a character-level word encoder adds features to every token.</summary>
    public bool UsesCharacters => CharacterVocabularySize > 0;
    /// <summary>How the top layer's outputs are pooled into one vector (pooled head).</summary>
    public PoolingKind Pooling { get; init; } = PoolingKind.FinalState;
    /// <summary>Width O of the linear head (classes or tags, 1 for binary or regression).</summary>
    public int OutputSize { get; init; }
    /// <summary>
    /// Width F of the wide part of a wide &amp; deep pooled head (<c>wide.weight</c> [O, F], read from a sparse feature
    /// vector per sequence), or 0 for none.
    /// </summary>
    public int WideSize { get; init; }
    /// <summary>Dropout on the wide features' stored entries (training only, not saved).</summary>
    public float WideDropout { get; init; }
    /// <summary>Steps n of every sequence a forecast head reads (the look-back window's segments); 0 for other heads.</summary>
    public int ForecastSteps { get; init; }
    /// <summary>Leading features w of each step that a forecast head's linear skip reads (the target's segment values), 0 for no window skip.</summary>
    public int SkipColumns { get; init; }
    /// <summary>Static values S per sequence that a forecast head's skip reads (the known future covariates), 0 for none.</summary>
    public int StaticSize { get; init; }
    /// <summary>Token id that gets no embedding gradient, or −1.</summary>
    public int PaddingId { get; init; } = -1;

    /// <summary>Whether the input is token ids (true) or dense per-step features (false).</summary>
    public bool TokenInput => VocabularySize > 0;
}

/// <summary>What a network's head predicts from. The numeric values are written to model files: never change or reuse them.</summary>
internal enum NetworkHeadKind
{
    /// <summary>One output row per sequence, from its pooled outputs (<see cref="PooledHead"/>).</summary>
    Pooled = 0,
    /// <summary>One output row per step (<see cref="PerStepHead"/>).</summary>
    PerStep = 1,
    /// <summary>A direct multi-horizon forecast per sequence of fixed length (<see cref="ForecastHead"/>).</summary>
    Forecast = 2,
}
