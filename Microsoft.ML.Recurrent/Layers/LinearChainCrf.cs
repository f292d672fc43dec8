using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Kernels;

namespace Microsoft.ML.Recurrent.Layers;

/// <summary>
/// A linear-chain conditional random field over per-step tag scores, with pytorch-crf's conventions: parameters
/// <c>start_transitions</c> [C], <c>end_transitions</c> [C] and <c>transitions</c> [C, C] (<c>transitions[i, j]</c> =
/// score of tag i followed by tag j), and the score of a tag path y of a sequence with emissions e [L, C]
/// <code>
///   s(y) = start[y_0] + e[0, y_0] + Σ_{t=1}^{L−1} (transitions[y_{t−1}, y_t] + e[t, y_t]) + end[y_{L−1}]
///   −log p(y | e) = log Σ_y' exp s(y') − s(y)          (the log-partition function log Z by the forward algorithm)
/// </code>
/// Emissions arrive packed [N, C] in <see cref="RaggedBatch"/> order; every sequence runs over its own length (≥ 1),
/// so nothing is masked or padded.
/// <para><b>Numerics.</b> The forward (α) and backward (β) recursions run in scaled exponential space, so that each
/// step of all running sequences is one GEMM: α_t[k] = e_t[k] + M + c_k + log Σ_i exp(α_{t−1}[i] − M)·exp(T[i, k] − c_k),
/// with M the row's maximum (kept in double, per packed row) and c_k the column's maximum of T. A sum that falls below
/// e^−57.5 — only when every allowed predecessor is ~25 orders of magnitude below the row's best, which needs extreme
/// scores or constraints — is recomputed exactly in log space, so results match the plain log-sum-exp recursion
/// everywhere. Gradients come from the node and edge posteriors (forward–backward), not from differentiating the
/// recursion: ∂NLL/∂e[t, k] = p(y_t = k) − [y_t = k], ∂NLL/∂T[i, k] = Σ_t p(y_{t−1} = i, y_t = k) − count, where
/// the edge posteriors of all steps are summed by one more GEMM.</para>
/// <para><b>Constraints</b> (<see cref="CrfConstraints"/>) make disallowed starts, ends and transitions −∞: they take no
/// part in log Z, in decoding or in the marginals, and their parameters get zero gradient. A gold path that uses one
/// is rejected by <see cref="Forward"/> with an <see cref="ArgumentException"/> naming the sequence and step (its
/// probability would be 0 and its loss +∞: typically labels in another scheme, e.g. IOB1 data under BIO
/// constraints). A sequence for which the constraints allow no path at all (e.g. length 1 under IOBES when the tag
/// set has neither O nor S- tags) is decoded, and its marginals computed, without the constraints.</para>
/// Work buffers are allocated once and grow only: no allocation per step, and none per call once the largest batch
/// has been seen. One instance is not thread-safe; inference copies each need their own.
/// </summary>
internal sealed class LinearChainCrf
{
    /// <summary>log(1e−25): a scaled sum of exponentials below this is recomputed in log space (see the class summary).</summary>
    private const float LogTiny = -57.5f;

    /// <summary>
    /// An edge factor W = exp(log W) above e^60 is not summed by the GEMM (its products could overflow, or lose terms
    /// whose α underflowed); its edge posteriors are computed one by one in log space instead.
    /// </summary>
    private const float LogEdgeLimit = 60f;

    private readonly ParameterSet _parameters;
    private readonly Parameter _start, _end, _transitions;
    private readonly Potentials _masked;  // the parameters with the constraints applied (the parameters when there are none)
    private readonly Potentials? _plain;  // the parameters alone, for sequences the constraints leave no path for

    // Forward–backward state, packed [N, …] (rows of sorted sequence j at step t: StepOffsets[t] + j).
    private float[] _logAlpha = [];    // [N, C] log α − scale (max 0); Viterbi keeps its scores here
    private float[] _alpha = [];       // [N, C] exp(_logAlpha)
    private double[] _alphaScale = []; // [N]    α = _logAlpha + scale
    private float[] _logBeta = [];     // [N, C] log β − scale (max 0)
    private double[] _betaScale = [];  // [N]
    private double[] _logZ = [];       // [B] sorted order
    private float[] _edge = [];        // [N, C] edge factor W of step t, stored at the row of step t−1 (0 at last steps)
    // Scratch.
    private float[] _stepA = [], _stepB = [], _stepC = []; // [B, C] one step of the running sequences
    private readonly int[] _candidates;                      // [C] the rows a pruned Viterbi step reads
    private float[] _stepMax = [];     // [B]
    private float[] _edgeSum = [];     // [C, C] Σ_rows αᵀ·W (GEMM)
    private float[] _edgeExact = [];   // [C, C] edge posteriors summed one by one (rows over LogEdgeLimit)
    private float[] _counts = [];      // [C] / [C, C] gold counts

    /// <summary>Number of tags C.</summary>
    public int NumTags { get; }

    /// <summary>The constraints, or null when every path is allowed.</summary>
    public CrfConstraints? Constraints { get; }

    /// <summary>
    /// Entries of the last call that left the fast path for an exact log-space computation (forward or backward sums
    /// below e^−57.5, edge rows over e^60). Diagnostics and tests; 0 in ordinary use.
    /// </summary>
    public int ExactEntries { get; private set; }

    /// <summary>Registers <c>{prefix}start_transitions</c> [C], <c>{prefix}end_transitions</c> [C] and <c>{prefix}transitions</c> [C, C].</summary>
    /// <param name="parameters">The network's parameters.</param>
    /// <param name="prefix">Name prefix, e.g. "crf.".</param>
    /// <param name="numTags">C.</param>
    /// <param name="constraints">Allowed starts, ends and transitions over the same C tags; null (or one that allows everything) for none.</param>
    public LinearChainCrf(ParameterSet parameters, string prefix, int numTags, CrfConstraints? constraints = null)
    {
        if (numTags <= 0) throw new ArgumentOutOfRangeException(nameof(numTags), numTags, "The number of tags must be positive.");
        if (constraints is not null && constraints.NumTags != numTags)
            throw new ArgumentException($"The constraints are over {constraints.NumTags} tags, the CRF over {numTags}.", nameof(constraints));
        _parameters = parameters;
        NumTags = numTags;
        Constraints = constraints is { AllowsEverything: false } ? constraints : null;
        _start = parameters.Register($"{prefix}start_transitions", numTags);
        _end = parameters.Register($"{prefix}end_transitions", numTags);
        _transitions = parameters.Register($"{prefix}transitions", numTags, numTags);
        _masked = new Potentials(numTags);
        _plain = Constraints is null ? null : new Potentials(numTags);
        _candidates = new int[numTags];
    }

