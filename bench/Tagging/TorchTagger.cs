using System.Diagnostics;
using System.Globalization;
using Accuracy;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Tagging;

/// <summary>
/// Model (c): the <see cref="TaggerRecipe"/> in libtorch through TorchSharp-cpu. Embedding → dropout →
/// <c>pack_padded_sequence</c> → 1-layer bidirectional <c>nn.LSTM</c> → <c>pad_packed_sequence</c> → the real steps →
/// dropout → <c>nn.Linear</c> → cross-entropy over the batch's real tokens; <c>optim.Adam</c>, <c>clip_grad_norm_</c>;
/// PyTorch's default initialization; after every epoch the dev accuracy decides whether the weights are kept.
/// </summary>
internal sealed class TorchTagger : ITagger
{
    private readonly TaggerRecipe _recipe;
    private Dictionary<string, int> _vocabulary = new(StringComparer.Ordinal);   // word → 1..V; 0 = unknown
    private string[] _tags = [];
    private Embedding? _embedding;
    private LSTM? _lstm;
    private Linear? _head;
    private Dropout? _embeddingDropout, _headDropout;

    public TorchTagger(TaggerRecipe recipe)
    {
        _recipe = recipe;
        TorchNative.Load();
    }

    public string Settings => $"libtorch {__version__} (TorchSharp-cpu): Embedding({_vocabulary.Count + 1},{_recipe.EmbeddingSize}) → Dropout → " +
        $"LSTM({_recipe.EmbeddingSize},{_recipe.HiddenSize}, bidirectional, packed) → Dropout → Linear({2 * _recipe.HiddenSize},{_tags.Length}); {_recipe}";

