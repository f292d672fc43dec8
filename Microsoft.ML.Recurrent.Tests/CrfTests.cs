using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Layers;

namespace Microsoft.ML.Recurrent.Tests;

/// <summary>
/// The linear-chain CRF against a brute-force reference that enumerates every tag path in double precision (NLL,
/// gradients, marginals, Viterbi), against finite differences, and the BIO/IOBES constraints against AllenNLP's rules.
/// </summary>
[TestClass]
public sealed class CrfTests
{
    private static readonly int[] Lengths = [3, 5, 1, 4]; // unsorted, includes length 1
    private static readonly string[] BioTags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"];
    private static readonly string[] IobesTags = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"];

    public TestContext TestContext { get; set; } = null!;

    /// <summary>A CRF with random parameters, packed emissions and gold tags (allowed under the constraints).</summary>
    private sealed class Case
    {
        public required RaggedBatch Batch;
        public required ParameterSet Parameters;
        public required LinearChainCrf Crf;
        public required float[] Emissions; // packed [N, C]
        public required int[] Tags;        // packed [N]
        public int C => Crf.NumTags;
        public float[] Start => Parameters.Value(Parameters["crf.start_transitions"]).ToArray();
        public float[] End => Parameters.Value(Parameters["crf.end_transitions"]).ToArray();
        public float[] Transitions => Parameters.Value(Parameters["crf.transitions"]).ToArray();
    }

    private static Case Make(int[] lengths, int c, CrfConstraints? constraints, int seed, float emissionRange = 2f, float parameterRange = 1f)
    {
        var batch = new RaggedBatch(lengths);
        var parameters = new ParameterSet();
        var crf = new LinearChainCrf(parameters, "crf.", c, constraints);
        parameters.Allocate();
        var random = new SeededRandom(seed);
        random.FillUniform(parameters.Values, -parameterRange, parameterRange);
        var emissions = new float[batch.TotalSteps * c];
        random.FillUniform(emissions, -emissionRange, emissionRange);
        var concatenated = new List<int>();
        foreach (int length in lengths)
            concatenated.AddRange(RandomPath(random, length, c, constraints));
        var tags = new int[batch.TotalSteps];
        PackInts(batch, concatenated.ToArray(), tags);
        return new Case { Batch = batch, Parameters = parameters, Crf = crf, Emissions = emissions, Tags = tags };
    }

    /// <summary>A random tag path the constraints allow: each tag uniform among those allowed after the previous one; redrawn if it cannot end.</summary>
    private static int[] RandomPath(SeededRandom random, int length, int c, CrfConstraints? constraints)
    {
        var path = new int[length];
        var candidates = new List<int>();
        while (true)
        {
            for (int t = 0; t < length; t++)
            {
                candidates.Clear();
                for (int tag = 0; tag < c; tag++)
                    if (constraints is null || (t == 0 ? constraints.IsAllowedStart(tag) : constraints.IsAllowed(path[t - 1], tag)))
                        candidates.Add(tag);
                path[t] = candidates[random.NextInt(candidates.Count)];
            }
            if (constraints is null || constraints.FirstViolation(path) < 0) return path;
        }
    }

    private static void PackInts(RaggedBatch batch, int[] concatenated, int[] packed)
    {
        for (int j = 0; j < batch.BatchSize; j++)
            for (int t = 0; t < batch.SortedLengths[j]; t++)
                packed[batch.Row(t, j)] = concatenated[batch.SequenceStarts[batch.Order[j]] + t];
    }

    // ------------------------------------------------------------------------------------------------------------
    // Brute force: every one of the C^L paths of one sequence, in double.

    private sealed record Reference(double LogZ, double[] Marginals, double[] EdgeSums, int[] Best, double BestScore);

    private static double PathScore(int[] path, int c, ReadOnlySpan<float> emissions, float[] start, float[] end, float[] transitions, CrfConstraints? constraints)
    {
        if (constraints is not null && constraints.FirstViolation(path) >= 0) return double.NegativeInfinity;
        double s = start[path[0]] + (double)emissions[path[0]];
        for (int t = 1; t < path.Length; t++)
            s += transitions[path[t - 1] * c + path[t]] + (double)emissions[t * c + path[t]];
        return s + end[path[^1]];
    }

    /// <summary>emissions: one sequence [L, C].</summary>
    private static Reference BruteForce(int c, float[] emissions, float[] start, float[] end, float[] transitions, CrfConstraints? constraints)
    {
        int length = emissions.Length / c;
        int count = (int)Math.Pow(c, length);
        var scores = new double[count];
        var path = new int[length];
        double max = double.NegativeInfinity, bestScore = double.NegativeInfinity;
        int[] best = new int[length];
        for (int p = 0; p < count; p++)
        {
            Decompose(p, c, path);
            scores[p] = PathScore(path, c, emissions, start, end, transitions, constraints);
            max = Math.Max(max, scores[p]);
            if (scores[p] > bestScore) { bestScore = scores[p]; path.CopyTo(best, 0); }
        }
        double sum = 0;
        foreach (double s in scores) sum += Math.Exp(s - max);
        double logZ = max + Math.Log(sum);
        var marginals = new double[length * c];
        var edges = new double[c * c];
        for (int p = 0; p < count; p++)
        {
            double probability = Math.Exp(scores[p] - logZ);
            if (probability == 0) continue;
            Decompose(p, c, path);
            for (int t = 0; t < length; t++)
            {
                marginals[t * c + path[t]] += probability;
                if (t > 0) edges[path[t - 1] * c + path[t]] += probability;
            }
        }
        return new Reference(logZ, marginals, edges, best, bestScore);
    }

