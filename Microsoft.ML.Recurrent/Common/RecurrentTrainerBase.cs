using Microsoft.ML.Data;
using Microsoft.ML.Recurrent.Model;
using Microsoft.ML.Recurrent.Training;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// Shared part of the recurrent trainers: checks the schema, reads the training rows, builds the network, runs the
/// training loop inside an ML.NET progress channel (so progress reaches <c>MLContext.Log</c> and
/// <c>MLContext.CancelExecution()</c> stops training within one batch) and wraps the result in the task's transformer.
/// </summary>
/// <typeparam name="TTransformer">The transformer that <c>Fit</c> returns.</typeparam>
public abstract partial class RecurrentTrainerBase<TTransformer> : IEstimator<TTransformer>
    where TTransformer : RecurrentTransformerBase
{
    private protected readonly IHost Host;
    private protected readonly RecurrentTrainerOptions TrainerOptions;

    private protected RecurrentTrainerBase(IHostEnvironment env, string name, RecurrentTrainerOptions options)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Host = env.Register(name);
        TrainerOptions = options;
    }

    private protected abstract Objective Objective { get; }

    /// <summary>Checks the label column's type; returns the number of network outputs (classes, or 1).</summary>
    private protected abstract int CheckLabel(DataViewSchema.Column label);

    /// <summary>
    /// Reads the label of the cursor's current row as training targets: one value per sequence (class index, 0/1 or
    /// value), or one tag index per step (tagging).
    /// </summary>
    private protected abstract TargetReader MakeTargetReader(DataViewRow row, DataViewSchema.Column label);

    /// <summary>What the head predicts from: the pooled sequence (classifiers, regression) or every step (tagger).</summary>
    private protected virtual NetworkHeadKind Head => NetworkHeadKind.Pooled;

    /// <summary>The task's additions to the network's shape (e.g. the tagger's CRF), after <see cref="CheckLabel"/>.</summary>
    private protected virtual NetworkConfig Configure(NetworkConfig config) => config;

    /// <summary>Reads one row's training targets.</summary>
    private protected abstract class TargetReader
    {
        /// <summary>
        /// Appends the current row's targets for a sequence of <paramref name="steps"/> steps (<paramref name="rawSteps"/>
        /// before truncation to the maximum length) to <paramref name="targets"/> (one per sequence) or
        /// <paramref name="stepTargets"/> (one per step). False when the label is missing: the row is skipped.
        /// </summary>
        /// <exception cref="InvalidOperationException">The label does not fit the row (e.g. a tag vector of another length); names the row.</exception>
        public abstract bool TryRead(long row, int rawSteps, int steps, List<float> targets, List<int> stepTargets);
    }

    /// <summary>A target per sequence from a getter that returns NaN for a missing label.</summary>
    private protected sealed class ScalarTargetReader(Func<float> getter) : TargetReader
    {
        public override bool TryRead(long row, int rawSteps, int steps, List<float> targets, List<int> stepTargets)
        {
            float y = getter();
            if (float.IsNaN(y)) return false;
            targets.Add(y);
            return true;
        }
    }

    private protected abstract TTransformer MakeTransformer(RecurrentModel model);

    /// <summary>The output columns this trainer's transformer adds, given the input's label column.</summary>
    private protected abstract IEnumerable<SchemaShape.Column> OutputColumns(SchemaShape.Column label);

    /// <summary>Per-class loss weights (multiclass), or empty.</summary>
    private protected virtual float[] ClassWeights => [];

    /// <summary>Trains the network on <paramref name="input"/> and returns the transformer that scores with it.</summary>
    public TTransformer Fit(IDataView input) => Fit(input, null);

    /// <summary>
    /// Trains on <paramref name="trainData"/>, evaluating on <paramref name="validationData"/> after every epoch; the
    /// weights of the best epoch (by <see cref="RecurrentTrainerOptions.EarlyStoppingMetric"/>) are kept and training
    /// stops early after <see cref="RecurrentTrainerOptions.EarlyStoppingPatience"/> epochs without improvement.
    /// Without validation data, <see cref="RecurrentTrainerOptions.ValidationFraction"/> of the training rows may be held out instead.
    /// </summary>
    public TTransformer Fit(IDataView trainData, IDataView? validationData)
    {
        ArgumentNullException.ThrowIfNull(trainData);
        var schema = trainData.Schema;
        var label = schema.GetColumnOrNull(TrainerOptions.LabelColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(trainData), $"Label column '{TrainerOptions.LabelColumnName}' not found in the training data.");
        int outputs = CheckLabel(label);
        var sequenceInput = SequenceInput.FromSchema(schema, TrainerOptions.FeatureColumnName, TrainerOptions.FeaturesPerStep, TrainerOptions.MaximumSequenceLength);
        if (TrainerOptions.WideFeatureColumnName is { } wideName)
        {
            if (Head != NetworkHeadKind.Pooled)
                throw new ArgumentOutOfRangeException(nameof(trainData), "WideFeatureColumnName needs a pooled head (the classifiers and regression); the tagger predicts per token.");
            sequenceInput = sequenceInput.WithWide(WideInput.FromSchema(schema, wideName));
        }
        var classWeights = ClassWeights;
        if (classWeights.Length != 0 && classWeights.Length != outputs)
            throw new ArgumentOutOfRangeException(nameof(trainData), $"{classWeights.Length} class weights are given but the label has {outputs} classes.");

        // Initial weights are read (and their file checked) before the data; with no epochs the data is not read at all.
        var initialWeights = ReadInitialWeights();
        if (initialWeights is not null)
            CheckInitialWeightsData(initialWeights, schema[TrainerOptions.FeatureColumnName], LabelValues(label, outputs));
        bool importOnly = initialWeights is not null && TrainerOptions.NumberOfEpochs == 0;
        using var channel = Host.Start("Training");
        // No rows are read for an import without training; nothing below reads data then.
        var data = importOnly ? null! : ReadData(trainData, label, sequenceInput, channel, "training");
        if (!importOnly && sequenceInput.IsTokens && TrainerOptions.MinimumTokenFrequency > 1 && initialWeights is null)
        {
            // Rare keys become the unknown row; the training tokens are remapped in place (validation data is read with the map).
            sequenceInput = sequenceInput.WithRareTokensAsUnknown(data.Tokens, TrainerOptions.MinimumTokenFrequency);
            var map = sequenceInput.TokenMap!;
            for (int i = 0; i < data.Tokens.Length; i++) data.Tokens[i] = map[data.Tokens[i]];
            channel.Info($"Vocabulary: {sequenceInput.VocabularySize - 1:N0} of {sequenceInput.KeyCount:N0} keys occur at least {TrainerOptions.MinimumTokenFrequency} times; the rest are read as unknown.");
        }
        if (TrainerOptions.CharacterColumnName is { } characterColumn)
        {
            // The character vocabulary: characters seen at least twice; the training characters become ids in place.
            var characterInput = CharacterInput.FromCodes(characterColumn, data.Characters, minimumCount: 2);
            characterInput.MapCodes(data.Characters);
            sequenceInput = sequenceInput.WithCharacters(characterInput);
            channel.Info($"Characters: {characterInput.VocabularySize - 1:N0} seen at least twice in column '{characterColumn}'; the rest are read as unknown.");
        }
        long seed = TrainerOptions.Seed ?? Host.Rand.Next();
        SequenceDataset? validation = null;
        if (validationData is not null && !importOnly)
        {
            var validationInput = SequenceInput.FromSchema(validationData.Schema, TrainerOptions.FeatureColumnName, TrainerOptions.FeaturesPerStep, TrainerOptions.MaximumSequenceLength);
            if (validationInput.KeyCount != sequenceInput.KeyCount)
                throw new ArgumentOutOfRangeException(nameof(validationData), $"Feature column '{TrainerOptions.FeatureColumnName}' of the validation data has {validationInput.KeyCount} keys; the training data has {sequenceInput.KeyCount}. Transform both with the same fitted featurizer.");
            var validationLabel = validationData.Schema.GetColumnOrNull(TrainerOptions.LabelColumnName)
                ?? throw new ArgumentOutOfRangeException(nameof(validationData), $"Label column '{TrainerOptions.LabelColumnName}' not found in the validation data.");
            if (CheckLabel(validationLabel) != outputs)
                throw new ArgumentOutOfRangeException(nameof(validationData), $"Label column '{TrainerOptions.LabelColumnName}' of the validation data has a different number of classes.");
            sequenceInput.Wide?.ColumnIndex(validationData.Schema); // the same wide column, of the same size
            validation = ReadData(validationData, validationLabel, sequenceInput, channel, "validation");
        }
        else if (TrainerOptions.ValidationFraction > 0 && !importOnly)
        {
            var order = Enumerable.Range(0, data.Count).ToArray();
            new Core.SeededRandom(seed + 0x9E37).Shuffle(order);
            int held = (int)Math.Round(data.Count * (double)TrainerOptions.ValidationFraction);
            if (held < 1 || held >= data.Count)
                throw new ArgumentOutOfRangeException(nameof(trainData), $"ValidationFraction {TrainerOptions.ValidationFraction} of {data.Count} rows leaves no training or no validation rows.");
            validation = data.Subset(order[..held]);
            data = data.Subset(order[held..]);
            channel.Info($"Holding out {held:N0} of the training rows for validation.");
        }

        int embeddingSize = TrainerOptions.EmbeddingSize;
        if (TrainerOptions.PretrainedEmbeddingsPath is { } path)
        {
            if (!sequenceInput.IsTokens)
                throw new ArgumentOutOfRangeException(nameof(trainData), "PretrainedEmbeddingsPath needs token input (a vector of keys).");
            _wordVectors = WordVectors.Read(path, KeyWords(schema[TrainerOptions.FeatureColumnName]));
            embeddingSize = _wordVectors.Dimension;
        }
        var pretrained = PretrainedLanguageModels(sequenceInput, schema[TrainerOptions.FeatureColumnName], channel);
        bool pretrain = TrainerOptions.LanguageModelEpochs > 0;
        if (pretrain && !sequenceInput.IsTokens)
            throw new ArgumentOutOfRangeException(nameof(trainData), $"LanguageModelEpochs needs token input (a vector of keys); feature column '{TrainerOptions.FeatureColumnName}' holds dense features.");
        if (pretrain && TrainerOptions.Bidirectional)
            embeddingSize *= 2; // the forward and the backward model's embeddings side by side
        var config = Configure(new NetworkConfig
        {
            Cell = TrainerOptions.Cell,
            VocabularySize = sequenceInput.VocabularySize,
            InputSize = sequenceInput.IsTokens ? embeddingSize : TrainerOptions.FeaturesPerStep,
            HiddenSize = TrainerOptions.HiddenSize,
            NumLayers = TrainerOptions.NumberOfLayers,
            Bidirectional = TrainerOptions.Bidirectional,
            Dropout = TrainerOptions.Dropout,
            InputDropout = TrainerOptions.EmbeddingDropout,
            HeadDropout = TrainerOptions.HeadDropout,
            Pooling = TrainerOptions.Pooling,
            Head = Head,
            OutputSize = outputs,
            WideSize = sequenceInput.Wide?.Size ?? 0,
            WideDropout = TrainerOptions.WideDropout,
            CharacterVocabularySize = sequenceInput.Characters?.VocabularySize ?? 0,
            CharacterEmbeddingSize = sequenceInput.Characters is null ? 0 : TrainerOptions.CharacterEmbeddingSize,
            CharacterHiddenSize = sequenceInput.Characters is null ? 0 : TrainerOptions.CharacterHiddenSize,
            MaximumWordLength = sequenceInput.Characters is null ? 0 : TrainerOptions.MaximumWordLength,
        });
        if (pretrained is not null)
            config = pretrained.Shape(config);
        var network = new RecurrentNetwork(config);
        network.Initialize(seed);
        int threads = TrainerOptions.NumberOfThreads ?? Environment.ProcessorCount;
        if (pretrain)
            pretrained = Pretrain(sequenceInput, data, config, seed, threads, channel);
        pretrained?.Apply(network);
        if (initialWeights is not null)
            ImportInitialWeights(network, initialWeights, channel);
        var frozen = (Offset: 0, Length: 0);
        if (TrainerOptions.PretrainedEmbeddingsPath is { } vectorsPath)
            InitializeEmbeddings(network, sequenceInput, schema[TrainerOptions.FeatureColumnName], vectorsPath, channel);
        if (TrainerOptions.FreezeEmbeddings && sequenceInput.IsTokens)
        {
            var embedding = network.Parameters["embedding.weight"];
            frozen = (embedding.Offset, embedding.Length);
        }
        if (importOnly)
            return MakeTransformer(new RecurrentModel(sequenceInput, Objective, network.CreateInferenceSibling(), LabelValues(label, outputs), TrainerOptions.BatchSize,
                TrainerOptions.NumberOfThreads ?? 0, VocabularyHash.Of(schema[TrainerOptions.FeatureColumnName])));
        channel.Info($"Training a {(config.Bidirectional ? "bidirectional " : "")}{config.NumLayers}-layer {config.Cell} " +
            $"(hidden {config.HiddenSize}, {network.Parameters.Length:N0} parameters{(pretrained is null ? "" : ", from language models")}) on {data.Count:N0} rows, {data.TotalSteps:N0} steps, " +
            $"{threads} thread(s), seed {seed}.");
        var trainer = new SequenceTrainer(network, Objective, Recipe(TrainerOptions.NumberOfEpochs, TrainerOptions.BatchSize, threads, seed) with
        {
            ClassWeights = classWeights,
            EarlyStoppingPatience = TrainerOptions.EarlyStoppingPatience,
            EarlyStoppingMetric = TrainerOptions.EarlyStoppingMetric,
            Frozen = frozen,
            LayerGroupStarts = network.LayerGroupStarts(),
            DiscriminativeFactor = TrainerOptions.DiscriminativeLearningRateFactor,
            GradualUnfreezing = TrainerOptions.GradualUnfreezing,
            WideFactor = TrainerOptions.WideLearningRateFactor,
            WideMode = TrainerOptions.WideTraining,
            StartsFromSavedModel = initialWeights is not null,
        });
        trainer.Train(data, validation, CheckCancelled, report =>
        {
            channel.Info(Describe(report));
            TrainerOptions.EpochCallback?.Invoke(report);
        });
        if (validation is not null)
            channel.Info($"Keeping the weights of epoch {trainer.BestEpoch}, the best on the validation data.");
        var labelValues = LabelValues(label, outputs);
        // The transformer keeps an inference-only network over the trained weights; the training network (gradients,
        // optimizer state, training workspaces) is dropped here.
        var trained = network.CreateInferenceSibling();
        return MakeTransformer(new RecurrentModel(sequenceInput, Objective, trained, labelValues, TrainerOptions.BatchSize,
            TrainerOptions.NumberOfThreads ?? 0, VocabularyHash.Of(schema[TrainerOptions.FeatureColumnName])));
    }

    /// <summary>The label's key values (class names) for multiclass and tagging, when there is one per output.</summary>
    private LabelKeyValues? LabelValues(DataViewSchema.Column label, int outputs)
    {
        var values = Objective is Objective.Multiclass or Objective.Tagging ? LabelKeyValues.FromColumn(label) : null;
        return values is not null && values.Count == outputs ? values : null;
    }

    /// <summary>Throws when ML.NET's environment or the options' token was cancelled; called once per batch.</summary>
    private void CheckCancelled()
    {
        Host.CheckAlive();
        TrainerOptions.CancellationToken.ThrowIfCancellationRequested();
    }

    /// <summary>The options' optimization recipe (rate, optimizer, decay, clipping, schedule) for a run of this shape.</summary>
    private TrainingSettings Recipe(int epochs, int batchSize, int threads, long seed) => new()
    {
        Epochs = epochs,
        BatchSize = batchSize,
        LearningRate = TrainerOptions.LearningRate,
        Optimizer = TrainerOptions.Optimizer,
        Momentum = TrainerOptions.Momentum,
        WeightDecay = TrainerOptions.WeightDecay,
        GradientClipNorm = TrainerOptions.GradientClipNorm,
        Schedule = TrainerOptions.LearningRateSchedule,
        WarmupFraction = TrainerOptions.WarmupFraction,
        Threads = threads,
        Seed = seed,
    };

    private WordVectors? _wordVectors;

    /// <summary>The words behind the keys of a token column (its KeyValues), index k − 1 for key k.</summary>
    private static string[] KeyWords(DataViewSchema.Column column)
    {
        if (column.Annotations.Schema.GetColumnOrNull(AnnotationUtils.Kinds.KeyValues) is not { Type: VectorDataViewType { ItemType: TextDataViewType } })
            throw new ArgumentOutOfRangeException(nameof(column), $"Feature column '{column.Name}' has no words behind its keys (text key values), so pretrained word vectors cannot be matched to it.");
        VBuffer<ReadOnlyMemory<char>> words = default;
        column.GetKeyValues(ref words);
        return words.DenseValues().Select(w => w.ToString()).ToArray();
    }

    /// <summary>Sets the embedding rows of the words found in the vector file; logs the coverage.</summary>
    private void InitializeEmbeddings(RecurrentNetwork network, SequenceInput input, DataViewSchema.Column column, string path, IChannel channel)
    {
        var vectors = _wordVectors!;
        var words = KeyWords(column);
        var weight = network.Parameters.Value(network.Parameters["embedding.weight"]);
        int e = vectors.Dimension, found = 0, rows = 0;
        for (int key = 1; key <= words.Length && key <= input.KeyCount; key++)
        {
            int row = input.TokenMap is null ? key : input.TokenMap[key];
            if (row == 0) continue; // rare words share the unknown row, which keeps its own start
            rows++;
            if (vectors.Find(words[key - 1]) is { } vector)
            {
                vector.CopyTo(weight.Slice(row * e, e));
                found++;
            }
        }
        channel.Info($"Pretrained word vectors: {found:N0} of {rows:N0} embedding rows initialized from {Path.GetFileName(path)} ({e} values each).");
        _wordVectors = null;
    }

    private static string Describe(RecurrentEpochInfo r)
    {
        var text = new System.Text.StringBuilder();
        text.Append($"Epoch {r.Epoch}/{r.Epochs}: loss {r.Loss:F4}");
        if (!double.IsNaN(r.Accuracy)) text.Append($", accuracy {r.Accuracy:P2}");
        if (!double.IsNaN(r.ValidationLoss)) text.Append($", validation loss {r.ValidationLoss:F4}");
        if (!double.IsNaN(r.ValidationAccuracy)) text.Append($", validation accuracy {r.ValidationAccuracy:P2}");
        if (r.IsBest && !double.IsNaN(r.ValidationLoss)) text.Append(" (best)");
        text.Append($", lr {r.LearningRate:G3}, {r.TokensPerSecond:N0} steps/s, {r.Elapsed.TotalSeconds:F1} s, ETA {r.Remaining:hh\\:mm\\:ss}");
        return text.ToString();
    }

    private SequenceDataset ReadData(IDataView input, DataViewSchema.Column label, SequenceInput sequenceInput, IChannel channel, string what)
    {
        DataViewSchema.Column? weight = null;
        if (TrainerOptions.ExampleWeightColumnName is { } weightName)
        {
            weight = input.Schema.GetColumnOrNull(weightName)
                ?? throw new ArgumentOutOfRangeException(nameof(input), $"Example weight column '{weightName}' not found in the {what} data.");
            if (weight.Value.Type != NumberDataViewType.Single)
                throw new ArgumentOutOfRangeException(nameof(input), $"Example weight column '{weightName}' has type {weight.Value.Type}; expected Single.");
        }
        var feature = input.Schema.GetColumnOrNull(TrainerOptions.FeatureColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(input), $"Feature column '{TrainerOptions.FeatureColumnName}' not found in the {what} data.");
        var columns = new List<DataViewSchema.Column> { label, feature };
        if (weight is not null) columns.Add(weight.Value);
        // Characters: raw UTF-16 codes while the training data is read (the vocabulary is built from them afterwards),
        // ids from the training vocabulary for validation data.
        var characterInput = sequenceInput.Characters
            ?? (TrainerOptions.CharacterColumnName is { } characterName ? new CharacterInput(characterName, []) : null);
        bool rawCharacters = sequenceInput.Characters is null;
        int characterIndex = -1;
        if (characterInput is not null)
        {
            if (!sequenceInput.IsTokens)
                throw new ArgumentOutOfRangeException(nameof(input), $"CharacterColumnName '{characterInput.ColumnName}' needs token input (a vector of keys), not dense features.");
            characterIndex = characterInput.ColumnIndex(input.Schema);
            columns.Add(input.Schema[characterIndex]);
        }
        var wideInput = sequenceInput.Wide;
        int wideIndex = wideInput?.ColumnIndex(input.Schema) ?? -1;
        if (wideInput is not null) columns.Add(input.Schema[wideIndex]);
        var wideStarts = new List<int> { 0 };
        var wideIndices = new List<int>();
        var wideValues = new List<float>();
        var characters = new List<int>();
        var characterLengths = new List<int>();
        var tokens = new List<int>();
        var features = new List<float>();
        var lengths = new List<int>();
        var targets = new List<float>();
        var weights = new List<float>();
        long missing = 0, empty = 0, invalid = 0, firstEmpty = -1, firstInvalid = -1;
        string? firstProblem = null;
        var stepTargets = new List<int>();
        using (var cursor = input.GetRowCursor(columns))
        {
            var target = MakeTargetReader(cursor, label);
            var tokenGetter = sequenceInput.IsTokens ? cursor.GetGetter<VBuffer<uint>>(feature) : null;
            var featureGetter = sequenceInput.IsTokens ? null : cursor.GetGetter<VBuffer<float>>(feature);
            var weightGetter = weight is null ? null : cursor.GetGetter<float>(weight.Value);
            var wordGetter = characterIndex < 0 ? null : cursor.GetGetter<VBuffer<ReadOnlyMemory<char>>>(input.Schema[characterIndex]);
            var wideGetter = wideIndex < 0 ? null : cursor.GetGetter<VBuffer<float>>(input.Schema[wideIndex]);
            VBuffer<float> wideBuffer = default;
            VBuffer<ReadOnlyMemory<char>> wordBuffer = default;
            VBuffer<uint> tokenBuffer = default;
            VBuffer<float> featureBuffer = default;
            while (cursor.MoveNext())
            {
                float w = 1;
                weightGetter?.Invoke(ref w);
                if (!(w > 0) || !float.IsFinite(w))
                {
                    missing++;
                    continue;
                }
                RowStatus status;
                int length, rawLength;
                string? problem;
                int tokensBefore = tokens.Count, featuresBefore = features.Count;
                int charactersBefore = characters.Count, characterLengthsBefore = characterLengths.Count;
                if (tokenGetter is not null)
                {
                    tokenGetter(ref tokenBuffer);
                    rawLength = tokenBuffer.Length;
                    status = sequenceInput.ReadTokens(tokenBuffer, tokens, out length, out problem);
                    if (status == RowStatus.Valid && wordGetter is not null)
                    {
                        wordGetter(ref wordBuffer);
                        status = characterInput!.ReadWords(wordBuffer, rawLength, length, characters, characterLengths, rawCharacters, out problem);
                        if (status != RowStatus.Valid)
                            tokens.RemoveRange(tokensBefore, tokens.Count - tokensBefore);
                    }
                }
                else
                {
                    featureGetter!(ref featureBuffer);
                    rawLength = featureBuffer.Length / sequenceInput.FeaturesPerStep;
                    status = sequenceInput.ReadFeatures(featureBuffer, features, out length, out problem);
                }
                if (status == RowStatus.Empty)
                {
                    if (empty++ == 0) firstEmpty = cursor.Position;
                    continue;
                }
                int wideBefore = wideIndices.Count;
                if (status == RowStatus.Valid && wideGetter is not null)
                {
                    wideGetter(ref wideBuffer);
                    status = wideInput!.Read(wideBuffer, wideIndices, wideValues, out problem);
                }
                if (status == RowStatus.Invalid)
                {
                    tokens.RemoveRange(tokensBefore, tokens.Count - tokensBefore);
                    features.RemoveRange(featuresBefore, features.Count - featuresBefore);
                    characters.RemoveRange(charactersBefore, characters.Count - charactersBefore);
                    characterLengths.RemoveRange(characterLengthsBefore, characterLengths.Count - characterLengthsBefore);
                    if (invalid++ == 0) (firstInvalid, firstProblem) = (cursor.Position, problem);
                    continue;
                }
                if (!target.TryRead(cursor.Position, rawLength, length, targets, stepTargets))
                {
                    // A missing label: forget the row's inputs.
                    tokens.RemoveRange(tokensBefore, tokens.Count - tokensBefore);
                    features.RemoveRange(featuresBefore, features.Count - featuresBefore);
                    characters.RemoveRange(charactersBefore, characters.Count - charactersBefore);
                    characterLengths.RemoveRange(characterLengthsBefore, characterLengths.Count - characterLengthsBefore);
                    wideIndices.RemoveRange(wideBefore, wideIndices.Count - wideBefore);
                    wideValues.RemoveRange(wideBefore, wideValues.Count - wideBefore);
                    missing++;
                    continue;
                }
                if (wideInput is not null) wideStarts.Add(wideIndices.Count);
                lengths.Add(length);
                if (weight is not null) weights.Add(w);
            }
        }
        // Such rows are skipped the way ML.NET's trainers skip rows with a missing label, and said so.
        if (missing > 0)
            channel.Warning($"Skipped {missing:N0} {what} rows with a missing label or a non-positive weight.");
        if (empty > 0)
            channel.Warning($"Skipped {empty:N0} {what} rows whose sequence in column '{sequenceInput.ColumnName}' is empty (the first is row {firstEmpty}); " +
                "such rows are scored as \"no evidence\" (the head's bias).");
        if (invalid > 0)
            channel.Warning($"Skipped {invalid:N0} {what} rows that cannot be read (the first is row {firstInvalid}: {firstProblem}).");
        if (lengths.Count == 0)
            throw new InvalidOperationException($"The {what} data has no usable rows: {missing:N0} have a missing label or a non-positive weight, " +
                $"{empty:N0} an empty sequence in column '{sequenceInput.ColumnName}' and {invalid:N0} a value that cannot be read" +
                (firstProblem is null ? "." : $" (row {firstInvalid}: {firstProblem})."));
        return new SequenceDataset(tokens.ToArray(), features.ToArray(), sequenceInput.IsTokens ? 0 : sequenceInput.FeaturesPerStep,
            lengths.ToArray(), targets.ToArray(), weights.ToArray(), stepTargets.ToArray(), characters.ToArray(), characterLengths.ToArray())
        {
            Wide = wideInput is null ? null : new Core.SparseRows(wideStarts.ToArray(), wideIndices.ToArray(), wideValues.ToArray(), wideInput.Size),
            WideSize = wideInput?.Size ?? 0,
        };
    }

    /// <summary>The input schema plus the output columns of the trained transformer; checks the input columns' types.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        if (!inputSchema.TryFindColumn(TrainerOptions.LabelColumnName, out var label))
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Label column '{TrainerOptions.LabelColumnName}' not found.");
        if (!inputSchema.TryFindColumn(TrainerOptions.FeatureColumnName, out var feature))
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Feature column '{TrainerOptions.FeatureColumnName}' not found.");
        bool keys = feature.IsKey && feature.Kind != SchemaShape.Column.VectorKind.Scalar;
        bool dense = !feature.IsKey && feature.Kind != SchemaShape.Column.VectorKind.Scalar && feature.ItemType == NumberDataViewType.Single;
        if (!keys && !dense)
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Feature column '{TrainerOptions.FeatureColumnName}' has type {feature.ItemType}; expected a vector of keys or of Single.");
        if (TrainerOptions.ExampleWeightColumnName is { } weightName)
        {
            if (!inputSchema.TryFindColumn(weightName, out var weight))
                throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Example weight column '{weightName}' not found.");
            if (weight.Kind != SchemaShape.Column.VectorKind.Scalar || weight.ItemType != NumberDataViewType.Single)
                throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Example weight column '{weightName}' must be a Single scalar.");
        }
        if (TrainerOptions.WideFeatureColumnName is { } wideName)
        {
            if (!inputSchema.TryFindColumn(wideName, out var wide))
                throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Wide feature column '{wideName}' not found.");
            if (wide.Kind != SchemaShape.Column.VectorKind.Vector || wide.ItemType != NumberDataViewType.Single)
                throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Wide feature column '{wideName}' must be a known-size vector of Single (such as FeaturizeText's output).");
        }
        var result = inputSchema.ToDictionary(c => c.Name);
        foreach (var column in OutputColumns(label))
            result[column.Name] = column;
        return new SchemaShape(result.Values);
    }

    /// <summary>Annotation shapes of a score column kind/value kind pair.</summary>
    private protected static List<SchemaShape.Column> ScoreAnnotationShapes(bool normalized = false)
    {
        var list = new List<SchemaShape.Column>
        {
            new(AnnotationUtils.Kinds.ScoreColumnKind, SchemaShape.Column.VectorKind.Scalar, TextDataViewType.Instance, false),
            new(AnnotationUtils.Kinds.ScoreValueKind, SchemaShape.Column.VectorKind.Scalar, TextDataViewType.Instance, false),
        };
        if (normalized)
            list.Add(new(AnnotationUtils.Kinds.IsNormalized, SchemaShape.Column.VectorKind.Scalar, BooleanDataViewType.Instance, false));
        return list;
    }
}
