using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TorchParity;

/// <summary>
/// Language-model fixtures: one stateful truncated-BPTT step, as PyTorch's word_language_model example takes it.
/// Embedding → 2-layer LSTM/GRU (batch_first) → Linear over the vocabulary (or the embedding, tied). Chunk 1 runs from
/// zero states; its final states, detached, are chunk 2's initial states; the loss is chunk 2's mean cross-entropy.
/// </summary>
internal static class LanguageModel
{
    private const int Batch = 3, Layers = 2, Chunk1 = 4, Chunk2 = 3;
    private const float Bound = 0.5f;

    /// <summary>One fixture. With <paramref name="tied"/>, logits = y·embedding.weightᵀ + head.bias (needs H = E).</summary>
    public static JObj Fixture(string cell, bool tied, int vocab, int embed, int hidden, long seed)
    {
        if (tied && hidden != embed)
        {
            throw new ArgumentException("weight tying needs H == E");
        }

        bool lstm = cell == "lstm";
        string tag = $"lm_{cell}" + (tied ? "_tied" : "_tbptt");

        torch.manual_seed(seed);
        Embedding emb = nn.Embedding(vocab, embed);
        nn.Module rnn = lstm
            ? nn.LSTM(embed, hidden, Layers, bias: true, batchFirst: true, dropout: 0, bidirectional: false)
            : nn.GRU(embed, hidden, Layers, bias: true, batchFirst: true, dropout: 0, bidirectional: false);
        Linear? lin = tied ? null : nn.Linear(hidden, vocab);
        Parameter? tiedBias = tied ? new Parameter(zeros(vocab)) : null;
        Recurrent.InitUniform(emb, Bound);
        Recurrent.InitUniform(rnn, Bound);
        if (lin is not null)
        {
            Recurrent.InitUniform(lin, Bound);
        }
        else
        {
            using var _ = no_grad();
            tiedBias!.copy_(rand(vocab) * (2 * Bound) - Bound);
        }

        // Our names, in our registration order: embedding, rnn, head.
        var parameters = new List<(string Name, Parameter P)>();
        parameters.AddRange(emb.named_parameters().Select(p => ("embedding." + p.name, p.parameter)));
        parameters.AddRange(rnn.named_parameters().Select(p => ("rnn." + p.name, p.parameter)));
        if (lin is not null)
        {
            parameters.AddRange(lin.named_parameters().Select(p => ("head." + p.name, p.parameter)));
        }
        else
        {
            parameters.Add(("head.bias", tiedBias!));
        }

        Tensor embWeight = emb.named_parameters().Single().parameter;
        Tensor ids1 = randint(0, vocab, [Batch, Chunk1]);
        Tensor ids2 = randint(0, vocab, [Batch, Chunk2]);
        Tensor targets = randint(0, vocab, [Batch, Chunk2]);

        (Tensor Output, Tensor H, Tensor? C) Run(Tensor ids, Tensor h0, Tensor? c0)
        {
            Tensor x = emb.call(ids);
            if (rnn is LSTM l)
            {
                var (o, h, c) = l.call(x, (h0, c0!));
                return (o, h, c);
            }

            var (go, gh) = ((GRU)rnn).call(x, h0);
            return (go, gh, null);
        }

        Tensor Decode(Tensor y) => lin is not null ? lin.call(y) : y.matmul(embWeight.t()) + tiedBias!;

        // ---- chunk 1 from zero states, then detach (the gradient stops at the chunk boundary, the state does not) ----
        var (out1, h1Graph, c1Graph) = Run(ids1, zeros(Layers, Batch, hidden), lstm ? zeros(Layers, Batch, hidden) : null);
        Check.Shape(out1, [Batch, Chunk1, hidden], $"{tag}: chunk 1 output");
        Tensor h1 = h1Graph.detach();
        Tensor? c1 = c1Graph?.detach();
        Check.Shape(h1, [Layers, Batch, hidden], $"{tag}: h1");
        Check.That(Check.Same(out1.select(1, Chunk1 - 1), h1[Layers - 1]), $"{tag}: h1 of the last layer != chunk 1's last output");

        // ---- chunk 2 from chunk 1's states; loss = mean cross-entropy over its B·T2 predictions ----
        var (out2, h2, c2) = Run(ids2, h1, c1);
        Check.Shape(out2, [Batch, Chunk2, hidden], $"{tag}: chunk 2 output");
        Check.That(Check.Same(out2.select(1, Chunk2 - 1), h2[Layers - 1]), $"{tag}: h2 of the last layer != chunk 2's last output");
        Tensor logits = Decode(out2);
        Check.Shape(logits, [Batch, Chunk2, vocab], $"{tag}: logits");
        Tensor loss = nn.functional.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1));
        foreach (var (_, p) in parameters)
        {
            p.grad?.zero_();
        }

        loss.backward();
        var grads = parameters.Select(p => (p.Name, Grad: (p.P.grad ?? throw new InvalidOperationException($"{tag}: no grad for {p.Name}")).detach().clone())).ToList();

        // Reference loss: mean of -log_softmax[target] in float64.
        {
            Tensor lsm = nn.functional.log_softmax(logits.detach().to_type(ScalarType.Float64).reshape(-1, vocab), 1);
            long[] y = targets.reshape(-1).data<long>().ToArray();
            double sum = 0;
            for (int i = 0; i < y.Length; i++)
            {
                sum -= lsm[i, y[i]].item<double>();
            }

            Check.Close(loss, tensor(sum / y.Length, ScalarType.Float64), $"{tag}: loss vs reference");
        }

        // ---- independent reference: the cell equations step by step (autograd), chunk 1 without a graph ----
        var named = rnn.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        foreach (var (_, p) in parameters)
        {
            p.grad?.zero_();
        }

        Tensor mh1, mc1;
        using (no_grad())
        {
            (_, mh1, mc1) = Steps(cell, named, embWeight.index_select(0, ids1.reshape(-1)).reshape(Batch, Chunk1, embed),
                zeros(Layers, Batch, hidden), zeros(Layers, Batch, hidden));
        }

        Check.Close(mh1, h1, $"{tag}: h1 vs manual");
        if (lstm)
        {
            Check.Close(mc1, c1!, $"{tag}: c1 vs manual");
        }

        // Chunk 2 of the reference starts from libtorch's own h1/c1 so that only chunk 2's arithmetic is compared.
        var (mo2, mh2, mc2) = Steps(cell, named, embWeight.index_select(0, ids2.reshape(-1)).reshape(Batch, Chunk2, embed),
            h1, lstm ? c1! : zeros(Layers, Batch, hidden));
        Tensor decoderWeight = tied ? embWeight : parameters.Single(p => p.Name == "head.weight").P;
        Tensor mlogits = mo2.matmul(decoderWeight.t()) + parameters.Single(p => p.Name == "head.bias").P;
        Check.Close(mlogits, logits, $"{tag}: logits vs manual");
        Check.Close(mh2, h2, $"{tag}: h2 vs manual");
        if (lstm)
        {
            Check.Close(mc2, c2!, $"{tag}: c2 vs manual");
        }

        Tensor mlsm = nn.functional.log_softmax(mlogits.reshape(-1, vocab), 1);
        Tensor mloss = -mlsm.gather(1, targets.reshape(-1, 1)).mean();
        Check.Close(mloss, loss, $"{tag}: loss vs manual");
        mloss.backward();
        foreach (var ((name, p), (_, g)) in parameters.Zip(grads))
        {
            Check.That(p.grad is not null, $"{tag}: manual grad of {name}");
            Check.Close(p.grad!, g, $"{tag}: grad {name} vs manual");
            Check.That(g.abs().max().item<float>() > 0, $"{tag}: grad {name} is all zero");
        }

        // The carried state matters: chunk 2 from zero states would give clearly different logits.
        using (no_grad())
        {
            var (zeroOut, _, _) = Run(ids2, zeros(Layers, Batch, hidden), lstm ? zeros(Layers, Batch, hidden) : null);
            double effect = (Decode(zeroOut) - logits).abs().max().item<float>();
            Check.That(effect > 1e-3, $"{tag}: chunk 2's logits barely depend on the carried state (max |diff| {effect:G3})");
        }

        // ---- JSON ----
        static List<long[]> Rows(Tensor t) => Enumerable.Range(0, (int)t.shape[0]).Select(i => t[i].data<long>().ToArray()).ToList();
        var json = new JObj()
            .Add("generator", Program.GeneratorName)
            .Add("seed", seed)
            .Add("description", "Embedding -> " + Layers + "-layer " + (lstm ? "LSTM" : "GRU") + " (batch_first) -> "
                + (tied ? "logits = y @ embedding.weight.T + head.bias (tied)" : "Linear")
                + ". Chunk 1 (ids1) from zero states; (h1, c1) = its final states, detached; chunk 2 (ids2) from them;"
                + " loss = mean cross-entropy of chunk 2's logits vs targets2; gradients from chunk 2 only.")
            .Add("cell", cell)
            .Add("vocab_size", vocab)
            .Add("embedding_dim", embed)
            .Add("hidden_size", hidden)
            .Add("num_layers", Layers)
            .Add("tie_weights", tied)
            .Add("batch_size", Batch)
            .Add("ids1", Rows(ids1))
            .Add("ids2", Rows(ids2))
            .Add("targets2", Rows(targets))
            .Add("reduction", "mean");
        var pj = new JObj();
        foreach (var (name, p) in parameters)
        {
            pj.Add(name, JTensor.From(p));
        }

        json.Add("parameters", pj).Add("h1", JTensor.From(h1));
        if (lstm)
        {
            json.Add("c1", JTensor.From(c1!));
        }

        json.Add("logits", JTensor.From(logits)).Add("h2", JTensor.From(h2));
        if (lstm)
        {
            json.Add("c2", JTensor.From(c2!));
        }

        json.Add("loss", loss.item<float>());
        var gj = new JObj();
        foreach (var (name, g) in grads)
        {
            gj.Add(name, JTensor.From(g));
        }

        json.Add("grad_parameters", gj);
        return json;
    }

    /// <summary>
    /// A unidirectional stack run one time step at a time over the whole batch (PyTorch's gate orders: LSTM i,f,g,o;
    /// GRU r,z,n) from h0/c0 [L, B, H]. Returns the top layer's output [B, T, H] and hN/cN [L, B, H] (cN zeros for a GRU).
    /// </summary>
    private static (Tensor Output, Tensor HN, Tensor CN) Steps(string cell, IReadOnlyDictionary<string, Tensor> p, Tensor x, Tensor h0, Tensor c0)
    {
        long steps = x.shape[1];
        var hn = new Tensor[Layers];
        var cn = new Tensor[Layers];
        Tensor seq = x;
        for (int l = 0; l < Layers; l++)
        {
            Tensor wih = p[$"weight_ih_l{l}"], whh = p[$"weight_hh_l{l}"], bih = p[$"bias_ih_l{l}"], bhh = p[$"bias_hh_l{l}"];
            Tensor h = h0[l], c = c0[l];
            var outs = new Tensor[steps];
            for (int t = 0; t < steps; t++)
            {
                Tensor gi = seq.select(1, t).matmul(wih.t()) + bih;
                Tensor gh = h.matmul(whh.t()) + bhh;
                if (cell == "lstm")
                {
                    Tensor[] g = (gi + gh).chunk(4, 1);
                    c = (sigmoid(g[1]) * c) + (sigmoid(g[0]) * tanh(g[2]));
                    h = sigmoid(g[3]) * tanh(c);
                }
                else
                {
                    Tensor[] a = gi.chunk(3, 1), r = gh.chunk(3, 1);
                    Tensor rr = sigmoid(a[0] + r[0]);
                    Tensor z = sigmoid(a[1] + r[1]);
                    Tensor n = tanh(a[2] + (rr * r[2]));
                    h = ((1 - z) * n) + (z * h);
                }

                outs[t] = h;
            }

            seq = stack(outs, 1);
            hn[l] = h;
            cn[l] = c;
        }

        return (seq, stack(hn), stack(cn));
    }
}