    private static void Decompose(int p, int c, int[] path)
    {
        for (int t = path.Length - 1; t >= 0; t--) { path[t] = p % c; p /= c; }
    }

    /// <summary>Sequence i (caller's order) of a packed [N, C] array, [L_i, C].</summary>
    private static float[] SequenceRows(RaggedBatch batch, float[] packed, int c, int i)
    {
        var all = new float[packed.Length];
        batch.Unpack(packed, c, all);
        return all.AsSpan(batch.SequenceStarts[i] * c, batch.Lengths[i] * c).ToArray();
    }

    private static int[] SequenceTags(RaggedBatch batch, int[] packed, int i)
    {
        int j = batch.Order.IndexOf(i);
        return Enumerable.Range(0, batch.Lengths[i]).Select(t => packed[batch.Row(t, j)]).ToArray();
    }

    /// <summary>The expected loss and gradients of a whole batch from the per-sequence brute force.</summary>
    private static (double Loss, float[] DEmissions, double[] DStart, double[] DEnd, double[] DTransitions) ReferenceGradients(Case k, float scale)
    {
        int c = k.C;
        var batch = k.Batch;
        var dEmissionsConcatenated = new float[batch.TotalSteps * c];
        var dStart = new double[c];
        var dEnd = new double[c];
        var dTransitions = new double[c * c];
        double loss = 0;
        for (int i = 0; i < batch.BatchSize; i++)
        {
            var e = SequenceRows(batch, k.Emissions, c, i);
            var gold = SequenceTags(batch, k.Tags, i);
            var r = BruteForce(c, e, k.Start, k.End, k.Transitions, k.Crf.Constraints);
            int length = gold.Length;
            loss += r.LogZ - PathScore(gold, c, e, k.Start, k.End, k.Transitions, null);
            for (int t = 0; t < length; t++)
                for (int tag = 0; tag < c; tag++)
                    dEmissionsConcatenated[(batch.SequenceStarts[i] + t) * c + tag] = (float)(scale * (r.Marginals[t * c + tag] - (gold[t] == tag ? 1 : 0)));
            for (int tag = 0; tag < c; tag++)
            {
                dStart[tag] += scale * (r.Marginals[tag] - (gold[0] == tag ? 1 : 0));
                dEnd[tag] += scale * (r.Marginals[(length - 1) * c + tag] - (gold[^1] == tag ? 1 : 0));
            }
            for (int x = 0; x < c * c; x++) dTransitions[x] += scale * r.EdgeSums[x];
            for (int t = 1; t < length; t++) dTransitions[gold[t - 1] * c + gold[t]] -= scale;
        }
        var dEmissions = new float[dEmissionsConcatenated.Length];
        batch.Pack(dEmissionsConcatenated, c, dEmissions);
        return (loss, dEmissions, dStart, dEnd, dTransitions);
    }

    private static void AssertClose(ReadOnlySpan<double> expected, ReadOnlySpan<float> actual, double absolute, double relative, string what)
    {
        Assert.AreEqual(expected.Length, actual.Length, $"{what}: length");
        for (int i = 0; i < expected.Length; i++)
            Assert.IsTrue(Math.Abs(expected[i] - actual[i]) <= absolute + relative * Math.Abs(expected[i]),
                $"{what}[{i}]: expected {expected[i]:G9}, got {actual[i]:G9}");
    }

    private static double[] ToDouble(float[] values) => values.Select(v => (double)v).ToArray();

    private static CrfConstraints? Constraints(string scheme) => scheme switch
    {
        "none" => null,
        "bio" => CrfConstraints.ForBio(BioTags),
        "iobes" => CrfConstraints.ForIobes(IobesTags),
        _ => throw new ArgumentException(scheme),
    };

    private static int TagCount(string scheme, int unconstrained) => scheme switch { "bio" => BioTags.Length, "iobes" => IobesTags.Length, _ => unconstrained };

    // ------------------------------------------------------------------------------------------------------------

    [TestMethod]
    [DataRow("none", 4)]
    [DataRow("none", 1)]
    [DataRow("bio", 0)]
    [DataRow("iobes", 0)]
    public void NllAndGradientsMatchBruteForce(string scheme, int tags)
    {
        int c = TagCount(scheme, tags);
        int[] lengths = scheme == "iobes" ? [3, 4, 1, 2] : Lengths; // 9^4 paths at most
        var k = Make(lengths, c, Constraints(scheme), seed: 11 + c);
        const float scale = 0.5f;
        var dEmissions = new float[k.Emissions.Length];
        k.Parameters.ZeroGradients();
        float loss = k.Crf.Forward(k.Batch, k.Emissions, k.Tags, dEmissions, scale);

        var expected = ReferenceGradients(k, scale);
        Assert.AreEqual(expected.Loss, loss, 1e-5 * Math.Max(1, Math.Abs(expected.Loss)), "NLL");
        AssertClose(ToDouble(expected.DEmissions), dEmissions, 2e-6, 1e-4, "dEmissions");
        var ps = k.Parameters;
        AssertClose(expected.DStart, ps.Gradient(ps["crf.start_transitions"]), 2e-6, 1e-4, "dStart");
        AssertClose(expected.DEnd, ps.Gradient(ps["crf.end_transitions"]), 2e-6, 1e-4, "dEnd");
        AssertClose(expected.DTransitions, ps.Gradient(ps["crf.transitions"]), 5e-6, 1e-4, "dTransitions");
        Assert.AreEqual(0, k.Crf.ExactEntries, "ordinary scores stay on the fast path");
        if (k.Crf.Constraints is { } constraints)
        {
            // Disallowed parameters take no part: zero gradient.
            var dTransitions = ps.Gradient(ps["crf.transitions"]);
            for (int x = 0; x < c * c; x++)
                if (!constraints.AllowedTransitions[x]) Assert.AreEqual(0f, dTransitions[x], $"dTransitions[{x}] is disallowed");
            var dStart = ps.Gradient(ps["crf.start_transitions"]);
            for (int x = 0; x < c; x++)
                if (!constraints.AllowedStart[x]) Assert.AreEqual(0f, dStart[x], $"dStart[{x}] is disallowed");
        }
    }

