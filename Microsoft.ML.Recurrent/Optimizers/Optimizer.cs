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

    /// <summary>The optimizer a training recipe names, for <paramref name="length"/> parameters.</summary>
    public static Optimizer Create(Training.TrainingSettings settings, int length) => settings.Optimizer switch
    {
        OptimizerKind.Adam => new Adam(length, settings.LearningRate, weightDecay: settings.WeightDecay),
        OptimizerKind.AdamW => new Adam(length, settings.LearningRate, weightDecay: settings.WeightDecay, decoupled: true),
        OptimizerKind.Sgd => new Sgd(length, settings.LearningRate, settings.Momentum, settings.WeightDecay),
        _ => throw new ArgumentOutOfRangeException(nameof(settings), settings.Optimizer, "Unknown optimizer."),
    };
}
