namespace Microsoft.ML.Recurrent.Optimizers;

/// <summary>Updates a flat parameter buffer from its flat gradient buffer (llm.c style: one array each).</summary>
internal abstract class Optimizer
{
    /// <summary>Learning rate used by the next <see cref="Step"/>; a schedule may change it between steps.</summary>
    public float LearningRate { get; set; }

    /// <summary>Number of steps taken.</summary>
    public long StepCount { get; protected set; }

    /// <summary>Applies one update: parameters ← f(parameters, gradients, state).</summary>
    public abstract void Step(Span<float> parameters, ReadOnlySpan<float> gradients);

    private int[] _groupStarts = [];
    private float[] _groupScales = [];

    /// <summary>
    /// Parameter groups with their own learning rate (ULMFiT's discriminative fine-tuning): group g covers
    /// [starts[g], starts[g + 1]) (the last one to the end) and learns at <see cref="LearningRate"/> × scales[g].
    /// Empty = one group at scale 1, the plain update.
    /// </summary>
    public void SetGroups(int[] starts, float[] scales)
    {
        if (starts.Length != scales.Length) throw new ArgumentException($"{starts.Length} group starts for {scales.Length} scales.", nameof(scales));
        for (int g = 0; g < starts.Length; g++)
        {
            if (starts[g] < 0 || (g > 0 ? starts[g] < starts[g - 1] : starts[g] != 0))
                throw new ArgumentException("Group starts must begin at 0 and not decrease.", nameof(starts));
            if (!(scales[g] > 0 && float.IsFinite(scales[g])))
                throw new ArgumentOutOfRangeException(nameof(scales), scales[g], "Group learning-rate scales must be positive.");
        }
        _groupStarts = (int[])starts.Clone();
        _groupScales = (float[])scales.Clone();
    }

    /// <summary>Number of groups: those set, or one (every parameter at scale 1).</summary>
    protected int GroupCount => Math.Max(1, _groupStarts.Length);

    /// <summary>
    /// Group <paramref name="g"/> over <paramref name="length"/> parameters as (from, to, scale); the range may be
    /// empty. Indexed rather than enumerated, so that a step allocates nothing.
    /// </summary>
    protected (int From, int To, float Scale) Group(int g, int length)
    {
        if (_groupStarts.Length == 0) return (0, length, 1f);
        int from = Math.Min(_groupStarts[g], length), to = g + 1 < _groupStarts.Length ? Math.Min(_groupStarts[g + 1], length) : length;
        return (from, Math.Max(from, to), _groupScales[g]);
    }

    /// <summary>The optimizer a training recipe names, for <paramref name="length"/> parameters.</summary>
    public static Optimizer Create(Training.TrainingSettings settings, int length) => settings.Optimizer switch
    {
        OptimizerKind.Adam => new Adam(length, settings.LearningRate, weightDecay: settings.WeightDecay),
        OptimizerKind.AdamW => new Adam(length, settings.LearningRate, weightDecay: settings.WeightDecay, decoupled: true),
        OptimizerKind.Sgd => new Sgd(length, settings.LearningRate, settings.Momentum, settings.WeightDecay),
        _ => throw new ArgumentOutOfRangeException(nameof(settings), settings.Optimizer, "Unknown optimizer."),
    };
}
