using System.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Accuracy;

/// <summary>The reference recipe in libtorch through TorchSharp-cpu.</summary>
internal static class TorchRunner
{
    public static RunResult Run(Corpus corpus, int epochs, int threads, RunResult result)
    {
        TorchNative.Load();
        set_num_threads(threads);
        manual_seed(1);
        const int E = 128, H = 128, Layers = 2, Batch = 32;
        int classes = corpus.Classes.Length;
        result.Settings = $"libtorch {__version__}: Embedding({corpus.VocabularySize + 1},{E}) → LSTM({E},{H}, layers {Layers}, bidirectional, dropout 0.3, batch_first, packed unsorted) " +
                          $"→ cat(h_n[-2], h_n[-1]) → Linear({2 * H},{classes}); Adam lr 2e-3, clip 5, batch {Batch}, bucketed, {epochs} epochs, threads {threads}";
        Console.WriteLine(result.Settings);

        var embedding = nn.Embedding(corpus.VocabularySize + 1, E);
        var lstm = nn.LSTM(E, H, Layers, bias: true, batchFirst: true, dropout: 0.3, bidirectional: true);
        var head = nn.Linear(2 * H, classes);
        var parameters = embedding.parameters().Concat(lstm.parameters()).Concat(head.parameters()).ToList();
        var optimizer = optim.Adam(parameters, lr: 2e-3);
        var random = new Random(1);
        var trainLengths = corpus.TrainIds.Select(a => a.Length).ToArray();

        Tensor Logits(int[][] ids, int[] batch)
        {
            // Longest first, so the packed order is the batch order (enforce_sorted: false is kept anyway).
            int max = batch.Max(i => ids[i].Length);
            var padded = new long[batch.Length * max];
            var lengths = new long[batch.Length];
            for (int r = 0; r < batch.Length; r++)
            {
                var row = ids[batch[r]];
                lengths[r] = row.Length;
                for (int t = 0; t < row.Length; t++) padded[r * max + t] = row[t];
            }
            var x = embedding.call(tensor(padded, [batch.Length, max]));
            var packed = nn.utils.rnn.pack_padded_sequence(x, tensor(lengths), batch_first: true, enforce_sorted: false);
            var h0 = zeros(2 * Layers, batch.Length, H);
            var c0 = zeros(2 * Layers, batch.Length, H);
            var (_, hN, _) = lstm.call(packed, (h0, c0));
            var features = cat([hN[2 * Layers - 2], hN[2 * Layers - 1]], 1);
            return head.call(features);
        }

        var total = Stopwatch.StartNew();
        for (int epoch = 1; epoch <= epochs; epoch++)
        {
            var clock = Stopwatch.StartNew();
            embedding.train(); lstm.train(); head.train();
            var batches = Bucketing.Plan(trainLengths, Batch, random);
            double lossSum = 0; long tokens = 0, seen = 0;
            foreach (var unsorted in batches)
            {
                using var scope = NewDisposeScope();
                var batch = unsorted.OrderByDescending(i => trainLengths[i]).ToArray();
                optimizer.zero_grad();
                var logits = Logits(corpus.TrainIds, batch);
                var labels = tensor(batch.Select(i => (long)corpus.TrainLabels[i]).ToArray());
                var loss = nn.functional.cross_entropy(logits, labels);
                loss.backward();
                nn.utils.clip_grad_norm_(parameters, 5.0);
                optimizer.step();
                lossSum += loss.item<float>() * batch.Length;
                seen += batch.Length;
                tokens += batch.Sum(i => (long)trainLengths[i]);
            }
            double trainSeconds = clock.Elapsed.TotalSeconds;
            double accuracy = Evaluate(corpus, Logits, embedding, lstm, head);
            double seconds = clock.Elapsed.TotalSeconds;
            result.Epochs.Add(new EpochResult
            {
                Epoch = epoch, TestAccuracy = accuracy, Seconds = seconds, TrainSeconds = trainSeconds,
                TokensPerSecond = tokens / seconds, Loss = lossSum / seen,
            });
            Console.WriteLine($"  libtorch epoch {epoch}/{epochs}: loss {lossSum / seen:F4}, test accuracy {accuracy:F2}%, {seconds:F1} s (train {trainSeconds:F1} s), {tokens / seconds:F0} tokens/s, load {Machine.LoadAverage()}");
        }
        result.TrainSeconds = total.Elapsed.TotalSeconds;
        result.FinalAccuracy = result.Epochs[^1].TestAccuracy;
        return result;
    }

    private static double Evaluate(Corpus corpus, Func<int[][], int[], Tensor> logits, nn.Module a, nn.Module b, nn.Module c)
    {
        a.eval(); b.eval(); c.eval();
        using var _ = no_grad();
        var order = Enumerable.Range(0, corpus.TestIds.Length).OrderByDescending(i => corpus.TestIds[i].Length).ToArray();
        long correct = 0;
        for (int start = 0; start < order.Length; start += 128)
        {
            using var scope = NewDisposeScope();
            var batch = order[start..Math.Min(order.Length, start + 128)];
            var predicted = logits(corpus.TestIds, batch).argmax(1).data<long>().ToArray();
            for (int r = 0; r < batch.Length; r++)
                if (predicted[r] == corpus.TestLabels[batch[r]]) correct++;
        }
        return 100.0 * correct / order.Length;
    }
}
