using System.Diagnostics;

namespace LanguageModel;

/// <summary>
/// --speed: untimed warm-up steps until both <see cref="MinWarmupSteps"/> steps and <see cref="WarmupSeconds"/> have
/// passed (the .NET JIT promotes our hot kernels to optimized code only after they have run a while; libtorch's are
/// compiled ahead of time), then <see cref="TimedSteps"/> timed steps.
/// </summary>
internal sealed class SpeedPlan(int minWarmupSteps, double warmupSeconds, int timedSteps)
{
    private Stopwatch? _clock;

    public int MinWarmupSteps => minWarmupSteps;
    public double WarmupSeconds => warmupSeconds;
    public int TimedSteps => timedSteps;

    /// <summary>Warm-up steps actually taken (−1 while warming up).</summary>
    public int WarmupTaken { get; private set; } = -1;

    /// <summary>Called before every step with the number of steps taken so far: whether to stop.</summary>
    public bool Stop(long stepsTaken)
    {
        _clock ??= Stopwatch.StartNew();
        if (WarmupTaken < 0 && stepsTaken >= minWarmupSteps && _clock.Elapsed.TotalSeconds >= warmupSeconds)
            WarmupTaken = (int)stepsTaken;
        return WarmupTaken >= 0 && stepsTaken >= WarmupTaken + timedSteps;
    }
}
