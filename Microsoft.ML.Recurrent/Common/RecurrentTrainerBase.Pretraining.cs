using Microsoft.ML.Data;
using Microsoft.ML.Recurrent.Model;
using Microsoft.ML.Recurrent.Training;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Recurrent;

// Transfer from language models (ULMFiT): pretraining inside Fit, or a trained language model given in the options.
// The copy itself is Training/LanguageModelTransfer; this part finds the models and matches their tokens to the rows.
public abstract partial class RecurrentTrainerBase<TTransformer>
{
    /// <summary>Language models to start from, with each embedding row's id in them.</summary>
    private sealed record LanguageModels(RecurrentNetwork Forward, int[] ForwardIds, RecurrentNetwork? Backward, int[]? BackwardIds)
    {
        /// <summary>The network shape they impose: their cell and sizes, the embeddings side by side.</summary>
        public NetworkConfig Shape(NetworkConfig config) => config with
        {
            Cell = Forward.Config.Cell,
            InputSize = Forward.Config.InputSize + (Backward?.Config.InputSize ?? 0),
            HiddenSize = Forward.Config.HiddenSize,
            NumLayers = Forward.Config.NumLayers,
        };

        public void Apply(RecurrentNetwork network) => LanguageModelTransfer.Apply(network, Forward, ForwardIds, Backward, BackwardIds);
    }

    /// <summary>The models of <see cref="RecurrentTrainerOptions.PretrainedLanguageModel"/> (and the backward one), matched to this input; null without.</summary>
    private LanguageModels? PretrainedLanguageModels(SequenceInput input, DataViewSchema.Column feature, IChannel channel)
    {
        if (TrainerOptions.PretrainedLanguageModel is not { } forwardModel)
            return null;
        if (!input.IsTokens)
            throw new ArgumentOutOfRangeException(nameof(RecurrentTrainerOptions.PretrainedLanguageModel), $"A language model initializes an embedding of tokens; feature column '{feature.Name}' holds dense features.");
        var words = TryKeyWords(feature);
        var forward = FindLanguageModel(forwardModel, nameof(RecurrentTrainerOptions.PretrainedLanguageModel), backward: false);
        var forwardIds = MatchTokens(forward, input, words, nameof(RecurrentTrainerOptions.PretrainedLanguageModel), channel);
        RecurrentLanguageModelTransformer? backward = null;
        int[]? backwardIds = null;
        if (TrainerOptions.PretrainedBackwardLanguageModel is { } backwardModel)
        {
            backward = FindLanguageModel(backwardModel, nameof(RecurrentTrainerOptions.PretrainedBackwardLanguageModel), backward: true);
            var (f, b) = (forward.Network.Config, backward.Network.Config);
            if (f.Cell != b.Cell || f.HiddenSize != b.HiddenSize || b.NumLayers < f.NumLayers)
                throw new ArgumentException($"The backward language model ({b.NumLayers}-layer {b.Cell}, hidden {b.HiddenSize}) does not match the forward one ({f.NumLayers}-layer {f.Cell}, hidden {f.HiddenSize}).", nameof(RecurrentTrainerOptions.PretrainedBackwardLanguageModel));
            backwardIds = MatchTokens(backward, input, words, nameof(RecurrentTrainerOptions.PretrainedBackwardLanguageModel), channel);
        }
        else if (TrainerOptions.Bidirectional)
        {
            channel.Info("No backward language model: the reverse direction of the bidirectional network starts at random.");
        }
        return new LanguageModels(forward.Network, forwardIds, backward?.Network, backwardIds);
    }

    /// <summary>The language model inside <paramref name="model"/>: itself, or the last one of a transformer chain.</summary>
    private static RecurrentLanguageModelTransformer FindLanguageModel(ITransformer model, string option, bool backward)
    {
        var found = model as RecurrentLanguageModelTransformer
            ?? (model as IEnumerable<ITransformer>)?.OfType<RecurrentLanguageModelTransformer>().LastOrDefault()
            ?? throw new ArgumentException($"{option} holds no RecurrentLanguageModelTransformer (it is a {model.GetType().Name}).", option);
        if (found.IsCharacterModel)
            throw new ArgumentException($"{option} is a character model; a classifier over tokens needs a token language model (trained on the same kind of key column).", option);
        if (found.IsBackward != backward)
            throw new ArgumentException(backward
                ? $"{option} is a forward language model; train the backward one with Options.Backward = true."
                : $"{option} is a backward language model; pass it as PretrainedBackwardLanguageModel and a forward one here.", option);
        return found;
    }