    /// <summary>
    /// Scores far beyond what a network produces (emissions ±100, transitions ±80): the scaled sums underflow and the
    /// exact log-space fallbacks (forward, backward and edge rows) take over; results still match the brute force.
    /// </summary>
    [TestMethod]
    [DataRow("none")]
    [DataRow("bio")]
    public void ExtremeScoresTakeTheExactPathAndStayCorrect(string scheme)
    {
        var constraints = Constraints(scheme);
        int c = TagCount(scheme, 5);
        var k = Make([4, 6, 1, 5, 3], c, constraints, seed: 5, emissionRange: 100f, parameterRange: 80f);
        var dEmissions = new float[k.Emissions.Length];
        k.Parameters.ZeroGradients();
        float loss = k.Crf.Forward(k.Batch, k.Emissions, k.Tags, dEmissions, 1f);
        TestContext.WriteLine($"{scheme}: {k.Crf.ExactEntries} entries computed exactly");
        Assert.IsTrue(k.Crf.ExactEntries > 0, "the test should reach the exact fallbacks");

        var expected = ReferenceGradients(k, 1f);
        Assert.AreEqual(expected.Loss, loss, 1e-5 * Math.Max(1, Math.Abs(expected.Loss)), "NLL");
        AssertClose(ToDouble(expected.DEmissions), dEmissions, 1e-5, 1e-4, "dEmissions");
        var ps = k.Parameters;
        AssertClose(expected.DStart, ps.Gradient(ps["crf.start_transitions"]), 1e-5, 1e-4, "dStart");
        AssertClose(expected.DEnd, ps.Gradient(ps["crf.end_transitions"]), 1e-5, 1e-4, "dEnd");
        AssertClose(expected.DTransitions, ps.Gradient(ps["crf.transitions"]), 1e-5, 1e-4, "dTransitions");

        var probabilities = new float[k.Emissions.Length];
        k.Crf.Marginals(k.Batch, k.Emissions, probabilities);
        var decoded = new int[k.Batch.TotalSteps];
        k.Crf.Decode(k.Batch, k.Emissions, decoded);
        for (int i = 0; i < k.Batch.BatchSize; i++)
        {
            var r = BruteForce(c, SequenceRows(k.Batch, k.Emissions, c, i), k.Start, k.End, k.Transitions, constraints);
            AssertClose(r.Marginals, SequenceRows(k.Batch, probabilities, c, i), 1e-5, 1e-4, $"marginals of sequence {i}");
            CollectionAssert.AreEqual(r.Best, SequenceTags(k.Batch, decoded, i), $"Viterbi path of sequence {i}");
        }
    }

    /// <summary>
    /// Two tags, T = [[0, −100], [0, 0]], emissions [[200, 100], [−100, 0]]: the paths 0→0, 0→1 and 1→1 score 100
    /// each, but the scaled forward sum into tag 1 and the scaled backward sum out of tag 0 underflow (e^−100), and the
    /// edge 0→1 needs a factor of e^99. Each exact fallback decides the answer: p = (2/3, 1/3) then (1/3, 2/3).
    /// </summary>
    [TestMethod]
    public void EachExactFallbackIsDecisiveAndRight()
    {
        var batch = new RaggedBatch([1, 2]);
        var parameters = new ParameterSet();
        var crf = new LinearChainCrf(parameters, "crf.", 2);
        parameters.Allocate();
        float[] transitions = [0f, -100f, 0f, 0f];
        transitions.CopyTo(parameters.Value(parameters["crf.transitions"]));
        float[] concatenated = [0.5f, -0.5f, /* sequence 1: */ 200f, 100f, -100f, 0f];
        var emissions = new float[concatenated.Length];
        batch.Pack(concatenated, 2, emissions);
        var k = new Case { Batch = batch, Parameters = parameters, Crf = crf, Emissions = emissions, Tags = new int[3] };
        PackInts(batch, [1, 0, 1], k.Tags);

        var dEmissions = new float[emissions.Length];
        float loss = crf.Forward(batch, emissions, k.Tags, dEmissions, 1f);
        Assert.IsTrue(crf.ExactEntries >= 2 + 4, $"forward, backward and edge fallbacks expected, got {crf.ExactEntries} entries");
        var expected = ReferenceGradients(k, 1f);
        Assert.AreEqual(expected.Loss, loss, 1e-5 * Math.Abs(expected.Loss), "NLL");
        AssertClose(ToDouble(expected.DEmissions), dEmissions, 1e-6, 1e-5, "dEmissions");
        AssertClose(expected.DStart, parameters.Gradient(parameters["crf.start_transitions"]), 1e-6, 1e-5, "dStart");
        AssertClose(expected.DEnd, parameters.Gradient(parameters["crf.end_transitions"]), 1e-6, 1e-5, "dEnd");
        AssertClose(expected.DTransitions, parameters.Gradient(parameters["crf.transitions"]), 1e-6, 1e-5, "dTransitions");
        var probabilities = new float[emissions.Length];
        crf.Marginals(batch, emissions, probabilities);
        AssertClose([2 / 3.0, 1 / 3.0, 1 / 3.0, 2 / 3.0], SequenceRows(batch, probabilities, 2, 1), 1e-6, 0, "marginals of sequence 1");
    }

