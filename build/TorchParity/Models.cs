using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TorchParity;

/// <summary>Whole-model fixtures: Embedding → 2-layer bidirectional RNN (packed, unsorted) → head → Linear → cross-entropy.</summary>
internal static class Models
{
    private const int Vocab = 11, Embed = 5, Hidden = 4, Layers = 2, Classes = 3, T = 6;
    private static readonly long[] Labels = [2, 0, 1, 2];

    public static JObj BiLstmClassifier(long seed) => Build("lstm", "last_hidden", seed, classWeights: [0.5f, 1.0f, 2.0f]);

    public static JObj BiGruMeanMax(long seed) => Build("gru", "mean_max", seed, classWeights: null);

    private static JObj Build(string cell, string head, long seed, float[]? classWeights)
    {
        int[] lengths = Recurrent.Lengths;
        int b = lengths.Length, d = 2;
        string tag = $"model_{cell}_{head}";

        torch.manual_seed(seed);
        Embedding emb = nn.Embedding(Vocab, Embed);
        Recurrent.Rnn rnn = Recurrent.Create(cell, Embed, Hidden, Layers, bidirectional: true);
        int featureSize = head == "last_hidden" ? d * Hidden : 2 * d * Hidden;
        Linear lin = nn.Linear(featureSize, Classes);
        Recurrent.InitUniform(emb);
        Recurrent.InitUniform(rnn.Module);
        Recurrent.InitUniform(lin);

        var parameters = new List<(string Name, Parameter P)>();
        parameters.AddRange(emb.named_parameters().Select(p => ("embedding." + p.name, p.parameter)));
        parameters.AddRange(rnn.Module.named_parameters().Select(p => ((cell == "lstm" ? "lstm." : "gru.") + p.name, p.parameter)));
        parameters.AddRange(lin.named_parameters().Select(p => ("linear." + p.name, p.parameter)));

        Tensor mask = Recurrent.Mask(lengths, T);
        Tensor ids = randint(0, Vocab, [b, T]) * mask.to_type(ScalarType.Int64); // padding id 0 (never read: packed away)
        Tensor labels = tensor(Labels);
        Tensor? weights = classWeights is null ? null : tensor(classWeights);

        Tensor embedded = emb.call(ids);
        var (output, hn, _) = Recurrent.RunPadded(rnn, embedded, lengths, T);
        Check.PaddedZero(output, lengths, $"{tag}: rnn output");
        Check.LastStepMatchesHN(output, hn, lengths, Layers, d, Hidden, tag);

        Tensor features;
        if (head == "last_hidden")
        {
            // h_n of the last layer: forward at index (L-1)·D, reverse at (L-1)·D + 1.
            features = cat([hn[(Layers - 1) * d], hn[((Layers - 1) * d) + 1]], 1);
        }
        else
        {
            Tensor lens = tensor(lengths.Select(x => (float)x).ToArray()).unsqueeze(1);
            Tensor mean = output.sum(1) / lens;
            Tensor padMask = mask.eq(0).unsqueeze(2);
            Tensor max = output.masked_fill(padMask, float.NegativeInfinity).max(1).values;
            features = cat([mean, max], 1);

            // Reference: per sequence over its real steps only.
            for (int i = 0; i < b; i++)
            {
                Tensor real = output.select(0, i).narrow(0, 0, lengths[i]);
                Check.Close(features[i].narrow(0, 0, d * Hidden), real.mean([0]), $"{tag}: mean head of sequence {i}");
                Check.That(Check.Same(features[i].narrow(0, d * Hidden, d * Hidden), real.max(0).values), $"{tag}: max head of sequence {i}");
            }
        }

        Tensor logits = lin.call(features);
        Tensor loss = weights is null
            ? nn.functional.cross_entropy(logits, labels)
            : nn.functional.cross_entropy(logits, labels, weight: weights);
        loss.backward();

        // Reference loss: weighted mean of -log_softmax[label] (weights all 1 when absent), in float64.
        {
            Tensor lsm = nn.functional.log_softmax(logits.detach().to_type(ScalarType.Float64), 1);
            double num = 0, den = 0;
            for (int i = 0; i < b; i++)
            {
                double w = classWeights is null ? 1.0 : classWeights[Labels[i]];
                num += -w * lsm[i, Labels[i]].item<double>();
                den += w;
            }

            Check.Close(loss, tensor(num / den, ScalarType.Float64), $"{tag}: loss vs reference");
        }

        // Reference recurrent pass (no packing) on the same embedded input.
        var named = rnn.Module.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        using (no_grad())
        {
            var (mo, mh, _) = Manual.Forward(cell, named, embedded.detach(), lengths, Layers, true, Hidden, T);
            Check.Close(mo, output, $"{tag}: rnn output vs manual");
            Check.Close(mh, hn, $"{tag}: h_n vs manual");
        }

        foreach (var (name, p) in parameters)
        {
            Check.That(p.grad is not null, $"{tag}: {name} has a gradient");
        }

        var idRows = new List<long[]>();
        for (int i = 0; i < b; i++)
        {
            idRows.Add(ids[i].data<long>().ToArray());
        }

        var json = new JObj()
            .Add("generator", Program.GeneratorName)
            .Add("seed", seed)
            .Add("description", head == "last_hidden"
                ? "Embedding -> 2-layer BiLSTM (packed, unsorted) -> features = cat(h_n[last layer fwd], h_n[last layer reverse]) -> Linear -> weighted CrossEntropy (mean = sum(w_y*nll)/sum(w_y))"
                : "Embedding -> 2-layer BiGRU (packed, unsorted) -> features = cat(mean over real steps, max over real steps) of last-layer output -> Linear -> CrossEntropy (mean)")
            .Add("cell", cell)
            .Add("head", head)
            .Add("vocab_size", Vocab)
            .Add("embedding_dim", Embed)
            .Add("hidden_size", Hidden)
            .Add("num_layers", Layers)
            .Add("bidirectional", true)
            .Add("num_classes", Classes)
            .Add("batch_size", b)
            .Add("max_length", T)
            .Add("lengths", lengths)
            .Add("padding_id", 0)
            .Add("token_ids", idRows)
            .Add("labels", Labels);
        if (classWeights is not null)
        {
            json.Add("class_weights", classWeights);
        }

        json.Add("reduction", "mean");
        var pj = new JObj();
        foreach (var (name, p) in parameters)
        {
            pj.Add(name, JTensor.From(p));
        }

        json.Add("parameters", pj)
            .Add("features", JTensor.From(features))
            .Add("logits", JTensor.From(logits))
            .Add("loss", loss.item<float>());
        var gj = new JObj();
        foreach (var (name, p) in parameters)
        {
            gj.Add(name, JTensor.From(p.grad!));
        }

        json.Add("grad_parameters", gj);
        return json;
    }
}