    /// <summary>
    /// Declares that the parameters will not change any more (an inference copy of a trained CRF): the potentials that
    /// <see cref="Decode"/> and <see cref="Marginals"/> derive from them (masked copies, column maxima, exponentials)
    /// are then computed once instead of on every call — which matters when every call is one short sentence.
    /// </summary>
    internal void FreezeParameters()
    {
        _masked.Frozen = true;
        if (_plain is not null) _plain.Frozen = true;
    }

    /// <summary>pytorch-crf's initialization: all three tensors U(−0.1, 0.1).</summary>
    public void Initialize(SeededRandom random)
    {
        random.FillUniform(_parameters.Value(_start), -0.1f, 0.1f);
        random.FillUniform(_parameters.Value(_end), -0.1f, 0.1f);
        random.FillUniform(_parameters.Value(_transitions), -0.1f, 0.1f);
    }

    /// <summary>
    /// Returns Σ over sequences of −log p(tags | emissions); writes <paramref name="dEmissions"/> =
    /// <paramref name="gradientScale"/> · ∂NLL/∂emissions (overwrites) and adds <paramref name="gradientScale"/> ·
    /// ∂NLL/∂(start_transitions, end_transitions, transitions) into the parameter gradients.
    /// </summary>
    /// <param name="batch">The layout.</param>
    /// <param name="emissions">Tag scores, packed [N, C].</param>
    /// <param name="tags">Gold tags in [0, C), packed [N].</param>
    /// <param name="dEmissions">Output, packed [N, C]; may be <paramref name="emissions"/> itself (the gradient then replaces the scores).</param>
    /// <param name="gradientScale">Factor on every gradient (e.g. 1/B for the mean over sequences).</param>
    /// <exception cref="ArgumentException">A buffer is too short, or a gold path breaks the constraints (the message names the sequence, in the caller's order, and the step).</exception>
    /// <exception cref="ArgumentOutOfRangeException">A tag is outside [0, C).</exception>
    public float Forward(RaggedBatch batch, ReadOnlySpan<float> emissions, ReadOnlySpan<int> tags, Span<float> dEmissions, float gradientScale)
    {
        int c = NumTags, n = batch.TotalSteps, b = batch.BatchSize;
        RequireLength(emissions.Length, n * c, nameof(emissions));
        RequireLength(tags.Length, n, nameof(tags));
        RequireLength(dEmissions.Length, n * c, nameof(dEmissions));
        ValidateTags(batch, tags);
        ExactEntries = 0;
        EnsureBuffers(batch);
        _masked.Load(_parameters.Value(_start), _parameters.Value(_end), _parameters.Value(_transitions), Constraints);

        // α, log Z and β of every sequence. The gold paths are allowed, so every log Z is finite.
        RunAlpha(batch, emissions, _masked, 0, b);
        ComputeLogZ(batch, _masked, 0, b);
        RunBeta(batch, emissions, _masked, 0, b);

        // NLL = Σ_j log Z_j − s(y_j), in double.
        var offsets = batch.StepOffsets;
        var sortedLengths = batch.SortedLengths;
        var start = _parameters.Value(_start);
        var end = _parameters.Value(_end);
        var transitions = _parameters.Value(_transitions);
        double nll = 0;
        for (int j = 0; j < b; j++)
        {
            int first = offsets[0] + j, previous = tags[first];
            double score = start[previous] + (double)emissions[first * c + previous];
            for (int t = 1; t < sortedLengths[j]; t++)
            {
                int row = offsets[t] + j, tag = tags[row];
                score += transitions[previous * c + tag] + (double)emissions[row * c + tag];
                previous = tag;
            }
            nll += _logZ[j] - (score + end[previous]);
        }

        // dTransitions += scale·(Σ_t p(y_{t−1} = i, y_t = k) − gold count). The last reader of the emissions.
        var expected = EdgePosteriorSums(batch, emissions);
        var counts = Workspace.Ensure(ref _counts, c * c);
        counts.Clear();
        for (int t = 1; t < batch.MaxLength; t++)
            for (int j = 0; j < batch.StepSizes[t]; j++) // [N] gold tags, from row (t−1, j) to row (t, j)
                counts[tags[offsets[t - 1] + j] * c + tags[offsets[t] + j]] += 1f;
        var dTransitions = _parameters.Gradient(_transitions);
        TensorPrimitives.Subtract(expected, counts, expected);
        TensorPrimitives.MultiplyAdd(expected, gradientScale, dTransitions, dTransitions);

        // dEmissions = scale·(p − onehot(y)), which may overwrite the emissions now; dStart, dEnd += scale·(p at the
        // first / last step − onehot).
        NodeMarginals(batch, dEmissions);
        var dStart = _parameters.Gradient(_start);
        var dEnd = _parameters.Gradient(_end);
        AddFirstOrLastStep(batch, dEmissions, tags, last: false, gradientScale, dStart, counts);
        AddFirstOrLastStep(batch, dEmissions, tags, last: true, gradientScale, dEnd, counts);
        TensorPrimitives.Multiply(dEmissions.Slice(0, n * c), gradientScale, dEmissions.Slice(0, n * c));
        for (int row = 0; row < n; row++)
            dEmissions[row * c + tags[row]] -= gradientScale;
        return (float)nll;
    }