    [TestMethod]
    [DataRow("none")]
    [DataRow("bio")]
    public void GradientsMatchFiniteDifferences(string scheme)
    {
        int c = TagCount(scheme, 4);
        var k = Make(Lengths, c, Constraints(scheme), seed: 23);
        var dEmissions = new float[k.Emissions.Length];
        var scratch = new float[k.Emissions.Length];
        k.Parameters.ZeroGradients();
        k.Crf.Forward(k.Batch, k.Emissions, k.Tags, dEmissions, 1f);
        var ps = k.Parameters;
        var analytic = ps.Gradients.ToArray();
        double Loss() => k.Crf.Forward(k.Batch, k.Emissions, k.Tags, scratch, 1f);

        var failures = new List<string>();
        foreach (var p in ps.Parameters)
            GradientCheckTests.CheckAll(p.Length, i => ps.Values[p.Offset + i], (i, v) => ps.Values[p.Offset + i] = v,
                analytic.AsSpan(p.Offset, p.Length).ToArray(), Loss, p.Name, failures);
        GradientCheckTests.CheckAll(k.Emissions.Length, i => k.Emissions[i], (i, v) => k.Emissions[i] = v, dEmissions, Loss, "emissions", failures);
        Assert.AreEqual(0, failures.Count, string.Join("\n", failures.Take(20)));
    }

    [TestMethod]
    [DataRow("none", 3)]
    [DataRow("none", 5)]
    [DataRow("bio", 0)]
    [DataRow("iobes", 0)]
    public void MarginalsMatchBruteForceAndSumToOne(string scheme, int tags)
    {
        int c = TagCount(scheme, tags);
        int[] lengths = scheme == "iobes" ? [2, 4, 1, 3] : [4, 1, 6, 2];
        var k = Make(lengths, c, Constraints(scheme), seed: 31 + c, emissionRange: 3f);
        var probabilities = new float[k.Emissions.Length];
        k.Crf.Marginals(k.Batch, k.Emissions, probabilities);
        for (int row = 0; row < k.Batch.TotalSteps; row++)
            Assert.AreEqual(1.0, probabilities.AsSpan(row * c, c).ToArray().Sum(p => (double)p), 1e-6, $"row {row} sums to 1");
        for (int i = 0; i < k.Batch.BatchSize; i++)
        {
            var r = BruteForce(c, SequenceRows(k.Batch, k.Emissions, c, i), k.Start, k.End, k.Transitions, k.Crf.Constraints);
            AssertClose(r.Marginals, SequenceRows(k.Batch, probabilities, c, i), 1e-6, 1e-5, $"marginals of sequence {i}");
        }
    }

    [TestMethod]
    [DataRow("none", 2)]
    [DataRow("none", 3)]
    [DataRow("none", 5)]
    [DataRow("bio", 0)]
    [DataRow("iobes", 0)]
    public void ViterbiMatchesBruteForce(string scheme, int tags)
    {
        var constraints = Constraints(scheme);
        int c = TagCount(scheme, tags);
        for (int seed = 0; seed < 10; seed++)
        {
            int[] lengths = scheme == "iobes" ? [1, 3, 4, 2] : [5, 1, 3, 6, 2];
            var k = Make(lengths, c, constraints, seed: 100 + seed, emissionRange: 3f, parameterRange: 2f);
            var decoded = new int[k.Batch.TotalSteps];
            k.Crf.Decode(k.Batch, k.Emissions, decoded);
            for (int i = 0; i < k.Batch.BatchSize; i++)
            {
                var r = BruteForce(c, SequenceRows(k.Batch, k.Emissions, c, i), k.Start, k.End, k.Transitions, constraints);
                CollectionAssert.AreEqual(r.Best, SequenceTags(k.Batch, decoded, i), $"seed {seed}, sequence {i}");
            }
        }
    }

    /// <summary>
    /// Every tag count from 1 to 40 (whole vectors and tails of the max-plus kernel at any width): the vectorized
    /// max-plus step equals its scalar reference bitwise, and Decode's path scores as high as a plain back-pointer
    /// Viterbi's (in double).
    /// </summary>
    [TestMethod]
    public void PrunedMaxPlusEqualsTheDenseProductBitwise()
    {
        // Peaked scores (a trained tagger's), flat scores (an untrained one: the dense fallback), −∞ scores and
        // transitions (constraints), a column no tag may reach, and tag counts around the pruning and vector thresholds.
        var random = new SeededRandom(21);
        foreach (int c in new[] { 31, 32, 33, 45, 64, 100, 186, 257 })
            for (int trial = 0; trial < 40; trial++)
            {
                var score = new float[c];
                var transitions = new float[c * c];
                float spread = trial % 4 switch { 0 => 0.5f, 1 => 5f, 2 => 30f, _ => 100f };
                random.FillUniform(score, -spread, 0f);
                score[trial % c] = 0f;
                random.FillUniform(transitions, -3f, 3f);
                if (trial % 3 == 1)
                    for (int i = 0; i < c * c; i += 7) transitions[i] = float.NegativeInfinity;
                if (trial % 5 == 2)
                    for (int i = 0; i < c; i++) transitions[i * c + (c - 1)] = float.NegativeInfinity; // column c − 1 unreachable
                if (trial % 6 == 3) score[(trial + 1) % c] = float.NegativeInfinity;
                if (trial % 8 == 5) score[(trial + 2) % c] = 0f; // a tie for the best row
                var columnMax = Enumerable.Range(0, c).Select(k => Enumerable.Range(0, c).Max(i => transitions[i * c + k])).ToArray();
                var dense = new float[c];
                var fast = new float[c];
                var rows = new int[c];
                LinearChainCrf.MaxPlus(score, transitions, dense);
                bool anyForbidden = transitions.Any(float.IsNegativeInfinity);
                int read = LinearChainCrf.MaxPlusPruned(score, transitions, columnMax, fast, rows, anyForbidden);
                CollectionAssert.AreEqual(dense, fast, $"C = {c}, trial {trial}");
                // The general path (used with constraints) must agree too.
                var general = new float[c];
                LinearChainCrf.MaxPlusPruned(score, transitions, columnMax, general, new int[c], anyForbidden: true);
                CollectionAssert.AreEqual(dense, general, $"C = {c}, trial {trial}, general path");
                if (c < LinearChainCrf.PruneFromTags)
                    Assert.AreEqual(c, read, $"C = {c}: below the pruning threshold every row is read");
                else if (spread == 100f && trial % 3 != 1 && trial % 6 != 3)
                    Assert.IsTrue(read <= c / 8, $"C = {c}, trial {trial}: peaked scores (100 nats) should prune, but {read} rows were read");
                else if (spread == 0.5f)
                    Assert.AreEqual(c, read, $"C = {c}, trial {trial}: flat scores cannot prune");
            }

        var allMinusInfinity = Enumerable.Repeat(float.NegativeInfinity, 40).ToArray();
        var t40 = new float[40 * 40];
        var out40 = new float[40];
        LinearChainCrf.MaxPlusPruned(allMinusInfinity, t40, new float[40], out40, new int[40]);
        Assert.IsTrue(out40.All(float.IsNegativeInfinity));
    }