    /// <summary>
    /// The model's id of every embedding row: by the words behind the keys when both columns have them, else by key
    /// (the key counts must then agree). Row 0 (unknown and rare keys) and unmatched words take its unknown id.
    /// </summary>
    private static int[] MatchTokens(RecurrentLanguageModelTransformer model, SequenceInput input, string[]? words, string option, IChannel channel)
    {
        var vocabulary = model.Vocabulary;
        bool byWord = words is not null && vocabulary.HasWords;
        if (!byWord && vocabulary.KeyCount != input.KeyCount)
            throw new ArgumentException($"{option} was trained on {vocabulary.KeyCount:N0} keys and feature column '{input.ColumnName}' has {input.KeyCount:N0}, " +
                "and one of them has no words behind its keys to match them by: use the same fitted featurizer for both.", option);
        var ids = new int[input.VocabularySize]; // 0 = the model's unknown token
        int rows = 0, matched = 0;
        for (int key = 1; key <= input.KeyCount; key++)
        {
            int row = input.TokenMap is null ? key : input.TokenMap[key];
            if (row == 0) continue;
            rows++;
            int id = byWord ? (key <= words!.Length ? vocabulary.OfWord(words[key - 1]) : LanguageModelVocabulary.Unknown) : vocabulary.OfKey((uint)key);
            ids[row] = id;
            if (id != LanguageModelVocabulary.Unknown) matched++;
        }
        channel.Info($"{option}: {matched:N0} of {rows:N0} tokens matched {(byWord ? "by word" : "by key")}; the others start from its unknown token.");
        return ids;
    }

    /// <summary>The words behind the keys of a token column, or null when it has none.</summary>
    private static string[]? TryKeyWords(DataViewSchema.Column column) =>
        column.Annotations.Schema.GetColumnOrNull(AnnotationUtils.Kinds.KeyValues) is { Type: VectorDataViewType { ItemType: TextDataViewType } }
            ? KeyWords(column)
            : null;

    /// <summary>
    /// <see cref="RecurrentTrainerOptions.LanguageModelEpochs"/>: trains a forward language model (and a backward one
    /// for a bidirectional network) on the training rows and the unlabeled rows, in a seeded random row order, over
    /// the network's own vocabulary plus an end-of-row token.
    /// </summary>
    private LanguageModels Pretrain(SequenceInput input, SequenceDataset data, NetworkConfig shape, long seed, int threads, IChannel channel)
    {
        var rows = new List<ReadOnlyMemory<int>>(data.Count);
        for (int i = 0; i < data.Count; i++)
            rows.Add(data.Tokens.AsMemory((int)data.Starts[i], data.Lengths[i]));
        if (TrainerOptions.UnlabeledData is { } unlabeled)
        {
            int before = rows.Count;
            ReadUnlabeled(unlabeled, input, rows);
            channel.Info($"Language-model pretraining reads {rows.Count - before:N0} unlabeled rows besides the {before:N0} training rows.");
        }
        // The language model's vocabulary: the most frequent rows (its softmax costs H per word and token), then the
        // unknown token (id 0, also every other row) and the end of row.
        var ids = LanguageModelIds(rows, input.VocabularySize, TrainerOptions.LanguageModelVocabularySize, out int kept);
        int endOfRow = kept + 1, size = kept + 2;
        var order = Enumerable.Range(0, rows.Count).ToArray();
        new Core.SeededRandom(seed ^ 0x0C0FFEE).Shuffle(order);
        var shuffled = order.Select(i => (ReadOnlyMemory<int>)rows[i].ToArray().Select(r => ids[r]).ToArray()).ToArray();
        channel.Info($"Language-model vocabulary: the {kept:N0} most frequent of {input.VocabularySize - 1:N0} tokens; the others are read as unknown.");
        int e = TrainerOptions.EmbeddingSize;
        if (!shape.Bidirectional)
            return new LanguageModels(TrainLanguageModel(LanguageModelTransfer.Stream(shuffled, endOfRow, reverse: false), shape, e, size, seed + 1, threads, "forward", channel.Info), ids, null, null);
        // A unidirectional stack runs on one core: with two or more threads, the two models train side by side, one
        // thread each (the results do not depend on the thread count).
        int each = Math.Max(1, threads / 2);
        RecurrentNetwork? forward = null, backward = null;
        var gate = new object();
        void Info(string message)
        {
            lock (gate) channel.Info(message);
        }
        void Forward() => forward = TrainLanguageModel(LanguageModelTransfer.Stream(shuffled, endOfRow, reverse: false), shape, e, size, seed + 1, each, "forward", Info);
        void Backward() => backward = TrainLanguageModel(LanguageModelTransfer.Stream(shuffled, endOfRow, reverse: true), shape, e, size, seed + 2, each, "backward", Info);
        if (threads >= 2)
        {
            try
            {
                Parallel.Invoke(new ParallelOptions { MaxDegreeOfParallelism = 2 }, Forward, Backward);
            }
            catch (AggregateException aggregate) when (aggregate.InnerExceptions.Count >= 1)
            {
                // Cancellation or a diverged model: rethrow the first as itself, with its own stack.
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(aggregate.InnerExceptions[0]).Throw();
            }
        }
        else
        {
            Forward();
            Backward();
        }
        return new LanguageModels(forward!, ids, backward, ids);
    }

