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
}
