using TorchSharp;
using static TorchSharp.torch;

namespace TorchParity;

/// <summary>
/// CRF fixtures: the negative log-likelihood of a linear-chain CRF exactly as pytorch-crf computes it (batch-first,
/// masked: the forward algorithm with <c>torch.logsumexp</c>, the gold score by indexing), reduction 'sum', on a ragged,
/// unsorted batch; gradients by autograd. Optionally with AllenNLP's BIO constraints applied as −∞ (masked_fill) to
/// the start, end and transition scores.
/// </summary>
internal static class Crf
{
    public static readonly int[] Lengths = [4, 1, 7, 2, 5];
    public static readonly string[] BioTags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"];
    private const int C = 5;

    public static JObj Fixture(bool bio, long seed)
    {
        int[] lengths = Lengths;
        int b = lengths.Length, T = lengths.Max();
        string tag = bio ? "crf_bio" : "crf";
        var (allowedStart, allowedEnd, allowedTransitions) = bio ? BioMasks() : AllowAll();

        torch.manual_seed(seed);
        Tensor mask = Recurrent.Mask(lengths, T); // [B, T] 1 at real steps
        Tensor emissions = (randn(b, T, C) * 2f).masked_fill(mask.eq(0).unsqueeze(2), 0f).requires_grad_(true);
        Tensor start = ((rand(C) * 2f) - 1f).requires_grad_(true);       // U(-1, 1): far from pytorch-crf's ±0.1,
        Tensor end = ((rand(C) * 2f) - 1f).requires_grad_(true);         // so the transitions matter
        Tensor transitions = ((rand(C, C) * 2f) - 1f).requires_grad_(true);

        // Gold tags: at each step a uniform draw, redrawn until the constraints allow it there.
        var tags = new long[b][];
        for (int i = 0; i < b; i++)
        {
            tags[i] = new long[T]; // padded with 0 (never read)
            for (int t = 0; t < lengths[i]; t++)
            {
                while (true)
                {
                    long y = randint(0, C, [1]).item<long>();
                    bool ok = t == 0 ? allowedStart[y] : allowedTransitions[(tags[i][t - 1] * C) + y];
                    if (t == lengths[i] - 1)
                    {
                        ok &= allowedEnd[y];
                    }

                    if (ok)
                    {
                        tags[i][t] = y;
                        break;
                    }
                }
            }
        }

        // Constraints as −∞ scores (masked_fill: the masked entries get no gradient).
        Tensor startScores = start.masked_fill(tensor(allowedStart.Select(a => !a).ToArray()), float.NegativeInfinity);
        Tensor endScores = end.masked_fill(tensor(allowedEnd.Select(a => !a).ToArray()), float.NegativeInfinity);
        Tensor transitionScores = transitions.masked_fill(tensor(allowedTransitions.Select(a => !a).ToArray(), [C, C]), float.NegativeInfinity);

        // pytorch-crf _compute_normalizer (batch-first): score [B, C]; a step past a sequence's end keeps its score.
        Tensor running = startScores.unsqueeze(0) + emissions.select(1, 0);
        Tensor real = mask.gt(0);
        for (int t = 1; t < T; t++)
        {
            Tensor next = logsumexp(running.unsqueeze(2) + transitionScores.unsqueeze(0) + emissions.select(1, t).unsqueeze(1), 1);
            running = where(real.select(1, t).unsqueeze(1), next, running);
        }

        Tensor logZ = logsumexp(running + endScores.unsqueeze(0), 1); // [B]

        // pytorch-crf _compute_score: start[y0] + e[0, y0] + Σ (transitions[y_{t-1}, y_t] + e[t, y_t]) + end[y_last].
        var gold = new Tensor[b];
        for (int i = 0; i < b; i++)
        {
            long[] y = tags[i];
            Tensor s = start[y[0]] + emissions[i, 0, y[0]];
            for (int t = 1; t < lengths[i]; t++)
            {
                s = s + transitions[y[t - 1], y[t]] + emissions[i, t, y[t]];
            }

            gold[i] = s + end[y[lengths[i] - 1]];
        }

        Tensor nll = logZ - stack(gold); // [B]
        Tensor loss = nll.sum();
        loss.backward();
        Tensor gradEmissions = emissions.grad ?? throw new InvalidOperationException("no grad for the emissions");

        // ---- sanity checks against a brute force over every tag path, in double ----
        Check.PaddedZero(gradEmissions, lengths, $"{tag}: grad_emissions");
        var reference = BruteForce(emissions, start, end, transitions, tags, lengths, allowedStart, allowedEnd, allowedTransitions);
        Check.Close(nll, tensor(reference.Nll), $"{tag}: nll vs brute force");
        Check.Close(gradEmissions, tensor(reference.DEmissions, [b, T, C]), $"{tag}: grad_emissions vs brute force");
        Check.Close(start.grad!, tensor(reference.DStart), $"{tag}: grad start_transitions vs brute force");
        Check.Close(end.grad!, tensor(reference.DEnd), $"{tag}: grad end_transitions vs brute force");
        Check.Close(transitions.grad!, tensor(reference.DTransitions, [C, C]), $"{tag}: grad transitions vs brute force");
        for (int x = 0; x < C * C; x++)
        {
            Check.That(allowedTransitions[x] || transitions.grad![x / C, x % C].item<float>() == 0f, $"{tag}: a disallowed transition has a gradient");
        }

        var json = new JObj()
            .Add("generator", Program.GeneratorName)
            .Add("seed", seed)
            .Add("description", "Linear-chain CRF negative log-likelihood as pytorch-crf (batch_first, mask, reduction='sum'): "
                + "log Z by the forward algorithm with torch.logsumexp minus the gold path score; "
                + (bio ? "AllenNLP's BIO constraints as -inf (masked_fill) on start, end and transition scores; " : string.Empty)
                + "gradients by autograd. Emissions and grad_emissions are batch-first and padded (0 beyond each length).")
            .Add("num_tags", C)
            .Add("constraints", bio ? "bio" : "none");
        if (bio)
        {
            json.Add("tags", BioTags)
                .Add("allowed_start", allowedStart.Select(a => a ? 1 : 0).ToArray())
                .Add("allowed_end", allowedEnd.Select(a => a ? 1 : 0).ToArray())
                .Add("allowed_transitions", allowedTransitions.Select(a => a ? 1 : 0).ToArray());
        }

        json.Add("batch_size", b)
            .Add("max_length", T)
            .Add("lengths", lengths)
            .Add("tag_ids", tags.ToList())
            .Add("emissions", JTensor.From(emissions))
            .Add("parameters", new JObj()
                .Add("start_transitions", JTensor.From(start))
                .Add("end_transitions", JTensor.From(end))
                .Add("transitions", JTensor.From(transitions)))
            .Add("reduction", "sum")
            .Add("nll", JTensor.From(nll))
            .Add("loss", loss.item<float>())
            .Add("grad_emissions", JTensor.From(gradEmissions))
            .Add("grad_parameters", new JObj()
                .Add("start_transitions", JTensor.From(start.grad!))
                .Add("end_transitions", JTensor.From(end.grad!))
                .Add("transitions", JTensor.From(transitions.grad!)));
        return json;
    }