    [TestMethod]
    public void AFrozenCopyDecodesAndMarginalizesLikeTheLiveCrf()
    {
        // The inference copy computes its potentials once (FreezeParameters); over many calls with different sentences it
        // must give exactly what the live CRF gives, with and without constraints, at a small and a large tag set.
        string[] bio = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"];
        foreach (var (c, constraints) in new (int, CrfConstraints?)[] { (5, CrfConstraints.ForBio(bio)), (5, null), (60, null) })
        {
            var live = Make([6, 1, 9], c, constraints, seed: 5 + c, emissionRange: 6f);
            var parameters = new ParameterSet();
            var frozen = new LinearChainCrf(parameters, "crf.", c, constraints);
            parameters.Allocate(withGradients: false);
            foreach (var p in parameters.Parameters)
                live.Parameters.Value(live.Parameters[p.Name]).CopyTo(parameters.Value(p));
            frozen.FreezeParameters();
            var random = new SeededRandom(40 + c);
            foreach (int[] lengths in new[] { new[] { 6, 1, 9 }, new[] { 1 }, new[] { 12, 12 }, new[] { 3 } })
            {
                var batch = new RaggedBatch(lengths);
                var emissions = new float[batch.TotalSteps * c];
                random.FillUniform(emissions, -6f, 6f);
                int[] expectedTags = new int[batch.TotalSteps], tags = new int[batch.TotalSteps];
                live.Crf.Decode(batch, emissions, expectedTags);
                frozen.Decode(batch, emissions, tags);
                CollectionAssert.AreEqual(expectedTags, tags, $"C = {c}, lengths {string.Join(",", lengths)}: Viterbi");
                float[] expected = new float[emissions.Length], marginals = new float[emissions.Length];
                live.Crf.Marginals(batch, emissions, expected);
                frozen.Marginals(batch, emissions, marginals);
                CollectionAssert.AreEqual(expected, marginals, $"C = {c}, lengths {string.Join(",", lengths)}: marginals");
            }
        }
    }

    [TestMethod]
    public void ViterbiOfA186TagSetMatchesTheBruteForceBestPathScore()
    {
        // Peaked emissions, like a trained tagger's, so that the pruned max-plus skips rows; the decoded paths must
        // still be best paths (their score equals the plain Viterbi score computed in double).
        int c = 186;
        var k = Make([12, 1, 5, 20, 3], c, null, seed: 77, emissionRange: 25f, parameterRange: 2f);
        var decoded = new int[k.Batch.TotalSteps];
        k.Crf.Decode(k.Batch, k.Emissions, decoded);
        for (int i = 0; i < k.Batch.BatchSize; i++)
        {
            var e = SequenceRows(k.Batch, k.Emissions, c, i);
            var path = SequenceTags(k.Batch, decoded, i);
            Assert.AreEqual(PlainViterbiScore(c, e, k.Start, k.End, k.Transitions), PathScore(path, c, e, k.Start, k.End, k.Transitions, null), 1e-3,
                $"sequence {i}: the decoded path is not a best path");
        }
    }

    [TestMethod]
    public void ViterbiAtEveryTagCountMatchesTheScalarReference()
    {
        var random = new SeededRandom(8);
        for (int c = 1; c <= 40; c++)
        {
            var score = new float[c];
            var transitions = new float[c * c];
            random.FillUniform(score, -5f, 5f);
            random.FillUniform(transitions, -5f, 5f);
            if (c > 2) { score[1] = float.NegativeInfinity; transitions[c + 2] = float.NegativeInfinity; }
            var fast = new float[c];
            var reference = new float[c];
            LinearChainCrf.MaxPlus(score, transitions, fast);
            LinearChainCrf.MaxPlusReference(score, transitions, reference);
            CollectionAssert.AreEqual(reference, fast, $"max-plus at C = {c}");

            var k = Make([7, 1, 4, 9, 3], c, null, seed: 1000 + c, emissionRange: 3f, parameterRange: 2f);
            var decoded = new int[k.Batch.TotalSteps];
            k.Crf.Decode(k.Batch, k.Emissions, decoded);
            for (int i = 0; i < k.Batch.BatchSize; i++)
            {
                var e = SequenceRows(k.Batch, k.Emissions, c, i);
                var path = SequenceTags(k.Batch, decoded, i);
                double best = PlainViterbiScore(c, e, k.Start, k.End, k.Transitions);
                double ours = PathScore(path, c, e, k.Start, k.End, k.Transitions, null);
                Assert.AreEqual(best, ours, 1e-4, $"C = {c}, sequence {i}: the decoded path is not a best path");
            }
        }
    }

