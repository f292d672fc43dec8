using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Optimizers;

namespace Microsoft.ML.Recurrent.Training;

/// <summary>The end of every training step, shared by the training loops: clip, check, schedule, update.</summary>
internal static class OptimizerStep
{
    /// <summary>
    /// Clips the gradients to <see cref="TrainingSettings.GradientClipNorm"/> (or only measures their norm when it is
    /// 0), refuses a non-finite norm, sets the learning rate of <paramref name="step"/> of <paramref name="totalSteps"/>
    /// (<see cref="LearningRateSchedules.Rate"/>) and updates the values.
    /// </summary>
    /// <param name="optimizer">The optimizer (its learning rate is set here).</param>
    /// <param name="settings">The recipe: clipping norm and schedule.</param>
    /// <param name="parameters">Values and gradients (the gradients are clipped in place).</param>
    /// <param name="step">0-based step of the whole training.</param>
    /// <param name="totalSteps">Steps planned.</param>
    /// <param name="epoch">For the error message: the epoch.</param>
    /// <param name="unit">For the error message: what a step is called ("batch", "step").</param>
    /// <param name="index">For the error message: the 1-based step within the epoch.</param>
    /// <exception cref="InvalidOperationException">The gradient norm is NaN or infinite (training diverged).</exception>
    public static void ClipAndStep(Optimizer optimizer, TrainingSettings settings, ParameterSet parameters, long step, long totalSteps,
        int epoch, string unit, int index)
    {
        float norm = settings.GradientClipNorm > 0
            ? GradientClipping.ClipByGlobalNorm(parameters.Gradients, settings.GradientClipNorm)
            : (float)Math.Sqrt(GradientClipping.SumOfSquares(parameters.Gradients));
        if (!float.IsFinite(norm))
            throw new InvalidOperationException($"Training diverged: the gradient norm is {norm} in epoch {epoch}, {unit} {index}. The model is not kept; try a lower learning rate or gradient clipping.");
        optimizer.LearningRate = LearningRateSchedules.Rate(settings, step, totalSteps);
        optimizer.Step(parameters.Values, parameters.Gradients);
    }
}
