namespace Microsoft.ML.Recurrent.Training;

/// <summary>The learning rate of a step under a <see cref="TrainingSettings"/>' schedule, shared by the training loops.</summary>
internal static class LearningRateSchedules
{
    /// <summary>Linear warm-up over <see cref="TrainingSettings.WarmupFraction"/> of the steps, then constant / linear / cosine decay to zero at the last step.</summary>
    public static float Rate(TrainingSettings settings, long step, long totalSteps)
    {
        float peak = settings.LearningRate;
        long warmup = (long)(settings.WarmupFraction * totalSteps);
        if (step < warmup)
            return peak * (step + 1) / warmup;
        if (settings.Schedule == LearningRateSchedule.Constant || totalSteps <= warmup)
            return peak;
        double progress = Math.Min(1.0, (double)(step - warmup) / Math.Max(1, totalSteps - warmup));
        return settings.Schedule == LearningRateSchedule.Linear
            ? (float)(peak * (1 - progress))
            : (float)(peak * 0.5 * (1 + Math.Cos(Math.PI * progress)));
    }
}
