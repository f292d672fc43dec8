using Microsoft.ML.Recurrent.Core;

namespace Microsoft.ML.Recurrent.Generation;

/// <summary>
/// Draws the next token from a language model's logits: softmax at a temperature, restricted to the
/// <c>topK</c> most likely tokens and then to the smallest set of them whose probabilities reach <c>topP</c>
/// (nucleus sampling, Holtzman et al. 2020), renormalized. Temperature 0 is greedy (the most likely token, the
/// lowest id on a tie). The draw uses one value of the given random stream, so a seed reproduces a generation.
/// </summary>
internal sealed class TokenSampler
{
    private float[] _probabilities = [];
    private int[] _order = [];

    /// <summary>Temperature: logits are divided by it; 0 = greedy.</summary>
    public float Temperature { get; }

    /// <summary>Only the k most likely tokens may be drawn; 0 = no limit.</summary>
    public int TopK { get; }

    /// <summary>Only the most likely tokens whose probabilities first reach this total may be drawn; 1 = no limit.</summary>
    public float TopP { get; }

    /// <exception cref="ArgumentOutOfRangeException">Temperature negative or not finite, top-k negative, top-p outside (0, 1].</exception>
    public TokenSampler(float temperature, int topK, float topP)
    {
        if (!(temperature >= 0) || !float.IsFinite(temperature))
            throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "The temperature must be a finite value ≥ 0 (0 = greedy).");
        if (topK < 0)
            throw new ArgumentOutOfRangeException(nameof(topK), topK, "Top-k must be ≥ 0 (0 = no limit).");
        if (!(topP > 0 && topP <= 1))
            throw new ArgumentOutOfRangeException(nameof(topP), topP, "Top-p must be in (0, 1] (1 = no limit).");
        Temperature = temperature;
        TopK = topK;
        TopP = topP;
    }

    /// <summary>
    /// The probabilities [V] the next draw uses (zero outside the allowed set, summing to 1), written to
    /// <paramref name="probabilities"/>; for tests and for callers that want to look before drawing.
    /// Tokens whose logit is not finite are never drawn; if no logit is finite, token 0 gets probability 1.
    /// </summary>
    public void Distribution(ReadOnlySpan<float> logits, Span<float> probabilities)
    {
        int v = logits.Length;
        if (Temperature == 0)
        {
            probabilities.Slice(0, v).Clear();
            probabilities[Greedy(logits)] = 1;
            return;
        }
        float max = float.NegativeInfinity;
        foreach (float z in logits)
            if (float.IsFinite(z) && z > max) max = z;
        if (float.IsNegativeInfinity(max))
        {
            probabilities.Slice(0, v).Clear();
            probabilities[0] = 1;
            return;
        }
        double sum = 0;
        for (int i = 0; i < v; i++)
        {
            float p = float.IsFinite(logits[i]) ? MathF.Exp((logits[i] - max) / Temperature) : 0f;
            probabilities[i] = p;
            sum += p;
        }
        for (int i = 0; i < v; i++)
            probabilities[i] = (float)(probabilities[i] / sum);
        bool limitK = TopK > 0 && TopK < v;
        if (!limitK && TopP >= 1)
            return;
        // Most likely first (ties: lower id first), then keep the first k and the shortest prefix reaching p.
        var order = Workspace.Ensure(ref _order, v);
        for (int i = 0; i < v; i++) order[i] = i;
        var copy = Workspace.Ensure(ref _probabilities, v);
        probabilities.Slice(0, v).CopyTo(copy);
        _comparer.Probabilities = _probabilities;
        Array.Sort(_order, 0, v, _comparer);
        int keep = limitK ? TopK : v;
        if (TopP < 1)
        {
            double cumulative = 0;
            for (int i = 0; i < keep; i++)
            {
                cumulative += probabilities[order[i]];
                if (cumulative >= TopP)
                {
                    keep = i + 1;
                    break;
                }
            }
        }
        double kept = 0;
        for (int i = 0; i < keep; i++) kept += probabilities[order[i]];
        copy.Clear();
        for (int i = 0; i < keep; i++) copy[order[i]] = (float)(probabilities[order[i]] / kept);
        copy.CopyTo(probabilities);
    }

    /// <summary>Draws a token id from <paramref name="logits"/> [V] with one value of <paramref name="random"/> (none when greedy).</summary>
    public int Sample(ReadOnlySpan<float> logits, SeededRandom random, Span<float> scratch)
    {
        if (Temperature == 0)
            return Greedy(logits);
        int v = logits.Length;
        Distribution(logits, scratch);
        double u = random.NextSingle(), cumulative = 0;
        int last = 0;
        for (int i = 0; i < v; i++)
        {
            if (scratch[i] <= 0) continue;
            cumulative += scratch[i];
            last = i;
            if (u < cumulative) return i;
        }
        return last; // rounding left u just above the total
    }

    private static int Greedy(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
            if (logits[i] > logits[best] || float.IsNaN(logits[best])) best = i;
        return best;
    }

    private readonly ByProbability _comparer = new();

    /// <summary>Token ids by larger probability first, then lower id: a total order, so the result never depends on the sort.</summary>
    private sealed class ByProbability : IComparer<int>
    {
        public float[] Probabilities = [];

        public int Compare(int a, int b)
        {
            int c = Probabilities[b].CompareTo(Probabilities[a]);
            return c != 0 ? c : a.CompareTo(b);
        }
    }
}