    /// <summary>The best path score by a textbook Viterbi in double.</summary>
    private static double PlainViterbiScore(int c, float[] emissions, float[] start, float[] end, float[] transitions)
    {
        int length = emissions.Length / c;
        var delta = new double[c];
        for (int k = 0; k < c; k++) delta[k] = start[k] + (double)emissions[k];
        for (int t = 1; t < length; t++)
        {
            var next = new double[c];
            for (int k = 0; k < c; k++)
            {
                double best = double.NegativeInfinity;
                for (int i = 0; i < c; i++) best = Math.Max(best, delta[i] + transitions[i * c + k]);
                next[k] = best + emissions[t * c + k];
            }
            delta = next;
        }
        return Enumerable.Range(0, c).Max(k => delta[k] + end[k]);
    }

    [TestMethod]
    [DataRow("bio")]
    [DataRow("iobes")]
    public void DecodeNeverUsesADisallowedTransition(string scheme)
    {
        var constraints = Constraints(scheme)!;
        int c = constraints.NumTags;
        var random = new SeededRandom(4);
        for (int round = 0; round < 50; round++)
        {
            var lengths = Enumerable.Range(0, 8).Select(_ => 1 + random.NextInt(12)).ToArray();
            var k = Make(lengths, c, constraints, seed: 500 + round, emissionRange: 10f, parameterRange: 3f);
            // Make the disallowed transitions the most attractive ones.
            var transitions = k.Parameters.Value(k.Parameters["crf.transitions"]);
            for (int x = 0; x < c * c; x++)
                if (!constraints.AllowedTransitions[x]) transitions[x] = 50f;
            var decoded = new int[k.Batch.TotalSteps];
            k.Crf.Decode(k.Batch, k.Emissions, decoded);
            for (int i = 0; i < k.Batch.BatchSize; i++)
                Assert.AreEqual(-1, constraints.FirstViolation(SequenceTags(k.Batch, decoded, i)), $"round {round}, sequence {i}");
        }
    }

    [TestMethod]
    public void BioConstraintsOnARealTagSet()
    {
        var constraints = CrfConstraints.ForBio(BioTags); // O, B-PER, I-PER, B-LOC, I-LOC
        AssertMask("11010", constraints.AllowedStart, "start");
        AssertMask("11111", constraints.AllowedEnd, "end");
        AssertMask(
            "11010" + // from O: O, B-x, never I-x
            "11110" + // from B-PER: also I-PER
            "11110" + // from I-PER
            "11011" + // from B-LOC: also I-LOC
            "11011",  // from I-LOC
            constraints.AllowedTransitions, "transitions");
        // Prefixes in either case and "_" after them give the same constraints; so does ForScheme.
        var lower = CrfConstraints.ForBio(["o", "b-PER", "i_PER", "B_LOC", "i-LOC"]);
        CollectionAssert.AreEqual(constraints.AllowedTransitions.ToArray(), lower.AllowedTransitions.ToArray());
        CollectionAssert.AreEqual(constraints.AllowedTransitions.ToArray(), CrfConstraints.ForScheme("iob2", BioTags).AllowedTransitions.ToArray());
        Assert.AreEqual(-1, constraints.FirstViolation([0, 1, 2, 2, 0, 3, 4]));
        Assert.AreEqual(1, constraints.FirstViolation([0, 2]), "O → I-PER");
        Assert.AreEqual(0, constraints.FirstViolation([4]), "I-LOC cannot start");
        Assert.AreEqual(2, constraints.FirstViolation([1, 2, 4]), "I-PER → I-LOC");
    }

    [TestMethod]
    public void IobesConstraintsOnARealTagSet()
    {
        var constraints = CrfConstraints.ForIobes(IobesTags); // O, B-PER, I-PER, E-PER, S-PER, B-LOC, I-LOC, E-LOC, S-LOC
        AssertMask("110011001", constraints.AllowedStart, "start");
        AssertMask("100110011", constraints.AllowedEnd, "end");
        AssertMask(
            "110011001" + // from O: O, B-x, S-x
            "001100000" + // from B-PER: I-PER, E-PER
            "001100000" + // from I-PER
            "110011001" + // from E-PER: as O
            "110011001" + // from S-PER
            "000000110" + // from B-LOC: I-LOC, E-LOC
            "000000110" + // from I-LOC
            "110011001" + // from E-LOC
            "110011001",  // from S-LOC
            constraints.AllowedTransitions, "transitions");
        // BILOU spelling (U = S, L = E) is the same scheme.
        var bilou = CrfConstraints.ForScheme("BILOU", ["O", "B-PER", "I-PER", "L-PER", "U-PER", "B-LOC", "I-LOC", "L-LOC", "U-LOC"]);
        CollectionAssert.AreEqual(constraints.AllowedTransitions.ToArray(), bilou.AllowedTransitions.ToArray());
        CollectionAssert.AreEqual(constraints.AllowedEnd.ToArray(), bilou.AllowedEnd.ToArray());
        Assert.AreEqual(-1, constraints.FirstViolation([1, 2, 3]), "B-PER I-PER E-PER");
        Assert.AreEqual(-1, constraints.FirstViolation([1, 2, 3, 0, 8]));
        Assert.AreEqual(3, constraints.FirstViolation([1, 2, 2]), "cannot end inside an entity");
        Assert.IsTrue(CrfConstraints.None(3).AllowsEverything);
        Assert.IsTrue(CrfConstraints.ForScheme("none", BioTags).AllowsEverything);
    }