    /// <summary>Viterbi: the highest-scoring allowed tag path of every sequence, packed [N].</summary>
    /// <param name="batch">The layout.</param>
    /// <param name="emissions">Tag scores, packed [N, C].</param>
    /// <param name="tags">Output, packed [N].</param>
    public void Decode(RaggedBatch batch, ReadOnlySpan<float> emissions, Span<int> tags)
    {
        int c = NumTags;
        RequireLength(emissions.Length, batch.TotalSteps * c, nameof(emissions));
        RequireLength(tags.Length, batch.TotalSteps, nameof(tags));
        ExactEntries = 0;
        EnsureBuffers(batch);
        _masked.Load(_parameters.Value(_start), _parameters.Value(_end), _parameters.Value(_transitions), Constraints, withExponentials: false);
        bool plainLoaded = false;
        for (int j = 0; j < batch.BatchSize; j++)
        {
            if (Viterbi(batch, emissions, _masked, j, tags))
                continue;
            // The constraints allow no path of this length: decode this sequence without them.
            if (_plain is not null)
            {
                if (!plainLoaded)
                {
                    _plain.Load(_parameters.Value(_start), _parameters.Value(_end), _parameters.Value(_transitions), null, withExponentials: false);
                    plainLoaded = true;
                }
                if (Viterbi(batch, emissions, _plain, j, tags))
                    continue;
            }
            // Still no path: only emissions of −∞ do this. Each step's best emission, so the output is always a tag.
            for (int t = 0; t < batch.SortedLengths[j]; t++)
            {
                int row = batch.Row(t, j);
                tags[row] = TensorPrimitives.IndexOfMax(emissions.Slice(row * c, c));
            }
        }
    }

