using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Layers;

namespace Microsoft.ML.Recurrent.Model;

/// <summary>
/// One batch of forecast samples read from a series matrix [T, C] (see <see cref="ForecastLayout"/>): sample b is
/// (target start t_b, target column c_b); its look-back is rows [t_b − L, t_b), its horizon rows [t_b, t_b + H).
/// Builds the network's inputs (features [B·n, F] in the caller's order, static values [B, S]), the training
/// targets [B, H], and each sample's window statistics to restore the outputs with. Buffers are reused between batches.
/// </summary>
internal sealed class ForecastBatch
{
    private readonly ForecastLayout _layout;
    private readonly RaggedBatch _batch = new([1]);
    private int[] _lengths = [];
    private float[] _features = [], _static = [], _targets = [], _shift = [], _scale = [];

    public ForecastBatch(ForecastLayout layout)
    {
        layout.Validate();
        _layout = layout;
    }

    /// <summary>Samples B in the batch.</summary>
    public int Count { get; private set; }

    /// <summary>The layout: B sequences of n steps each.</summary>
    public RaggedBatch Batch => _batch;

    /// <summary>Targets [B, H] in the series' units (when filled with targets).</summary>
    public ReadOnlySpan<float> Targets => _targets.AsSpan(0, Count * _layout.Horizon);

    /// <summary>The network's input.</summary>
    public SequenceData Data => new()
    {
        Features = _features.AsSpan(0, Count * _layout.Steps * _layout.FeaturesPerStep),
        Static = _static.AsSpan(0, Count * _layout.StaticSize),
    };

    /// <summary>Window shift and scale of sample b's target.</summary>
    public (float Shift, float Scale) Statistics(int b) => (_shift[b], _scale[b]);

    /// <summary>
    /// Reads the samples from <paramref name="series"/> [T, C]: sample b has target start <paramref name="starts"/>[b]
    /// and target column <paramref name="channels"/>[b] (in [0, Ct)). With <paramref name="withTargets"/> the horizon rows
    /// of the target must exist; without, only the future covariates' horizon rows are read.
    /// </summary>
    public void Fill(ReadOnlySpan<float> series, ReadOnlySpan<int> starts, ReadOnlySpan<int> channels, bool withTargets)
    {
        var l = _layout;
        int b = starts.Length, c = l.Columns, n = l.Steps, w = l.SegmentLength, f = l.FeaturesPerStep, h = l.Horizon;
        if (channels.Length != b) throw new ArgumentException("Every sample needs a target column.", nameof(channels));
        long rows = series.Length / c;
        Count = b;
        var lengths = Workspace.Ensure(ref _lengths, b);
        lengths.Fill(n);
        _batch.Reset(lengths);
        var features = Workspace.Ensure(ref _features, b * n * f);
        var statics = Workspace.Ensure(ref _static, b * l.StaticSize);
        var targets = Workspace.Ensure(ref _targets, withTargets ? b * h : 0);
        var shift = Workspace.Ensure(ref _shift, b);
        var scale = Workspace.Ensure(ref _scale, b);
        for (int s = 0; s < b; s++)
        {
            int t0 = starts[s], channel = channels[s];
            if ((uint)channel >= (uint)l.Targets) throw new ArgumentOutOfRangeException(nameof(channels), channel, $"The target column must be in [0, {l.Targets}).");
            long needed = withTargets || l.FutureCovariates > 0 ? (long)t0 + h : t0;
            if (t0 < l.LookBack || needed > rows)
                throw new ArgumentOutOfRangeException(nameof(starts), t0, $"A window starting at row {t0} needs rows [{t0 - l.LookBack}, {needed}); the series has {rows}.");
            // Look-back rows [t0 − L, t0); step t reads its segment [t·w, (t + 1)·w) of them.
            var window = series.Slice((t0 - l.LookBack) * c);
            var sample = features.Slice(s * n * f, n * f);
            for (int k = 0; k <= l.PastCovariates; k++)
            {
                int column = k == 0 ? channel : l.Targets + k - 1;
                var (m, sc) = InstanceNormalization.Statistics(l.Normalization, window.Slice(column), l.LookBack, c);
                if (k == 0) (shift[s], scale[s]) = (m, sc);
                for (int t = 0; t < n; t++)
                    InstanceNormalization.Normalize(window.Slice((t * w) * c + column), c, m, sc, sample.Slice(t * f + k * w, w));
            }
            // Future covariates [H, Cf] over the horizon rows.
            for (int r = 0; r < h && l.FutureCovariates > 0; r++)
                series.Slice((t0 + r) * c + l.Targets + l.PastCovariates, l.FutureCovariates).CopyTo(statics.Slice(s * l.StaticSize + r * l.FutureCovariates));
            if (withTargets)
                for (int r = 0; r < h; r++)
                    targets[s * h + r] = series[(t0 + r) * c + channel];
        }
    }

    /// <summary>Restores network outputs [B, O] in place to the series' units: every output of sample b times its scale plus its shift.</summary>
    public void Restore(Span<float> outputs)
    {
        int o = _layout.OutputSize;
        for (int s = 0; s < Count; s++)
            InstanceNormalization.Restore(outputs.Slice(s * o, o), _shift[s], _scale[s]);
    }
}