    private static void AssertMask(string expected, ReadOnlySpan<bool> actual, string what)
    {
        Assert.AreEqual(expected.Length, actual.Length, what);
        for (int i = 0; i < expected.Length; i++)
            Assert.AreEqual(expected[i] == '1', actual[i], $"{what}[{i}]");
    }

    [TestMethod]
    [DataRow("BIO", "PER")]
    [DataRow("BIO", "B-")]
    [DataRow("BIO", "X-PER")]
    [DataRow("BIO", "S-PER")]
    [DataRow("BIO", "")]
    [DataRow("IOBES", "BPER")]
    [DataRow("IOBES", "O-PER")]
    public void MalformedTagsAreRejectedByName(string scheme, string bad)
    {
        string[] tags = ["O", "B-PER", bad, "I-PER"];
        var e = Assert.ThrowsExactly<ArgumentException>(() => CrfConstraints.ForScheme(scheme, tags));
        StringAssert.Contains(e.Message, $"'{bad}'");
        StringAssert.Contains(e.Message, "Tag 2");
    }

    [TestMethod]
    public void UnknownSchemesAreRejectedByName()
    {
        var e = Assert.ThrowsExactly<ArgumentException>(() => CrfConstraints.ForScheme("IOB3", BioTags));
        StringAssert.Contains(e.Message, "'IOB3'");
        Assert.ThrowsExactly<ArgumentException>(() => new CrfConstraints([true, true], [true], [true, true, true, true]));
        Assert.ThrowsExactly<ArgumentException>(() => new LinearChainCrf(new ParameterSet(), "crf.", 4, CrfConstraints.ForBio(BioTags)));
    }

