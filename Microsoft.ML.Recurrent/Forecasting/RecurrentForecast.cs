namespace Microsoft.ML.Recurrent;

/// <summary>One forecast of a <see cref="RecurrentForecastEngine"/>: every target's next <see cref="Horizon"/> values, with the interval if the model has one.</summary>
public sealed class RecurrentForecast
{
    internal RecurrentForecast(IReadOnlyList<string> targets, int horizon, float[] values, float[]? lower, float[]? upper)
    {
        TargetColumnNames = targets;
        Horizon = horizon;
        Values = values;
        LowerBounds = lower;
        UpperBounds = upper;
    }

    /// <summary>The targets, in the order of the values.</summary>
    public IReadOnlyList<string> TargetColumnNames { get; }

    /// <summary>Rows forecast.</summary>
    public int Horizon { get; }

    /// <summary>All point forecasts, targets × horizon, target-major.</summary>
    public float[] Values { get; }

    /// <summary>All lower bounds (same layout as <see cref="Values"/>), or null without an interval.</summary>
    public float[]? LowerBounds { get; }

    /// <summary>All upper bounds (same layout as <see cref="Values"/>), or null without an interval.</summary>
    public float[]? UpperBounds { get; }

    /// <summary>The point forecast of one target over the horizon.</summary>
    public ReadOnlySpan<float> this[string target] => Values.AsSpan(IndexOf(target) * Horizon, Horizon);

    /// <summary>The interval of one target over the horizon.</summary>
    /// <exception cref="InvalidOperationException">The model has no interval.</exception>
    public (float[] Lower, float[] Upper) Interval(string target)
    {
        if (LowerBounds is null || UpperBounds is null) throw new InvalidOperationException("This model forecasts no interval (train it with IntervalCoverage).");
        int i = IndexOf(target);
        return (LowerBounds.AsSpan(i * Horizon, Horizon).ToArray(), UpperBounds.AsSpan(i * Horizon, Horizon).ToArray());
    }

    private int IndexOf(string target)
    {
        for (int i = 0; i < TargetColumnNames.Count; i++)
            if (TargetColumnNames[i] == target) return i;
        throw new ArgumentOutOfRangeException(nameof(target), target, $"'{target}' is not a target of this model ({string.Join(", ", TargetColumnNames)}).");
    }
}