    /// <summary>
    /// The language model's id of every embedding row: the <paramref name="limit"/> most frequent rows (ties to the
    /// lower row) get 1, 2, … in row order; row 0 and the rest get 0 (unknown).
    /// </summary>
    internal static int[] LanguageModelIds(IReadOnlyList<ReadOnlyMemory<int>> rows, int vocabularySize, int limit, out int kept)
    {
        var counts = new long[vocabularySize];
        foreach (var row in rows)
            foreach (int token in row.Span) counts[token]++;
        counts[0] = 0;
        var byFrequency = Enumerable.Range(1, vocabularySize - 1).Where(r => counts[r] > 0)
            .OrderByDescending(r => counts[r]).ThenBy(r => r).Take(limit).Order().ToArray();
        var ids = new int[vocabularySize];
        for (int i = 0; i < byFrequency.Length; i++) ids[byFrequency[i]] = i + 1;
        kept = byFrequency.Length;
        return ids;
    }

    private void ReadUnlabeled(IDataView unlabeled, SequenceInput input, List<ReadOnlyMemory<int>> rows)
    {
        var column = unlabeled.Schema.GetColumnOrNull(TrainerOptions.FeatureColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(RecurrentTrainerOptions.UnlabeledData), $"Feature column '{TrainerOptions.FeatureColumnName}' not found in the unlabeled data.");
        if (column.Type is not VectorDataViewType { ItemType: KeyDataViewType key } || (int)key.Count != input.KeyCount)
            throw new ArgumentOutOfRangeException(nameof(RecurrentTrainerOptions.UnlabeledData),
                $"Feature column '{column.Name}' of the unlabeled data has type {column.Type}; the training data's has {input.KeyCount} keys. Transform both with the same fitted featurizer.");
        var tokens = new List<int>();
        using var cursor = unlabeled.GetRowCursor([column]);
        var getter = cursor.GetGetter<VBuffer<uint>>(column);
        VBuffer<uint> buffer = default;
        while (cursor.MoveNext())
        {
            getter(ref buffer);
            tokens.Clear();
            // Empty rows and rows with keys beyond the vocabulary add nothing (as in training).
            if (input.ReadTokens(buffer, tokens, out _, out _) == RowStatus.Valid)
                rows.Add(tokens.ToArray());
        }
    }

    private RecurrentNetwork TrainLanguageModel(int[] stream, NetworkConfig shape, int embeddingSize, int vocabularySize, long seed, int threads, string direction, Action<string> info)
    {
        const int bptt = 70; // ULMFiT's back-propagation length
        var network = new RecurrentNetwork(new NetworkConfig
        {
            Cell = shape.Cell,
            VocabularySize = vocabularySize,
            OutputSize = vocabularySize,
            InputSize = embeddingSize,
            HiddenSize = shape.HiddenSize,
            NumLayers = shape.NumLayers,
            Head = NetworkHeadKind.PerStep,
            Dropout = TrainerOptions.Dropout,
            InputDropout = TrainerOptions.EmbeddingDropout,
            HeadDropout = TrainerOptions.HeadDropout,
        });
        LanguageModelTrainer.Initialize(network, seed);
        int columns = Math.Max(1, Math.Min(TrainerOptions.BatchSize, stream.Length / (bptt + 1)));
        info($"Pretraining a {direction} language model ({network.Parameters.Length:N0} parameters) on {stream.Length:N0} tokens for {TrainerOptions.LanguageModelEpochs} epoch(s), {columns} columns × {bptt} steps.");
        var trainer = new LanguageModelTrainer(network, Recipe(TrainerOptions.LanguageModelEpochs, columns, threads, seed), bptt);
        trainer.Train(stream, null, CheckCancelled, report => info($"Language model ({direction}) epoch {report.Epoch}/{report.Epochs}: loss {report.Loss:F4} (perplexity {Math.Exp(report.Loss):F1}), " +
            $"{report.TokensPerSecond:N0} tokens/s, {report.Elapsed.TotalSeconds:F1} s."));
        return network;
    }
}