    /// <summary>Posterior tag probabilities p(y_t = k | emissions) of every step, packed [N, C]; each row sums to 1.</summary>
    /// <param name="batch">The layout.</param>
    /// <param name="emissions">Tag scores, packed [N, C].</param>
    /// <param name="probabilities">Output, packed [N, C]; may be <paramref name="emissions"/> itself.</param>
    public void Marginals(RaggedBatch batch, ReadOnlySpan<float> emissions, Span<float> probabilities)
    {
        int c = NumTags, b = batch.BatchSize;
        RequireLength(emissions.Length, batch.TotalSteps * c, nameof(emissions));
        RequireLength(probabilities.Length, batch.TotalSteps * c, nameof(probabilities));
        ExactEntries = 0;
        EnsureBuffers(batch);
        _masked.Load(_parameters.Value(_start), _parameters.Value(_end), _parameters.Value(_transitions), Constraints);
        RunAlpha(batch, emissions, _masked, 0, b);
        ComputeLogZ(batch, _masked, 0, b);
        RunBeta(batch, emissions, _masked, 0, b);
        bool plainLoaded = false;
        for (int j = 0; j < b && _plain is not null; j++)
        {
            if (!double.IsNegativeInfinity(_logZ[j]))
                continue;
            // The constraints allow no path of this length: this sequence's marginals without them.
            if (!plainLoaded)
            {
                _plain.Load(_parameters.Value(_start), _parameters.Value(_end), _parameters.Value(_transitions), null);
                plainLoaded = true;
            }
            RunAlpha(batch, emissions, _plain, j, 1);
            ComputeLogZ(batch, _plain, j, 1);
            RunBeta(batch, emissions, _plain, j, 1);
        }
        NodeMarginals(batch, probabilities);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Forward–backward over the sorted sequences [first, first + count): all of them, or one (count = 1) that is
    // recomputed without constraints. At step t those still running are [first, first + Active(t)), whose packed rows
    // are contiguous: StepOffsets[t] + first + q.

    private static int Active(RaggedBatch batch, int t, int first, int count) =>
        t < batch.MaxLength ? Math.Clamp(batch.StepSizes[t] - first, 0, count) : 0;

    /// <summary>α of every row of the given sequences: _logAlpha, _alpha [N, C] and _alphaScale [N].</summary>
    private void RunAlpha(RaggedBatch batch, ReadOnlySpan<float> emissions, Potentials p, int first, int count)
    {
        int c = NumTags;
        var offsets = batch.StepOffsets;
        // t = 0: α_0 = start + e_0.
        int n = Active(batch, 0, first, count), row0 = offsets[0] + first;
        for (int q = 0; q < n; q++)
        {
            int row = row0 + q;
            var u = _logAlpha.AsSpan(row * c, c);
            TensorPrimitives.Add(p.Start, emissions.Slice(row * c, c), u);
            _alphaScale[row] = Shift(u, 0);
        }
        TensorPrimitives.Exp(_logAlpha.AsSpan(row0 * c, n * c), _alpha.AsSpan(row0 * c, n * c));
        for (int t = 1; t < batch.MaxLength; t++)
        {
            n = Active(batch, t, first, count);
            if (n == 0) break;
            row0 = offsets[t] + first;
            int previous0 = offsets[t - 1] + first;
            // logP [n, C] = log(exp(α_{t−1} − M) [n, C] · E [C, C]),  E[i, k] = exp(T[i, k] − c_k)
            var logP = _stepA.AsSpan(0, n * c);
            Sgemm.Multiply(Transpose.No, Transpose.No, n, c, c, _alpha.AsSpan(previous0 * c, n * c), c, p.ExpByColumn, c, logP, c, accumulate: false);
            TensorPrimitives.Log(logP, logP);
            // u [n, C] = e_t + logP (+ c_k below) = α_t − M_{t−1}
            var u = _logAlpha.AsSpan(row0 * c, n * c);
            TensorPrimitives.Add(emissions.Slice(row0 * c, n * c), logP, u);
            for (int q = 0; q < n; q++)
            {
                int row = row0 + q, previous = previous0 + q;
                var uq = u.Slice(q * c, c);
                var lp = logP.Slice(q * c, c);
                TensorPrimitives.Add(uq, p.ColumnMax, uq);
                if (TensorPrimitives.Min(lp) < LogTiny)
                {
                    var e = emissions.Slice(row * c, c);
                    for (int k = 0; k < c; k++)
                    {
                        if (lp[k] >= LogTiny) continue;
                        uq[k] = e[k] + LogSumExpColumn(_logAlpha.AsSpan(previous * c, c), p.Transitions, k, c);
                        ExactEntries++;
                    }
                }
                _alphaScale[row] = Shift(uq, _alphaScale[previous]);
            }
            TensorPrimitives.Exp(u, _alpha.AsSpan(row0 * c, n * c));
        }
    }

    /// <summary>
    /// Subtracts the maximum of <paramref name="u"/> (which holds log values − <paramref name="scale"/>) and returns
    /// the new scale, <paramref name="scale"/> + max; −∞, leaving u at −∞, when no allowed path reaches this row.
    /// </summary>
    private static double Shift(Span<float> u, double scale)
    {
        float max = TensorPrimitives.Max(u);
        if (float.IsNegativeInfinity(max))
            return double.NegativeInfinity;
        TensorPrimitives.Subtract(u, max, u);
        return scale + max;
    }

    /// <summary>log Z_j = M + log Σ_k exp(_logAlpha[last row, k] + end[k]) for the given sequences.</summary>
    private void ComputeLogZ(RaggedBatch batch, Potentials p, int first, int count)
    {
        int c = NumTags;
        for (int j = first; j < first + count; j++)
        {
            int last = batch.Row(batch.SortedLengths[j] - 1, j);
            var u = _logAlpha.AsSpan(last * c, c);
            double max = double.NegativeInfinity;
            for (int k = 0; k < c; k++) max = Math.Max(max, (double)u[k] + p.End[k]);
            if (double.IsNegativeInfinity(max) || double.IsNegativeInfinity(_alphaScale[last]))
            {
                _logZ[j] = double.NegativeInfinity;
                continue;
            }
            double sum = 0;
            for (int k = 0; k < c; k++) sum += Math.Exp((double)u[k] + p.End[k] - max);
            _logZ[j] = _alphaScale[last] + max + Math.Log(sum);
        }
    }

    /// <summary>β of every row of the given sequences: _logBeta [N, C] and _betaScale [N].</summary>
    private void RunBeta(RaggedBatch batch, ReadOnlySpan<float> emissions, Potentials p, int first, int count)
    {
        int c = NumTags;
        var offsets = batch.StepOffsets;
        for (int t = batch.MaxLength - 1; t >= 0; t--)
        {
            int n = Active(batch, t, first, count);
            if (n == 0) continue;
            int next = Active(batch, t + 1, first, count); // these continue to t + 1; [next, n) end at t
            int row0 = offsets[t] + first;
            for (int q = next; q < n; q++)
            {
                var u = _logBeta.AsSpan((row0 + q) * c, c);
                p.End.CopyTo(u);
                _betaScale[row0 + q] = Shift(u, 0);
            }
            if (next == 0) continue;

            // v [next, C] = e_{t+1} + (β_{t+1} − M'),  m = max_k v,  Y = exp(v − m)
            int next0 = offsets[t + 1] + first;
            var v = _stepA.AsSpan(0, next * c);
            var y = _stepB.AsSpan(0, next * c);
            TensorPrimitives.Add(emissions.Slice(next0 * c, next * c), _logBeta.AsSpan(next0 * c, next * c), v);
            for (int q = 0; q < next; q++)
            {
                var vq = v.Slice(q * c, c);
                float m = TensorPrimitives.Max(vq);
                _stepMax[q] = m;
                if (float.IsNegativeInfinity(m))
                    y.Slice(q * c, c).Fill(float.NegativeInfinity);
                else
                    TensorPrimitives.Subtract(vq, m, y.Slice(q * c, c));
            }
            TensorPrimitives.Exp(y, y);
            // logQ [next, C] = log(Y [next, C] · Fᵀ),  F[i, k] = exp(T[i, k] − r_i)
            var logQ = _stepC.AsSpan(0, next * c);
            Sgemm.Multiply(Transpose.No, Transpose.Yes, next, c, c, y, c, p.ExpByRow, c, logQ, c, accumulate: false);
            TensorPrimitives.Log(logQ, logQ);
            for (int q = 0; q < next; q++)
            {
                int row = row0 + q, nextRow = next0 + q;
                float m = _stepMax[q];
                var u = _logBeta.AsSpan(row * c, c);
                if (float.IsNegativeInfinity(m) || double.IsNegativeInfinity(_betaScale[nextRow]))
                {
                    u.Fill(float.NegativeInfinity);
                    _betaScale[row] = double.NegativeInfinity;
                    continue;
                }
                // u[i] = r_i + logQ[i] = β_t[i] − M'_{t+1} − m
                var lq = logQ.Slice(q * c, c);
                TensorPrimitives.Add(p.RowMax, lq, u);
                if (TensorPrimitives.Min(lq) < LogTiny)
                {
                    var vq = v.Slice(q * c, c);
                    for (int i = 0; i < c; i++)
                    {
                        if (lq[i] >= LogTiny) continue;
                        u[i] = LogSumExpRow(vq, p.Transitions.AsSpan(i * c, c)) - m;
                        ExactEntries++;
                    }
                }
                _betaScale[row] = Shift(u, _betaScale[nextRow] + m);
            }
        }
    }

    /// <summary>p [N, C]: p[row, k] = exp(α + β − log Z), each row renormalized to sum to 1 (it does up to rounding).</summary>
    private void NodeMarginals(RaggedBatch batch, Span<float> probabilities)
    {
        int c = NumTags, n = batch.TotalSteps;
        var offsets = batch.StepOffsets;
        var all = probabilities.Slice(0, n * c);
        TensorPrimitives.Add(_logAlpha.AsSpan(0, n * c), _logBeta.AsSpan(0, n * c), all);
        for (int t = 0; t < batch.MaxLength; t++)
            for (int j = 0; j < batch.StepSizes[t]; j++)
            {
                int row = offsets[t] + j;
                var pr = all.Slice(row * c, c);
                TensorPrimitives.Add(pr, (float)(_alphaScale[row] + _betaScale[row] - _logZ[j]), pr);
            }
        TensorPrimitives.Exp(all, all);
        for (int row = 0; row < n; row++)
        {
            var pr = all.Slice(row * c, c);
            TensorPrimitives.Multiply(pr, 1f / TensorPrimitives.Sum(pr), pr);
        }
    }

    /// <summary>gradient[k] += scale·(Σ_j p[first or last row of j, k] − #{j : gold tag there = k}).</summary>
    private void AddFirstOrLastStep(RaggedBatch batch, ReadOnlySpan<float> probabilities, ReadOnlySpan<int> tags, bool last,
        float scale, Span<float> gradient, Span<float> sum)
    {
        int c = NumTags;
        var s = sum.Slice(0, c);
        s.Clear();
        for (int j = 0; j < batch.BatchSize; j++)
        {
            int row = batch.Row(last ? batch.SortedLengths[j] - 1 : 0, j);
            TensorPrimitives.Add(s, probabilities.Slice(row * c, c), s);
            s[tags[row]] -= 1f;
        }
        TensorPrimitives.MultiplyAdd(s, scale, gradient, gradient);
    }

    /// <summary>
    /// Σ over all steps t ≥ 1 and sequences of the edge posteriors p(y_{t−1} = i, y_t = k), [C, C]. With
    /// ξ(i, k) = A[i] · E[i, k] · W[k], A = exp(α_{t−1} − M) (row t−1 of _alpha) and
    /// log W[k] = c_k + M_{t−1} + M'_t − log Z + e_t[k] + (β_t[k] − M'_t), the sum over all edges is
    /// E ⊙ (Aᵀ · W) with W stored at the row of step t−1: one GEMM over all N rows.
    /// </summary>
    private Span<float> EdgePosteriorSums(RaggedBatch batch, ReadOnlySpan<float> emissions)
    {
        int c = NumTags, n = batch.TotalSteps;
        var p = _masked;
        var offsets = batch.StepOffsets;
        var edge = _edge.AsSpan(0, n * c);
        var exact = _edgeExact.AsSpan(0, c * c);
        exact.Clear();
        for (int t = 0; t < batch.MaxLength; t++)
        {
            int running = t + 1 < batch.MaxLength ? batch.StepSizes[t + 1] : 0;
            // Last steps have no outgoing edge: W = 0.
            edge.Slice((offsets[t] + running) * c, (batch.StepSizes[t] - running) * c).Clear();
            if (running == 0) continue;
            // log W [running, C] at the rows of step t = e_{t+1} + (β_{t+1} − M') + c_k + M_t + M'_{t+1} − log Z
            int previous0 = offsets[t], row0 = offsets[t + 1];
            var w = edge.Slice(previous0 * c, running * c);
            TensorPrimitives.Add(emissions.Slice(row0 * c, running * c), _logBeta.AsSpan(row0 * c, running * c), w);
            for (int j = 0; j < running; j++)
            {
                int previous = previous0 + j, row = row0 + j;
                var wj = w.Slice(j * c, c);
                TensorPrimitives.Add(wj, p.ColumnMax, wj);
                TensorPrimitives.Add(wj, (float)(_alphaScale[previous] + _betaScale[row] - _logZ[j]), wj);
                if (TensorPrimitives.Max(wj) <= LogEdgeLimit)
                    continue;
                // ξ(i, k) = exp(logα[i] + T[i, k] − c_k + log W[k]), one by one; the row leaves the GEMM (W = exp(−∞) = 0).
                var logAlpha = _logAlpha.AsSpan(previous * c, c);
                for (int i = 0; i < c; i++)
                    for (int k = 0; k < c; k++)
                        exact[i * c + k] += MathF.Exp(logAlpha[i] + p.Transitions[i * c + k] - p.ColumnMax[k] + wj[k]);
                ExactEntries += c * c;
                wj.Fill(float.NegativeInfinity);
            }
            TensorPrimitives.Exp(w, w);
        }
        // sum [C, C] = Aᵀ [C, N] · W [N, C]; then ⊙ E, + the exact part.
        var sum = _edgeSum.AsSpan(0, c * c);
        Sgemm.Multiply(Transpose.Yes, Transpose.No, c, c, n, _alpha.AsSpan(0, n * c), c, edge, c, sum, c, accumulate: false);
        TensorPrimitives.Multiply(sum, p.ExpByColumn, sum);
        TensorPrimitives.Add(sum, exact, sum);
        return sum;
    }

    /// <summary>log Σ_i exp(logAlpha[i] + T[i, k]) (−∞ when every term is).</summary>
    private static float LogSumExpColumn(ReadOnlySpan<float> logAlpha, ReadOnlySpan<float> transitions, int k, int c)
    {
        float max = float.NegativeInfinity;
        for (int i = 0; i < c; i++) max = MathF.Max(max, logAlpha[i] + transitions[i * c + k]);
        if (float.IsNegativeInfinity(max)) return max;
        double sum = 0;
        for (int i = 0; i < c; i++) sum += Math.Exp(logAlpha[i] + transitions[i * c + k] - max);
        return max + (float)Math.Log(sum);
    }

    /// <summary>log Σ_k exp(v[k] + transitionRow[k]) (−∞ when every term is).</summary>
    private static float LogSumExpRow(ReadOnlySpan<float> v, ReadOnlySpan<float> transitionRow)
    {
        float max = float.NegativeInfinity;
        for (int k = 0; k < v.Length; k++) max = MathF.Max(max, v[k] + transitionRow[k]);
        if (float.IsNegativeInfinity(max)) return max;
        double sum = 0;
        for (int k = 0; k < v.Length; k++) sum += Math.Exp(v[k] + transitionRow[k] - max);
        return max + (float)Math.Log(sum);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Viterbi.

    /// <summary>
    /// Decodes sorted sequence <paramref name="j"/> into <paramref name="tags"/> (packed); false, writing nothing, when
    /// the potentials allow no path of its length. Scores δ_t (shifted so that their maximum is 0) are kept in
    /// _logAlpha; the backtrack recomputes each argmax from δ_{t−1} instead of storing back-pointers.
    /// </summary>
    private bool Viterbi(RaggedBatch batch, ReadOnlySpan<float> emissions, Potentials p, int j, Span<int> tags)
    {
        int c = NumTags, length = batch.SortedLengths[j];
        var offsets = batch.StepOffsets;
        var transitions = p.Transitions.AsSpan(0, c * c);
        int row = offsets[0] + j;
        var delta = _logAlpha.AsSpan(row * c, c);
        TensorPrimitives.Add(p.Start, emissions.Slice(row * c, c), delta);
        if (!Shift(delta)) return false;
        for (int t = 1; t < length; t++)
        {
            var previous = delta;
            row = offsets[t] + j;
            delta = _logAlpha.AsSpan(row * c, c);
            MaxPlusPruned(previous, transitions, p.DecodeColumnMax, delta, _candidates, p.AnyForbidden); // δ_t[k] = max_i δ_{t−1}[i] + T[i, k]
            TensorPrimitives.Add(delta, emissions.Slice(row * c, c), delta); //  + e_t[k]
            if (!Shift(delta)) return false;
        }
        var final = _stepA.AsSpan(0, c);
        TensorPrimitives.Add(delta, p.End, final);
        int tag = TensorPrimitives.IndexOfMax(final);
        if (float.IsNegativeInfinity(final[tag])) return false;
        tags[row] = tag;
        for (int t = length - 1; t > 0; t--)
        {
            // The tag at t − 1: the first i reaching max_i δ_{t−1}[i] + T[i, tag] (the same sums MaxPlus compared), read
            // from column `tag` of T, stored as a row of the transpose.
            var previous = _logAlpha.AsSpan((offsets[t - 1] + j) * c, c);
            var sums = _stepA.AsSpan(0, c);
            TensorPrimitives.Add(previous, p.TransposedTransitions.AsSpan(tag * c, c), sums);
            tag = FirstIndexOfMax(sums);
            tags[offsets[t - 1] + j] = tag;
        }
        return true;

        // Subtracts the maximum (scores stay small, so float sums stay exact enough to compare); false when all are −∞.
        static bool Shift(Span<float> scores)
        {
            float max = TensorPrimitives.Max(scores);
            if (float.IsNegativeInfinity(max)) return false;
            TensorPrimitives.Subtract(scores, max, scores);
            return true;
        }
    }

    /// <summary>
    /// Effectively computes <c>best[k] = max_i (score[i] + transitions[i·C + k])</c> for k &lt; C (max-plus product of
    /// a row vector and [C, C]). A <see cref="Vector{T}"/> of k at a time, with four running maxima over i (i mod 4) so
    /// that consecutive maxima do not wait on each other; the last vector ends at C, overlapping the one before it when
    /// C is not a multiple of the width; one by one when C is narrower than a vector. Maxima are exact and
    /// order-independent, so every element equals <see cref="MaxPlusReference"/>'s bitwise.
    /// </summary>
    internal static void MaxPlus(ReadOnlySpan<float> score, ReadOnlySpan<float> transitions, Span<float> best)
    {
        int c = best.Length;
        // Every unchecked access below stays inside these lengths: score [C], transitions [C, C], best [C].
        if (score.Length < c || transitions.Length < (long)c * c)
            throw new ArgumentException("score [C] and transitions [C, C] are too short for best [C].");
        int width = Vector<float>.Count;
        if (!Vector.IsHardwareAccelerated || c < width)
        {
            MaxPlusReference(score, transitions, best);
            return;
        }
        ref float s = ref MemoryMarshal.GetReference(score);
        ref float t0 = ref MemoryMarshal.GetReference(transitions);
        ref float b = ref MemoryMarshal.GetReference(best);
        nuint last = (nuint)(c - width);
        for (nuint next = 0; ; next += (nuint)width)
        {
            nuint k = Math.Min(next, last);
            var m0 = new Vector<float>(s) + Vector.LoadUnsafe(ref t0, k);
            Vector<float> m1 = m0, m2 = m0, m3 = m0;
            int i = 1;
            for (; i + 3 < c; i += 4)
            {
                nuint at = (nuint)i * (nuint)c + k; // transitions[i, k]
                m0 = Vector.Max(m0, new Vector<float>(Unsafe.Add(ref s, i)) + Vector.LoadUnsafe(ref t0, at));
                m1 = Vector.Max(m1, new Vector<float>(Unsafe.Add(ref s, i + 1)) + Vector.LoadUnsafe(ref t0, at + (nuint)c));
                m2 = Vector.Max(m2, new Vector<float>(Unsafe.Add(ref s, i + 2)) + Vector.LoadUnsafe(ref t0, at + 2 * (nuint)c));
                m3 = Vector.Max(m3, new Vector<float>(Unsafe.Add(ref s, i + 3)) + Vector.LoadUnsafe(ref t0, at + 3 * (nuint)c));
            }
            for (; i < c; i++)
                m0 = Vector.Max(m0, new Vector<float>(Unsafe.Add(ref s, i)) + Vector.LoadUnsafe(ref t0, (nuint)i * (nuint)c + k));
            Vector.Max(Vector.Max(m0, m1), Vector.Max(m2, m3)).StoreUnsafe(ref b, k);
            if (k == last) break;
        }
    }

    /// <summary>Tag counts from which <see cref="MaxPlusPruned"/> tries to skip rows (below it, the dense product is as cheap).</summary>
    internal const int PruneFromTags = 32;

    /// <summary>
    /// <see cref="MaxPlus"/> that reads only the rows i that can reach a maximum — the same result, bitwise. A lower
    /// bound of every maximum comes from the four best-scoring rows: lb[k] = max over them of score[i] + T[i, k] ≤ best[k].
    /// A row i with score[i] + columnMax[k] &lt; lb[k] for every k cannot reach any maximum, since
    /// score[i] + T[i, k] ≤ score[i] + columnMax[k]; so only the rows with score[i] ≥ θ = min_k (lb[k] − columnMax[k])
    /// (less a rounding margin) are read. Viterbi's scores, shifted to a maximum of 0, fall off by many nats for a
    /// trained model, so a step of a 186-tag set reads a handful of rows instead of 186. Falls back to the dense product
    /// when more than half the rows would be read, when C &lt; <see cref="PruneFromTags"/>, or when a column that some
    /// tag may reach gets no finite bound from the four rows (constraints).
    /// </summary>
    /// <param name="score">δ_{t−1} [C].</param>
    /// <param name="transitions">[C, C], −∞ where disallowed.</param>
    /// <param name="columnMax">[C]: max_i transitions[i, k] (−∞ when no tag may precede k).</param>
    /// <param name="best">Output [C].</param>
    /// <param name="rows">Work space [C].</param>
    /// <param name="anyForbidden">
    /// Whether some transition is −∞. When none is, the bound comes from the best row alone and is computed with vector
    /// operations (a trained tagger without constraints); otherwise from the four best rows, column by column.
    /// </param>
    /// <returns>The number of rows read (C for the dense product).</returns>
    internal static int MaxPlusPruned(ReadOnlySpan<float> score, ReadOnlySpan<float> transitions, ReadOnlySpan<float> columnMax,
        Span<float> best, Span<int> rows, bool anyForbidden = true)
    {
        int c = best.Length;
        if (c < PruneFromTags || columnMax.Length < c || rows.Length < c)
        {
            MaxPlus(score, transitions, best);
            return c;
        }
        if (!anyForbidden && TensorPrimitives.Max(score) is var highest && float.IsFinite(highest))
        {
            // Every transition finite: the bound from the best row alone, all vectorized.
            int i0 = TensorPrimitives.IndexOfMax(score);
            TensorPrimitives.Add(transitions.Slice(i0 * c, c), highest, best);           // lb[k] = score[i0] + T[i0, k]
            var bound = MemoryMarshal.Cast<int, float>(rows[..c]);                          // work space, reused below
            TensorPrimitives.Subtract(best, columnMax[..c], bound);                       // lb[k] − columnMax[k]
            float theta = TensorPrimitives.Min(bound)
                - 1e-4f * (1f + MathF.Abs(TensorPrimitives.MaxMagnitude(best)) + MathF.Abs(TensorPrimitives.MaxMagnitude(columnMax[..c])));
            int n = 0;
            for (int i = 0; i < c; i++)
                if (score[i] >= theta) rows[n++] = i;                                      // overwrites bound: no longer needed
            if (n > c / 2)
            {
                MaxPlus(score, transitions, best);
                return c;
            }
            MaxPlusRows(score, transitions, rows[..n], best);
            return n;
        }
        // The four best rows (ties: the lower index), by one pass.
        Span<int> top = stackalloc int[4];
        int kept = 0;
        for (int i = 0; i < c; i++)
        {
            float v = score[i];
            if (float.IsNegativeInfinity(v)) continue;
            int at = kept;
            while (at > 0 && score[top[at - 1]] < v) at--;
            if (at >= 4) continue;
            for (int m = Math.Min(kept, 3); m > at; m--) top[m] = top[m - 1];
            top[at] = i;
            if (kept < 4) kept++;
        }
        if (kept == 0)
        {
            best.Fill(float.NegativeInfinity); // every score is −∞
            return 0;
        }
        MaxPlusRows(score, transitions, top[..kept], best); // lb[k]
        float threshold = float.PositiveInfinity, magnitude = 0f;
        for (int k = 0; k < c; k++)
        {
            float reach = columnMax[k];
            if (float.IsNegativeInfinity(reach)) continue;      // no tag may precede k: best[k] = −∞ whatever is read
            float lower = best[k];
            if (float.IsNegativeInfinity(lower))
            {
                MaxPlus(score, transitions, best);             // no finite bound for k from the four rows
                return c;
            }
            threshold = MathF.Min(threshold, lower - reach);
            magnitude = MathF.Max(magnitude, MathF.Abs(lower) + MathF.Abs(reach));
        }
        // Float rounding of lower − reach may exceed the exact difference by an ulp: widen by far more than that.
        threshold -= 1e-4f * (1f + magnitude);
        int count = 0;
        for (int i = 0; i < c; i++)
            if (score[i] >= threshold) rows[count++] = i;
        if (count > c / 2)
        {
            MaxPlus(score, transitions, best);
            return c;
        }
        if (count > kept)
            MaxPlusRows(score, transitions, rows[..count], best);
        return Math.Max(count, kept);
    }

    /// <summary>The index of the first maximum (NaN-free input; −∞ allowed).</summary>
    private static int FirstIndexOfMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        float bestValue = values[0];
        for (int i = 1; i < values.Length; i++)
            if (values[i] > bestValue) { bestValue = values[i]; best = i; }
        return best;
    }

    /// <summary><c>best[k] = max over i in rows of (score[i] + transitions[i·C + k])</c>; rows non-empty. Vectorized over k like <see cref="MaxPlus"/>.</summary>
    internal static void MaxPlusRows(ReadOnlySpan<float> score, ReadOnlySpan<float> transitions, ReadOnlySpan<int> rows, Span<float> best)
    {
        int c = best.Length, width = Vector<float>.Count;
        if (score.Length < c || transitions.Length < (long)c * c || rows.Length == 0)
            throw new ArgumentException("score [C] and transitions [C, C] are too short for best [C], or no rows.");
        foreach (int i in rows)
            if ((uint)i >= (uint)c) throw new ArgumentOutOfRangeException(nameof(rows), i, "A row is outside [0, C).");
        if (!Vector.IsHardwareAccelerated || c < width)
        {
            MaxPlusReference(score, transitions, best, rows);
            return;
        }
        ref float s = ref MemoryMarshal.GetReference(score);
        ref float t0 = ref MemoryMarshal.GetReference(transitions);
        ref float b = ref MemoryMarshal.GetReference(best);
        nuint last = (nuint)(c - width);
        for (nuint next = 0; ; next += (nuint)width)
        {
            nuint k = Math.Min(next, last);
            int i0 = rows[0];
            var m0 = new Vector<float>(Unsafe.Add(ref s, i0)) + Vector.LoadUnsafe(ref t0, (nuint)i0 * (nuint)c + k);
            var m1 = m0;
            int r = 1;
            for (; r + 1 < rows.Length; r += 2)
            {
                int i = rows[r], j = rows[r + 1];
                m0 = Vector.Max(m0, new Vector<float>(Unsafe.Add(ref s, i)) + Vector.LoadUnsafe(ref t0, (nuint)i * (nuint)c + k));
                m1 = Vector.Max(m1, new Vector<float>(Unsafe.Add(ref s, j)) + Vector.LoadUnsafe(ref t0, (nuint)j * (nuint)c + k));
            }
            if (r < rows.Length)
            {
                int i = rows[r];
                m0 = Vector.Max(m0, new Vector<float>(Unsafe.Add(ref s, i)) + Vector.LoadUnsafe(ref t0, (nuint)i * (nuint)c + k));
            }
            Vector.Max(m0, m1).StoreUnsafe(ref b, k);
            if (k == last) break;
        }
    }

    /// <summary>
    /// Scalar reference of <see cref="MaxPlus"/> (every row) and of <see cref="MaxPlusRows"/> (the given rows, when
    /// <paramref name="rows"/> is not empty).
    /// </summary>
    internal static void MaxPlusReference(ReadOnlySpan<float> score, ReadOnlySpan<float> transitions, Span<float> best,
        ReadOnlySpan<int> rows = default)
    {
        int c = best.Length, count = rows.IsEmpty ? c : rows.Length;
        for (int k = 0; k < c; k++)
        {
            float m = float.NegativeInfinity;
            for (int r = 0; r < count; r++)
            {
                int i = rows.IsEmpty ? r : rows[r];
                m = MathF.Max(m, score[i] + transitions[i * c + k]);
            }
            best[k] = m;
        }
    }

    // ---------------------------------------------------------------------------------------------------------------

    private void ValidateTags(RaggedBatch batch, ReadOnlySpan<int> tags)
    {
        int c = NumTags;
        var offsets = batch.StepOffsets;
        for (int j = 0; j < batch.BatchSize; j++)
        {
            int sequence = batch.Order[j], length = batch.SortedLengths[j], previous = -1;
            for (int t = 0; t < length; t++)
            {
                int tag = tags[offsets[t] + j];
                if ((uint)tag >= (uint)c)
                    throw new ArgumentOutOfRangeException(nameof(tags), tag, $"Tag {tag} at step {t} of sequence {sequence} is outside [0, {c}).");
                if (Constraints is { } constraints)
                {
                    if (t == 0 && !constraints.IsAllowedStart(tag))
                        throw new ArgumentException($"Sequence {sequence} starts with tag {tag}, which the CRF's constraints do not allow at the start "
                            + "(are the labels in the tag scheme the constraints were made for?).", nameof(tags));
                    if (t > 0 && !constraints.IsAllowed(previous, tag))
                        throw new ArgumentException($"Sequence {sequence} has tag {previous} followed by tag {tag} at step {t}, a transition the CRF's constraints "
                            + "do not allow (are the labels in the tag scheme the constraints were made for, e.g. not IOB1 under BIO?).", nameof(tags));
                    if (t == length - 1 && !constraints.IsAllowedEnd(tag))
                        throw new ArgumentException($"Sequence {sequence} ends with tag {tag} at step {t}, which the CRF's constraints do not allow at the end "
                            + "(are the labels in the tag scheme the constraints were made for?).", nameof(tags));
                }
                previous = tag;
            }
        }
    }

    private static void RequireLength(int length, int required, string name)
    {
        if (length < required)
            throw new ArgumentException($"{name} has {length} elements; the batch needs {required}.", name);
    }

    private void EnsureBuffers(RaggedBatch batch)
    {
        int c = NumTags, n = batch.TotalSteps, b = batch.BatchSize;
        Workspace.Ensure(ref _logAlpha, n * c);
        Workspace.Ensure(ref _alpha, n * c);
        Workspace.Ensure(ref _logBeta, n * c);
        Workspace.Ensure(ref _edge, n * c);
        Ensure(ref _alphaScale, n);
        Ensure(ref _betaScale, n);
        Ensure(ref _logZ, b);
        Workspace.Ensure(ref _stepA, Math.Max(b, 1) * c);
        Workspace.Ensure(ref _stepB, b * c);
        Workspace.Ensure(ref _stepC, b * c);
        Workspace.Ensure(ref _stepMax, b);
        Workspace.Ensure(ref _edgeSum, c * c);
        Workspace.Ensure(ref _edgeExact, c * c);
        Workspace.Ensure(ref _counts, c * c);

        static void Ensure(ref double[] buffer, int length)
        {
            if (buffer.Length < length)
                buffer = new double[Math.Max(length, buffer.Length + buffer.Length / 2)];
        }
    }

    /// <summary>
    /// The log-potentials one call uses: the parameters with disallowed entries at −∞, and the exponentials the scaled
    /// recursions multiply by: E[i, k] = exp(T[i, k] − c_k) with c_k the column maximum, F[i, k] = exp(T[i, k] − r_i)
    /// with r_i the row maximum (a maximum over nothing allowed is taken as 0; its exponentials are all 0).
    /// </summary>
    private sealed class Potentials(int c)
    {
        public readonly float[] Start = new float[c];          // [C]
        public readonly float[] End = new float[c];            // [C]
        public readonly float[] Transitions = new float[c * c]; // [C, C]
        public readonly float[] ColumnMax = new float[c];      // [C] c_k
        public readonly float[] DecodeColumnMax = new float[c]; // [C] max_i T[i, k], −∞ when no tag may precede k (pruned Viterbi)
        public readonly float[] TransposedTransitions = new float[c * c]; // [C, C] T[i, k] at [k, i] (Viterbi's backtrack)
        public bool AnyForbidden;                               // some transition is −∞ (constraints, or a parameter of −∞)

        /// <summary>The parameters never change (an inference copy): <see cref="Load"/> computes everything once.</summary>
        public bool Frozen;
        private int _level;                                     // loaded: 0 nothing, 1 for decoding, 2 with the exponentials
        public readonly float[] RowMax = new float[c];         // [C] r_i
        public readonly float[] ExpByColumn = new float[c * c]; // [C, C] E
        public readonly float[] ExpByRow = new float[c * c];   // [C, C] F

        public void Load(ReadOnlySpan<float> start, ReadOnlySpan<float> end, ReadOnlySpan<float> transitions, CrfConstraints? constraints,
            bool withExponentials = true)
        {
            int need = withExponentials ? 2 : 1;
            if (Frozen && _level >= need) return;
            start.CopyTo(Start);
            end.CopyTo(End);
            transitions.CopyTo(Transitions);
            if (constraints is not null)
            {
                Mask(Start, constraints.AllowedStart);
                Mask(End, constraints.AllowedEnd);
                Mask(Transitions, constraints.AllowedTransitions);
            }
            DecodeColumnMax.AsSpan().Fill(float.NegativeInfinity);
            for (int i = 0; i < c; i++)
                TensorPrimitives.Max(DecodeColumnMax, Transitions.AsSpan(i * c, c), DecodeColumnMax);
            AnyForbidden = float.IsNegativeInfinity(TensorPrimitives.Min(Transitions.AsSpan(0, c * c)));
            for (int i = 0; i < c; i++)
                for (int k = 0; k < c; k++)
                    TransposedTransitions[k * c + i] = Transitions[i * c + k];
            _level = 1;
            if (!withExponentials) return;
            ColumnMax.AsSpan().Fill(float.NegativeInfinity);
            for (int i = 0; i < c; i++)
            {
                var row = Transitions.AsSpan(i * c, c);
                TensorPrimitives.Max(ColumnMax, row, ColumnMax);
                float r = TensorPrimitives.Max(row);
                RowMax[i] = float.IsNegativeInfinity(r) ? 0f : r;
            }
            for (int k = 0; k < c; k++)
                if (float.IsNegativeInfinity(ColumnMax[k])) ColumnMax[k] = 0f;
            for (int i = 0; i < c; i++)
            {
                var row = Transitions.AsSpan(i * c, c);
                var byColumn = ExpByColumn.AsSpan(i * c, c);
                TensorPrimitives.Subtract(row, ColumnMax, byColumn);
                TensorPrimitives.Exp(byColumn, byColumn);
                var byRow = ExpByRow.AsSpan(i * c, c);
                TensorPrimitives.Subtract(row, RowMax[i], byRow);
                TensorPrimitives.Exp(byRow, byRow);
            }
            _level = 2;
        }

        private static void Mask(Span<float> values, ReadOnlySpan<bool> allowed)
        {
            for (int i = 0; i < values.Length; i++)
                if (!allowed[i]) values[i] = float.NegativeInfinity;
        }
    }
}