    public void Train(BrownCorpus corpus, TaggingResult result)
    {
        var r = _recipe;
        result.Threads = r.NumberOfThreads;
        set_num_threads(r.NumberOfThreads);
        manual_seed(r.Seed);
        if (r.BeyondLibTorch) throw new NotSupportedException("sched/warmup/layers are options of our tagger only; the libtorch tagger implements the constant-rate, one-layer recipe");
        if (r.NumberOfLayers != 1 || !r.Bidirectional) throw new NotSupportedException("the libtorch tagger implements the recipe's one bidirectional layer");

        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var s in corpus.Train)
            foreach (var w in s.Words)
                counts[Key(w)] = counts.GetValueOrDefault(Key(w)) + 1;
        _vocabulary = counts.Where(p => p.Value >= r.MinimumTokenFrequency)
            .OrderByDescending(p => p.Value).ThenBy(p => p.Key, StringComparer.Ordinal)
            .Select((p, i) => (p.Key, Id: i + 1)).ToDictionary(p => p.Key, p => p.Id, StringComparer.Ordinal);
        _tags = corpus.Train.SelectMany(s => s.Tags).Distinct().OrderBy(t => t, StringComparer.Ordinal).ToArray();
        var tagIndex = _tags.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => p.i, StringComparer.Ordinal);
        Console.WriteLine($"  vocabulary {_vocabulary.Count:N0} of {counts.Count:N0} {(r.LowerCaseWords ? "lower-cased " : "")}training word forms (+ unknown), {_tags.Length} tags");

        var trainIds = corpus.Train.Select(Ids).ToArray();
        var trainLabels = corpus.Train.Select(s => s.Tags.Select(t => (long)tagIndex[t]).ToArray()).ToArray();
        var trainLengths = trainIds.Select(a => a.Length).ToArray();

        int E = r.EmbeddingSize, H = r.HiddenSize;
        _embedding = nn.Embedding(_vocabulary.Count + 1, E);
        _lstm = nn.LSTM(E, H, numLayers: 1, bias: true, batchFirst: true, bidirectional: true);
        _head = nn.Linear(2 * H, _tags.Length);
        _embeddingDropout = nn.Dropout(r.EmbeddingDropout);
        _headDropout = nn.Dropout(r.HeadDropout);
        var parameters = _embedding.parameters().Concat(_lstm.parameters()).Concat(_head.parameters()).ToList();
        var optimizer = optim.Adam(parameters, lr: r.LearningRate);
        var random = new Random(r.Seed);
        Tensor[]? best = null;
        double bestDev = double.NegativeInfinity;

        for (int epoch = 1; epoch <= r.NumberOfEpochs; epoch++)
        {
            var clock = Stopwatch.StartNew();
            var monitor = new Recurrent.Bench.CpuMonitor();
            SetTraining(true);
            double lossSum = 0;
            long tokens = 0;
            foreach (var unsorted in Bucketing.Plan(trainLengths, r.BatchSize, random))
            {
                using var scope = NewDisposeScope();
                var batch = unsorted.OrderByDescending(i => trainLengths[i]).ToArray();
                optimizer.zero_grad();
                var logits = Forward(trainIds, batch, out int n);                            // [N, C]
                var labels = new long[n];
                int k = 0;
                foreach (int i in batch) { trainLabels[i].CopyTo(labels, k); k += trainLabels[i].Length; }
                var loss = nn.functional.cross_entropy(logits, tensor(labels));               // mean over the N real tokens
                loss.backward();
                if (r.GradientClipNorm > 0) nn.utils.clip_grad_norm_(parameters, r.GradientClipNorm);
                optimizer.step();
                lossSum += loss.item<float>() * n;
                tokens += n;
            }
            double trainSeconds = clock.Elapsed.TotalSeconds;
            var predicted = Predict(corpus.Dev);
            long correct = 0, total = 0;
            for (int s = 0; s < predicted.Length; s++)
                for (int t = 0; t < predicted[s].Length; t++, total++)
                    if (predicted[s][t] == corpus.Dev[s].Tags[t]) correct++;
            double dev = 100.0 * correct / total;
            bool isBest = dev > bestDev;
            if (isBest)
            {
                bestDev = dev;
                result.BestEpoch = epoch;
                if (best is not null) foreach (var b in best) b.Dispose();
                using (no_grad()) best = parameters.Select(p => p.detach().clone()).ToArray();
            }
            var e = new EpochResult
            {
                Epoch = epoch, Loss = lossSum / tokens, DevAccuracy = dev, Seconds = clock.Elapsed.TotalSeconds,
                TrainSeconds = trainSeconds, TrainTokensPerSecond = tokens / trainSeconds, ForeignCores = monitor.ForeignCores(),
            };
            result.Epochs.Add(e);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  epoch {epoch}/{r.NumberOfEpochs}: loss {e.Loss:F4}, dev {dev:F2}%{(isBest ? " (best)" : "")}, train {trainSeconds:F1} s ({e.TrainTokensPerSecond:F0} tokens/s), with dev {e.Seconds:F1} s, load {Machine.LoadAverage()}, other processes {e.ForeignCores:F2} cores"));
        }
        using (no_grad())
            for (int i = 0; i < parameters.Count; i++) parameters[i].copy_(best![i]);
        result.TrainTokensPerSecond = result.Epochs.Average(e => e.TrainTokensPerSecond);
    }

    public string[][] Predict(IReadOnlyList<TaggedSentence> sentences)
    {
        SetTraining(false);
        using var noGrad = no_grad();
        var ids = sentences.Select(Ids).ToArray();
        var result = new string[sentences.Count][];
        for (int start = 0; start < ids.Length; start += _recipe.InferenceBatchSize)
        {
            using var scope = NewDisposeScope();
            // Corpus order, sorted by length inside the batch only (pack_padded_sequence with enforce_sorted).
            var batch = Enumerable.Range(start, Math.Min(_recipe.InferenceBatchSize, ids.Length - start)).OrderByDescending(i => ids[i].Length).ToArray();
            var best = Forward(ids, batch, out _).argmax(1).data<long>().ToArray();          // rows (b, t), b in batch order
            int k = 0;
            foreach (int i in batch)
            {
                result[i] = new string[ids[i].Length];
                for (int t = 0; t < ids[i].Length; t++) result[i][t] = _tags[best[k++]];
            }
        }
        return result;
    }

    /// <summary>
    /// Logits [N, C] of the N real tokens of <paramref name="batch"/> (sentence indices sorted by length, longest first),
    /// rows in the order (sentence of the batch, step).
    /// </summary>
    private Tensor Forward(int[][] ids, int[] batch, out int n)
    {
        int B = batch.Length, T = ids[batch[0]].Length, H2 = 2 * _recipe.HiddenSize;
        var padded = new long[B * T];                       // [B, T] word ids, 0 (unknown) at padded steps (never read: packed)
        var lengths = new long[B];
        n = batch.Sum(i => ids[i].Length);
        var real = new long[n];                             // flat index b·T + t of every real step
        int k = 0;
        for (int b = 0; b < B; b++)
        {
            var row = ids[batch[b]];
            lengths[b] = row.Length;
            for (int t = 0; t < row.Length; t++) { padded[b * T + t] = row[t]; real[k++] = b * T + t; }
        }
        var x = _embeddingDropout!.call(_embedding!.call(tensor(padded, [B, T])));                      // [B, T, E]
        // PackedSequence is not a Tensor, so no dispose scope frees it: disposed here, or its native memory waits for the GC.
        using var packed = nn.utils.rnn.pack_padded_sequence(x, tensor(lengths), batch_first: true, enforce_sorted: true);
        var (output, _, _) = _lstm!.call(packed);
        using var packedOutput = output;
        var (y, _) = nn.utils.rnn.pad_packed_sequence(packedOutput, batch_first: true, total_length: T);  // [B, T, 2H]
        var steps = y.reshape(B * T, H2).index_select(0, tensor(real));                                    // [N, 2H]
        return _head!.call(_headDropout!.call(steps));                                                      // [N, C]
    }

    private int[] Ids(TaggedSentence s) => s.Words.Select(w => _vocabulary.GetValueOrDefault(Key(w))).ToArray();

    private string Key(string word) => _recipe.LowerCaseWords ? word.ToLowerInvariant() : word;

    private void SetTraining(bool on)
    {
        foreach (nn.Module m in new nn.Module[] { _embedding!, _lstm!, _head!, _embeddingDropout!, _headDropout! })
            if (on) m.train(); else m.eval();
    }
}
