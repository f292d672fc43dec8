namespace Microsoft.ML.Recurrent.Training;

/// <summary>
/// The forecasting windows of one series whose targets lie in the range
/// [<see cref="Begin"/>, <see cref="End"/>), stride 1 — the long-horizon literature's protocol, where a later split's
/// windows read their look-back from the rows before the split:
/// <code>
///   window k (0 ≤ k &lt; Count):  target start t_k = First + k
///     inputs  [t_k − L, t_k)      (look-back L = <see cref="LookBack"/>)
///     targets [t_k, t_k + H)      (horizon H = <see cref="Horizon"/>)
///   First = max(Begin, L),  Count = max(0, End − H − First + 1)
/// </code>
/// Only indices are computed: the series itself is held once, never copied per window.
/// </summary>
internal readonly record struct ForecastWindows
{
    /// <summary>Look-back L.</summary>
    public int LookBack { get; }

    /// <summary>Horizon H.</summary>
    public int Horizon { get; }

    /// <summary>First row a target may be in.</summary>
    public int Begin { get; }

    /// <summary>One past the last row a target may be in (at most the series' length).</summary>
    public int End { get; }

    /// <summary>Target start of window 0.</summary>
    public int First => Math.Max(Begin, LookBack);

    /// <summary>Number of windows.</summary>
    public int Count => Math.Max(0, End - Horizon - First + 1);

    /// <param name="lookBack">L ≥ 1.</param>
    /// <param name="horizon">H ≥ 1.</param>
    /// <param name="begin">First row a target may be in, ≥ 0.</param>
    /// <param name="end">One past the last row a target may be in, ≥ <paramref name="begin"/>.</param>
    public ForecastWindows(int lookBack, int horizon, int begin, int end)
    {
        if (lookBack <= 0) throw new ArgumentOutOfRangeException(nameof(lookBack), lookBack, "The look-back must be positive.");
        if (horizon <= 0) throw new ArgumentOutOfRangeException(nameof(horizon), horizon, "The horizon must be positive.");
        if (begin < 0 || end < begin) throw new ArgumentOutOfRangeException(nameof(end), end, $"The target range [{begin}, {end}) is not a range of rows.");
        if ((long)lookBack + horizon > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(horizon), horizon, "The look-back plus the horizon is too large.");
        LookBack = lookBack;
        Horizon = horizon;
        Begin = begin;
        End = end;
    }

    /// <summary>First target row of window <paramref name="k"/>; its inputs are the L rows before it.</summary>
    public int TargetStart(int k)
    {
        if ((uint)k >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(k), k, $"There are {Count} windows.");
        return First + k;
    }

    /// <summary>First input row of window <paramref name="k"/>.</summary>
    public int InputStart(int k) => TargetStart(k) - LookBack;
}
