namespace Microsoft.ML.Recurrent.Optimizers;

/// <summary>
/// Stochastic gradient descent with momentum, as <c>torch.optim.SGD</c> (dampening 0, not Nesterov):
/// g ← g + λ·p; buf ← g at the first step, else μ·buf + g; p ← p − lr·buf.
/// </summary>
internal sealed class Sgd : Optimizer
{
    private readonly float[] _buffer;

    /// <summary>Momentum μ (0 = plain SGD).</summary>
    public float Momentum { get; }
    /// <summary>L2 weight decay λ.</summary>
    public float WeightDecay { get; }

    /// <summary>Creates the optimizer for <paramref name="length"/> parameters.</summary>
    public Sgd(int length, float learningRate, float momentum = 0f, float weightDecay = 0f)
    {
        if (!(learningRate > 0)) throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "The learning rate must be positive.");
        if (!(momentum >= 0 && momentum < 1)) throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "Momentum must be in [0, 1).");
        if (!(weightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "Weight decay must not be negative.");
        _buffer = new float[length];
        LearningRate = learningRate;
        Momentum = momentum;
        WeightDecay = weightDecay;
    }

    /// <inheritdoc/>
    public override void Step(Span<float> parameters, ReadOnlySpan<float> gradients)
    {
        // Checked indexing below; the guard makes a length mismatch an ArgumentException before any parameter changes.
        if (parameters.Length != _buffer.Length)
            throw new ArgumentException($"parameters holds {parameters.Length} floats but this optimizer was created for {_buffer.Length}.", nameof(parameters));
        if (gradients.Length != parameters.Length)
            throw new ArgumentException($"gradients holds {gradients.Length} floats but parameters holds {parameters.Length}.", nameof(gradients));
        bool first = StepCount == 0;
        StepCount++;
        float mu = Momentum, wd = WeightDecay;
        for (int group = 0; group < GroupCount; group++)
        {
            var (from, to, scale) = Group(group, parameters.Length);
            float lr = LearningRate * scale;
            for (int i = from; i < to; i++)
            {
                float g = gradients[i] + wd * parameters[i];
                if (mu != 0)
                    g = _buffer[i] = first ? g : mu * _buffer[i] + g;
                parameters[i] -= lr * g;
            }
        }
    }
}
