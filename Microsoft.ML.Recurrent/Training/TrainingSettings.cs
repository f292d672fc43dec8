namespace Microsoft.ML.Recurrent.Training;

/// <summary>The training recipe, free of ML.NET types.</summary>
internal sealed record TrainingSettings
{
    public int Epochs { get; init; } = 5;
    public int BatchSize { get; init; } = 32;
    public float LearningRate { get; init; } = 2e-3f;
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Adam;
    public float Momentum { get; init; } = 0.9f;
    public float WeightDecay { get; init; }
    /// <summary>Global gradient-norm limit; 0 disables clipping.</summary>
    public float GradientClipNorm { get; init; } = 5f;
    public LearningRateSchedule Schedule { get; init; } = LearningRateSchedule.Constant;
    /// <summary>Fraction of all steps spent warming the learning rate up linearly from 0.</summary>
    public float WarmupFraction { get; init; }
    /// <summary>Per-class loss weights (multiclass), or empty.</summary>
    public float[] ClassWeights { get; init; } = [];
    /// <summary>Epochs without improvement of the validation metric before stopping; 0 disables early stopping.</summary>
    public int EarlyStoppingPatience { get; init; }
    public EarlyStoppingMetric EarlyStoppingMetric { get; init; } = EarlyStoppingMetric.Auto;
    /// <summary>Threads for forward and backward (results do not depend on it).</summary>
    public int Threads { get; init; } = 1;
    public long Seed { get; init; }
    /// <summary>A range of <see cref="Core.ParameterSet.Values"/> that training leaves unchanged (e.g. frozen embeddings), or none.</summary>
    public (int Offset, int Length) Frozen { get; init; }
    /// <summary>
    /// Layer groups from the bottom (input, recurrent layers, head): the offset where each begins in
    /// <see cref="Core.ParameterSet.Values"/>, ascending from 0. Used by <see cref="DiscriminativeFactor"/> and
    /// <see cref="GradualUnfreezing"/>; empty = one group.
    /// </summary>
    public int[] LayerGroupStarts { get; init; } = [];
    /// <summary>ULMFiT's discriminative fine-tuning: the top group learns at the learning rate, each group below at this factor times the one above (1 = off).</summary>
    public float DiscriminativeFactor { get; init; } = 1f;
    /// <summary>The wide part's learning rate is the learning rate times this (wide &amp; deep; 1 = the same).</summary>
    public float WideFactor { get; init; } = 1f;
    /// <summary>How the wide and the deep part learn (one loss on the sum, or one each).</summary>
    public WideTrainingMode WideMode { get; init; }

    /// <summary>
    /// Whether the network starts from a saved model's weights (a safetensors file), whose wide &amp; deep parts are at
    /// the model's scale: <see cref="WideTrainingMode.Ensemble"/> trains them at twice that scale and halves them at the
    /// end, so they are doubled first.
    /// </summary>
    public bool StartsFromSavedModel { get; init; }
    /// <summary>ULMFiT's gradual unfreezing: epoch e trains the top e groups only (the rest stay as they are); from epoch G on, all.</summary>
    public bool GradualUnfreezing { get; init; }
}