    private static (bool[] Start, bool[] End, bool[] Transitions) AllowAll() =>
        (Enumerable.Repeat(true, C).ToArray(), Enumerable.Repeat(true, C).ToArray(), Enumerable.Repeat(true, C * C).ToArray());

    /// <summary>AllenNLP's allowed_transitions("BIO", ...): start O or B-x; any end; I-x only after B-x or I-x of the same x.</summary>
    private static (bool[] Start, bool[] End, bool[] Transitions) BioMasks()
    {
        var start = new bool[C];
        var end = new bool[C];
        var transitions = new bool[C * C];
        for (int i = 0; i < C; i++)
        {
            string from = BioTags[i];
            start[i] = from[0] is 'O' or 'B';
            end[i] = true;
            for (int j = 0; j < C; j++)
            {
                string to = BioTags[j];
                transitions[(i * C) + j] = to[0] is 'O' or 'B' || (to[0] == 'I' && from[0] is 'B' or 'I' && from[1..] == to[1..]);
            }
        }

        return (start, end, transitions);
    }

    private sealed record Reference(double[] Nll, double[] DEmissions, double[] DStart, double[] DEnd, double[] DTransitions);

    /// <summary>−log p and its gradients from every one of the C^L paths of each sequence, in double.</summary>
    private static Reference BruteForce(Tensor emissions, Tensor start, Tensor end, Tensor transitions, long[][] tags, int[] lengths,
        bool[] allowedStart, bool[] allowedEnd, bool[] allowedTransitions)
    {
        int b = lengths.Length, T = lengths.Max();
        double[] e = emissions.detach().to_type(ScalarType.Float64).data<double>().ToArray(); // [B, T, C]
        double[] st = start.detach().to_type(ScalarType.Float64).data<double>().ToArray();
        double[] en = end.detach().to_type(ScalarType.Float64).data<double>().ToArray();
        double[] tr = transitions.detach().to_type(ScalarType.Float64).data<double>().ToArray();
        var nll = new double[b];
        var dEmissions = new double[b * T * C];
        var dStart = new double[C];
        var dEnd = new double[C];
        var dTransitions = new double[C * C];
        for (int i = 0; i < b; i++)
        {
            int length = lengths[i];
            int count = (int)Math.Pow(C, length);
            var scores = new double[count];
            var path = new int[length];
            double Score()
            {
                if (!allowedStart[path[0]] || !allowedEnd[path[length - 1]])
                {
                    return double.NegativeInfinity;
                }

                double s = st[path[0]] + e[(i * T * C) + path[0]];
                for (int t = 1; t < length; t++)
                {
                    if (!allowedTransitions[(path[t - 1] * C) + path[t]])
                    {
                        return double.NegativeInfinity;
                    }

                    s += tr[(path[t - 1] * C) + path[t]] + e[(((i * T) + t) * C) + path[t]];
                }

                return s + en[path[length - 1]];
            }

            void Decompose(int p)
            {
                for (int t = length - 1; t >= 0; t--)
                {
                    path[t] = p % C;
                    p /= C;
                }
            }

            double max = double.NegativeInfinity;
            for (int p = 0; p < count; p++)
            {
                Decompose(p);
                scores[p] = Score();
                max = Math.Max(max, scores[p]);
            }

            double sum = scores.Sum(s => Math.Exp(s - max));
            double logZ = max + Math.Log(sum);
            for (int t = 0; t < length; t++)
            {
                path[t] = (int)tags[i][t];
            }

            nll[i] = logZ - Score();

            // d(−log p)/dθ = E_p[features] − features(gold).
            for (int p = 0; p < count; p++)
            {
                double probability = Math.Exp(scores[p] - logZ);
                Decompose(p);
                dStart[path[0]] += probability;
                dEnd[path[length - 1]] += probability;
                for (int t = 0; t < length; t++)
                {
                    dEmissions[(((i * T) + t) * C) + path[t]] += probability;
                    if (t > 0)
                    {
                        dTransitions[(path[t - 1] * C) + path[t]] += probability;
                    }
                }
            }

            long[] y = tags[i];
            dStart[y[0]] -= 1;
            dEnd[y[length - 1]] -= 1;
            for (int t = 0; t < length; t++)
            {
                dEmissions[(((i * T) + t) * C) + y[t]] -= 1;
                if (t > 0)
                {
                    dTransitions[(y[t - 1] * C) + y[t]] -= 1;
                }
            }
        }

        return new Reference(nll, dEmissions, dStart, dEnd, dTransitions);
    }
}