    /// <summary>
    /// A gold path the constraints forbid (here O → I-PER, as IOB1 data would have) is an error naming the sequence
    /// (caller's order) and step, raised before anything is written.
    /// </summary>
    [TestMethod]
    public void GoldPathsTheConstraintsForbidAreRejected()
    {
        var k = Make(Lengths, BioTags.Length, CrfConstraints.ForBio(BioTags), seed: 3);
        var tags = (int[])k.Tags.Clone();
        int j = k.Batch.Order.IndexOf(1); // sequence 1 (length 5)
        tags[k.Batch.Row(2, j)] = 0; // O
        tags[k.Batch.Row(3, j)] = 2; // I-PER after O
        var dEmissions = new float[k.Emissions.Length];
        dEmissions.AsSpan().Fill(7f);
        k.Parameters.ZeroGradients();
        var e = Assert.ThrowsExactly<ArgumentException>(() => k.Crf.Forward(k.Batch, k.Emissions, tags, dEmissions, 1f));
        StringAssert.Contains(e.Message, "Sequence 1");
        StringAssert.Contains(e.Message, "step 3");
        Assert.IsTrue(dEmissions.All(v => v == 7f), "dEmissions untouched");
        Assert.IsTrue(k.Parameters.Gradients.All(v => v == 0f), "gradients untouched");

        // A first tag that may not start, and a tag out of range.
        tags = (int[])k.Tags.Clone();
        tags[k.Batch.Row(0, k.Batch.Order.IndexOf(2))] = 4; // sequence 2 (length 1) starts with I-LOC
        e = Assert.ThrowsExactly<ArgumentException>(() => k.Crf.Forward(k.Batch, k.Emissions, tags, dEmissions, 1f));
        StringAssert.Contains(e.Message, "Sequence 2 starts");
        tags[k.Batch.Row(0, k.Batch.Order.IndexOf(2))] = 5;
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => k.Crf.Forward(k.Batch, k.Emissions, tags, dEmissions, 1f));
    }

    /// <summary>
    /// IOBES over B-PER, I-PER, E-PER only: no path of length 1 exists (it would need O or S-PER). Such a sequence is
    /// decoded, and its marginals computed, without the constraints; the others keep them.
    /// </summary>
    [TestMethod]
    public void SequencesWithNoAllowedPathFallBackToTheUnconstrainedModel()
    {
        string[] tagNames = ["B-PER", "I-PER", "E-PER"];
        var constraints = CrfConstraints.ForIobes(tagNames);
        var batch = new RaggedBatch([1, 4, 2]);
        var parameters = new ParameterSet();
        var crf = new LinearChainCrf(parameters, "crf.", 3, constraints);
        parameters.Allocate();
        var random = new SeededRandom(12);
        random.FillUniform(parameters.Values, -1f, 1f);
        var emissions = new float[batch.TotalSteps * 3];
        random.FillUniform(emissions, -2f, 2f);
        float[] start = parameters.Value(parameters["crf.start_transitions"]).ToArray(), end = parameters.Value(parameters["crf.end_transitions"]).ToArray();
        float[] transitions = parameters.Value(parameters["crf.transitions"]).ToArray();

        var decoded = new int[batch.TotalSteps];
        crf.Decode(batch, emissions, decoded);
        var probabilities = new float[emissions.Length];
        crf.Marginals(batch, emissions, probabilities);
        Assert.IsTrue(probabilities.All(float.IsFinite));
        for (int i = 0; i < 3; i++)
        {
            var e = SequenceRows(batch, emissions, 3, i);
            bool possible = batch.Lengths[i] >= 2;
            var r = BruteForce(3, e, start, end, transitions, possible ? constraints : null);
            CollectionAssert.AreEqual(r.Best, SequenceTags(batch, decoded, i), $"sequence {i}");
            AssertClose(r.Marginals, SequenceRows(batch, probabilities, 3, i), 1e-6, 1e-5, $"marginals of sequence {i}");
            if (possible)
                Assert.AreEqual(-1, constraints.FirstViolation(SequenceTags(batch, decoded, i)));
        }
    }

    [TestMethod]
    public void ParameterGradientsAccumulateAndEmissionGradientsAreOverwritten()
    {
        var k = Make(Lengths, 4, null, seed: 9);
        var first = new float[k.Emissions.Length];
        var second = new float[k.Emissions.Length];
        second.AsSpan().Fill(100f);
        k.Parameters.ZeroGradients();
        float loss1 = k.Crf.Forward(k.Batch, k.Emissions, k.Tags, first, 0.25f);
        var once = k.Parameters.Gradients.ToArray();
        float loss2 = k.Crf.Forward(k.Batch, k.Emissions, k.Tags, second, 0.25f);
        Assert.AreEqual(loss1, loss2);
        CollectionAssert.AreEqual(first, second, "dEmissions is overwritten, not added to");
        for (int i = 0; i < once.Length; i++)
            Assert.AreEqual(2 * once[i], k.Parameters.Gradients[i], 1e-6f, $"gradient {i} accumulates");
    }

    /// <summary>The gradient and the marginals may be written over the emissions themselves.</summary>
    [TestMethod]
    [DataRow("none")]
    [DataRow("bio")]
    public void OutputsMayReplaceTheEmissions(string scheme)
    {
        var k = Make(Lengths, TagCount(scheme, 4), Constraints(scheme), seed: 19);
        var dEmissions = new float[k.Emissions.Length];
        k.Parameters.ZeroGradients();
        float loss = k.Crf.Forward(k.Batch, k.Emissions, k.Tags, dEmissions, 0.5f);
        var parameterGradients = k.Parameters.Gradients.ToArray();
        var probabilities = new float[k.Emissions.Length];
        k.Crf.Marginals(k.Batch, k.Emissions, probabilities);

        var inPlace = (float[])k.Emissions.Clone();
        k.Parameters.ZeroGradients();
        Assert.AreEqual(loss, k.Crf.Forward(k.Batch, inPlace, k.Tags, inPlace, 0.5f));
        CollectionAssert.AreEqual(dEmissions, inPlace, "dEmissions over the emissions");
        CollectionAssert.AreEqual(parameterGradients, k.Parameters.Gradients, "parameter gradients");
        inPlace = (float[])k.Emissions.Clone();
        k.Crf.Marginals(k.Batch, inPlace, inPlace);
        CollectionAssert.AreEqual(probabilities, inPlace, "marginals over the emissions");
    }

    [TestMethod]
    public void InitializationAndNamesFollowPytorchCrf()
    {
        var parameters = new ParameterSet();
        var crf = new LinearChainCrf(parameters, "crf.", 6);
        parameters.Allocate();
        crf.Initialize(new SeededRandom(1));
        CollectionAssert.AreEqual(new[] { "crf.start_transitions", "crf.end_transitions", "crf.transitions" }, parameters.Parameters.Select(p => p.Name).ToArray());
        CollectionAssert.AreEqual(new[] { 6, 6 }, parameters["crf.transitions"].Shape);
        Assert.IsTrue(parameters.Values.All(v => v >= -0.1f && v < 0.1f));
        Assert.IsTrue(parameters.Values.Distinct().Count() > 40);
        Assert.IsNull(new LinearChainCrf(new ParameterSet(), "", 3, CrfConstraints.None(3)).Constraints, "constraints that allow everything are dropped");
    }

    /// <summary>Steady state (B = 32, T = 25, C = 45, with and without constraints): Forward, Decode and Marginals allocate 0 bytes.</summary>
    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void SteadyStateAllocatesNothing(bool constrained)
    {
        const int c = 45;
        CrfConstraints? constraints = null;
        if (constrained)
        {
            var names = new List<string> { "O" };
            for (int x = 0; names.Count < c; x++) { names.Add($"B-T{x}"); names.Add($"I-T{x}"); }
            constraints = CrfConstraints.ForBio(names.Take(c).ToList());
        }
        var random = new SeededRandom(2);
        var lengths = Enumerable.Range(0, 32).Select(_ => 1 + random.NextInt(25)).ToArray();
        lengths[0] = 25;
        var k = Make(lengths, c, constraints, seed: 77, emissionRange: 4f, parameterRange: 1f);
        var dEmissions = new float[k.Emissions.Length];
        var decoded = new int[k.Batch.TotalSteps];
        var probabilities = new float[k.Emissions.Length];
        // A smaller batch in between: the buffers only grow.
        var small = Make([3, 2], c, constraints, seed: 78);
        for (int warm = 0; warm < 3; warm++)
        {
            k.Crf.Forward(k.Batch, k.Emissions, k.Tags, dEmissions, 1f);
            k.Crf.Decode(k.Batch, k.Emissions, decoded);
            k.Crf.Marginals(k.Batch, k.Emissions, probabilities);
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 5; i++)
        {
            k.Crf.Forward(k.Batch, k.Emissions, k.Tags, dEmissions, 1f);
            k.Crf.Decode(k.Batch, k.Emissions, decoded);
            k.Crf.Marginals(k.Batch, k.Emissions, probabilities);
            k.Crf.Forward(small.Batch, small.Emissions, small.Tags, dEmissions, 1f);
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.AreEqual(0L, allocated, "bytes allocated by 5 × (Forward, Decode, Marginals) in steady state");
    }
}
