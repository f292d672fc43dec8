using Microsoft.ML.Data;
using Microsoft.ML.Recurrent.Generation;
using Microsoft.ML.Recurrent.Model;
using Microsoft.ML.Recurrent.Training;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// Trains a recurrent language model — a stacked, left-to-right LSTM (or GRU) that predicts the next character or
/// token — on a text column or a column of token keys. Create it with
/// <c>mlContext.Transforms.Text.RecurrentLanguageModel(...)</c>. The fitted
/// <see cref="RecurrentLanguageModelTransformer"/> scores each row's log-likelihood and perplexity, and generates text.
/// </summary>
/// <remarks>
/// <para>Training joins the rows into one stream, with an end-of-row token before every row and after the last, and
/// trains by truncated back-propagation through time: the stream is read as <see cref="Options.BatchSize"/> parallel
/// columns in chunks of <see cref="Options.SequenceLength"/> tokens, and each chunk starts from the state the previous
/// chunk ended in (stateful training), so the model learns from context longer than one chunk. One long text in one
/// row and many short rows both work.</para>
/// <list type="table">
/// <listheader><term>Column</term><description>Type</description></listheader>
/// <item><term>input (<see cref="Options.InputColumnName"/>)</term><description><see cref="string"/> text (a character model), or a variable-length vector of keys (a token model, e.g. from <c>TokenizeIntoWords</c> → <c>MapValueToKey</c>, or <c>TokenizeToIds</c>)</description></item>
/// <item><term><c>LogLikelihood</c> (output)</term><description><see cref="float"/>: Σ log p of the row's tokens and of its end, each given the ones before it, in nats</description></item>
/// <item><term><c>Perplexity</c> (output)</term><description><see cref="float"/>: exp(−LogLikelihood / (tokens + 1))</description></item>
/// </list>
/// </remarks>
public sealed class RecurrentLanguageModelEstimator : IEstimator<RecurrentLanguageModelTransformer>
{
    /// <summary>Options of <see cref="RecurrentLanguageModelEstimator"/>. Defaults: see docs/language-model.md for the study behind them.</summary>
    public sealed class Options
    {
        /// <summary>The text column (character model) or key-vector column (token model). Default <c>Text</c>.</summary>
        public string InputColumnName = "Text";

        /// <summary>Output column of each row's log-likelihood in nats. Default <c>LogLikelihood</c>.</summary>
        public string LogLikelihoodColumnName = "LogLikelihood";

        /// <summary>Output column of each row's perplexity. Default <c>Perplexity</c>.</summary>
        public string PerplexityColumnName = "Perplexity";

        /// <summary>Recurrent cell. Default <see cref="RecurrentCellKind.Lstm"/>.</summary>
        public RecurrentCellKind Cell = RecurrentCellKind.Lstm;

        /// <summary>Width of the input embedding. Default 128.</summary>
        public int EmbeddingSize = 128;

        /// <summary>Hidden units of every layer. Default 512.</summary>
        public int HiddenSize = 512;

        /// <summary>Stacked layers. Default 2.</summary>
        public int NumberOfLayers = 2;

        /// <summary>
        /// Weight tying (Press &amp; Wolf 2017; Inan et al. 2017): the output layer reuses the input embedding, which saves
        /// V × H parameters and usually helps word models. Needs <see cref="EmbeddingSize"/> = <see cref="HiddenSize"/>. Default false.
        /// </summary>
        public bool TieWeights;

        /// <summary>
        /// A backward language model: it reads every row right to left and predicts the token before. Scoring reads
        /// rows the same way (a row's log-likelihood is that of its reversed text); it cannot generate. Its use is to
        /// initialize the reverse direction of a bidirectional classifier
        /// (<see cref="RecurrentTrainerOptions.PretrainedBackwardLanguageModel"/>). Default false.
        /// </summary>
        public bool Backward;

        /// <summary>Dropout between recurrent layers during training. Default 0.2.</summary>
        public float Dropout = 0.2f;

        /// <summary>Dropout on the embedded tokens during training. Default 0.</summary>
        public float EmbeddingDropout;

        /// <summary>Dropout on the top layer's outputs, before the output layer, during training. Default 0.2.</summary>
        public float OutputDropout = 0.2f;

        /// <summary>Tokens per truncated back-propagation step (the state still flows across steps). Default 100.</summary>
        public int SequenceLength = 100;

        /// <summary>Parallel columns of the stream per step. Default 32.</summary>
        public int BatchSize = 32;

        /// <summary>Passes over the training stream. Default 10.</summary>
        public int NumberOfEpochs = 10;

        /// <summary>Peak learning rate. Default 0.002.</summary>
        public float LearningRate = 2e-3f;

        /// <summary>Optimizer. Default <see cref="OptimizerKind.Adam"/>.</summary>
        public OptimizerKind Optimizer = OptimizerKind.Adam;

        /// <summary>Momentum for <see cref="OptimizerKind.Sgd"/>. Default 0.9.</summary>
        public float Momentum = 0.9f;

        /// <summary>Weight decay (L2 for Adam and SGD, decoupled for AdamW). Default 0.</summary>
        public float WeightDecay;

        /// <summary>Gradients are scaled down when their global 2-norm exceeds this; 0 disables clipping. Default 5.</summary>
        public float GradientClipNorm = 5f;

        /// <summary>Learning-rate schedule after the warm-up. Default <see cref="LearningRateSchedule.Cosine"/>.</summary>
        public LearningRateSchedule LearningRateSchedule = LearningRateSchedule.Cosine;

        /// <summary>Fraction of all steps spent raising the learning rate linearly from 0. Default 0.02.</summary>
        public float WarmupFraction = 0.02f;

        /// <summary>Characters or keys seen fewer times than this in training are read as the unknown token. Default 1 (keep all).</summary>
        public int MinimumTokenFrequency = 1;

        /// <summary>With validation data: stop after this many epochs without a lower validation loss (the best epoch is kept either way); 0 = never. Default 0.</summary>
        public int EarlyStoppingPatience;

        /// <summary>Threads for training (saved for scoring, which uses one per cursor); null = all processors. Default null.</summary>
        public int? NumberOfThreads;

        /// <summary>Seed for initialization, chunk offsets and dropout; null takes one from the <c>MLContext</c>'s seed. Default null.</summary>
        public int? Seed;

        /// <summary>Stops training (with <see cref="OperationCanceledException"/>) within one step when cancelled.</summary>
        public CancellationToken CancellationToken;

        /// <summary>Called after every epoch: training loss and validation loss in nats per token (see <see cref="RecurrentEpochInfo.ValidationPerplexity"/>), throughput, ETA.</summary>
        public Action<RecurrentEpochInfo>? EpochCallback;

        internal void Validate()
        {
            static void Positive(int value, string name)
            {
                if (value <= 0) throw new ArgumentOutOfRangeException(name, value, $"{name} must be positive.");
            }
            static void Fraction(float value, string name)
            {
                if (!(value >= 0 && value < 1)) throw new ArgumentOutOfRangeException(name, value, $"{name} must be in [0, 1).");
            }
            foreach (var (value, name) in new[] { (InputColumnName, nameof(InputColumnName)), (LogLikelihoodColumnName, nameof(LogLikelihoodColumnName)), (PerplexityColumnName, nameof(PerplexityColumnName)) })
                if (string.IsNullOrWhiteSpace(value)) throw new ArgumentException($"{name} must be set.", name);
            if (LogLikelihoodColumnName == PerplexityColumnName) throw new ArgumentException($"LogLikelihoodColumnName and PerplexityColumnName are both '{PerplexityColumnName}'.");
            Positive(EmbeddingSize, nameof(EmbeddingSize));
            Positive(HiddenSize, nameof(HiddenSize));
            Positive(NumberOfLayers, nameof(NumberOfLayers));
            Positive(SequenceLength, nameof(SequenceLength));
            Positive(BatchSize, nameof(BatchSize));
            Positive(NumberOfEpochs, nameof(NumberOfEpochs));
            Positive(MinimumTokenFrequency, nameof(MinimumTokenFrequency));
            if (BatchSize > RecurrentModel.MaxBatchSize) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, $"BatchSize must be at most {RecurrentModel.MaxBatchSize}.");
            if ((long)BatchSize * SequenceLength > 1 << 24) throw new ArgumentOutOfRangeException(nameof(SequenceLength), SequenceLength, "BatchSize × SequenceLength must be at most 2^24 tokens per step.");
            if (TieWeights && EmbeddingSize != HiddenSize)
                throw new ArgumentException($"TieWeights needs EmbeddingSize ({EmbeddingSize}) = HiddenSize ({HiddenSize}): the output layer reuses the embedding.", nameof(TieWeights));
            if (!Enum.IsDefined(Cell)) throw new ArgumentOutOfRangeException(nameof(Cell), Cell, "Unknown cell kind.");
            if (!Enum.IsDefined(Optimizer)) throw new ArgumentOutOfRangeException(nameof(Optimizer), Optimizer, "Unknown optimizer.");
            if (!Enum.IsDefined(LearningRateSchedule)) throw new ArgumentOutOfRangeException(nameof(LearningRateSchedule), LearningRateSchedule, "Unknown schedule.");
            Fraction(Dropout, nameof(Dropout));
            Fraction(EmbeddingDropout, nameof(EmbeddingDropout));
            Fraction(OutputDropout, nameof(OutputDropout));
            Fraction(WarmupFraction, nameof(WarmupFraction));
            Fraction(Momentum, nameof(Momentum));
            if (!(LearningRate > 0 && float.IsFinite(LearningRate))) throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "LearningRate must be positive.");
            if (!(WeightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(WeightDecay), WeightDecay, "WeightDecay must not be negative.");
            if (!(GradientClipNorm >= 0)) throw new ArgumentOutOfRangeException(nameof(GradientClipNorm), GradientClipNorm, "GradientClipNorm must not be negative.");
            if (EarlyStoppingPatience < 0) throw new ArgumentOutOfRangeException(nameof(EarlyStoppingPatience), EarlyStoppingPatience, "EarlyStoppingPatience must not be negative.");
            if (NumberOfThreads is <= 0 or > RecurrentModel.MaxThreads) throw new ArgumentOutOfRangeException(nameof(NumberOfThreads), NumberOfThreads, $"NumberOfThreads must be between 1 and {RecurrentModel.MaxThreads}.");
        }
    }

    private readonly IHost _host;
    private readonly Options _options;

    internal RecurrentLanguageModelEstimator(IHostEnvironment env, Options options)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _host = env.Register(nameof(RecurrentLanguageModelEstimator));
        _options = options;
    }

    /// <summary>Trains on <paramref name="input"/>.</summary>
    public RecurrentLanguageModelTransformer Fit(IDataView input) => Fit(input, null);

    /// <summary>
    /// Trains on <paramref name="input"/>; with <paramref name="validationData"/> (the same input column), reports its
    /// loss and perplexity after every epoch and keeps the weights of the epoch with the lowest validation loss.
    /// </summary>
    public RecurrentLanguageModelTransformer Fit(IDataView input, IDataView? validationData)
    {
        ArgumentNullException.ThrowIfNull(input);
        using var channel = _host.Start("Training");
        var column = input.Schema.GetColumnOrNull(_options.InputColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(input), $"Input column '{_options.InputColumnName}' not found.");
        bool characters = CheckInput(column);
        var vocabulary = characters ? CountCharacters(input, column) : CountKeys(input, column);
        if (vocabulary.Size <= 2)
            throw new InvalidOperationException($"Column '{column.Name}' holds no {(characters ? "characters" : "tokens")} seen at least {_options.MinimumTokenFrequency} time(s); there is nothing to learn.");
        var stream = LanguageModelStream.Read(input, column.Name, vocabulary, "training");
        if (_options.Backward) Array.Reverse(stream);
        int[]? validation = null;
        if (validationData is not null)
        {
            var validationColumn = validationData.Schema.GetColumnOrNull(_options.InputColumnName)
                ?? throw new ArgumentOutOfRangeException(nameof(validationData), $"Input column '{_options.InputColumnName}' not found in the validation data.");
            if (CheckInput(validationColumn) != characters)
                throw new ArgumentOutOfRangeException(nameof(validationData), $"Column '{validationColumn.Name}' of the validation data has type {validationColumn.Type}; the training data's is {column.Type}.");
            validation = LanguageModelStream.Read(validationData, validationColumn.Name, vocabulary, "validation");
            if (_options.Backward) Array.Reverse(validation);
        }
        long seed = _options.Seed ?? _host.Rand.Next();
        int threads = _options.NumberOfThreads ?? Environment.ProcessorCount;
        int v = vocabulary.Size;
        var config = new NetworkConfig
        {
            Cell = _options.Cell,
            VocabularySize = v,
            InputSize = _options.EmbeddingSize,
            HiddenSize = _options.HiddenSize,
            NumLayers = _options.NumberOfLayers,
            Dropout = _options.Dropout,
            InputDropout = _options.EmbeddingDropout,
            HeadDropout = _options.OutputDropout,
            Head = NetworkHeadKind.PerStep,
            OutputSize = v,
            TieWeights = _options.TieWeights,
        };
        var network = new RecurrentNetwork(config);
        LanguageModelTrainer.Initialize(network, seed);
        int batch = Math.Max(1, Math.Min(_options.BatchSize, stream.Length / 2));
        if (batch < _options.BatchSize)
            channel.Warning($"The training stream holds only {stream.Length:N0} tokens: training with {batch} column(s) instead of {_options.BatchSize}.");
        channel.Info($"Training a {(_options.Backward ? "backward " : "")}{_options.NumberOfLayers}-layer {_options.Cell} language model (hidden {_options.HiddenSize}, {network.Parameters.Length:N0} parameters) " +
            $"over {v:N0} {(characters ? "characters" : "tokens")} (with unknown and end of row) on a stream of {stream.Length:N0} tokens" +
            (validation is null ? "" : $", validating on {validation.Length:N0}") + $"; {batch} columns × {_options.SequenceLength} steps, {threads} thread(s), seed {seed}.");
        var trainer = new LanguageModelTrainer(network, new TrainingSettings
        {
            Epochs = _options.NumberOfEpochs,
            BatchSize = batch,
            LearningRate = _options.LearningRate,
            Optimizer = _options.Optimizer,
            Momentum = _options.Momentum,
            WeightDecay = _options.WeightDecay,
            GradientClipNorm = _options.GradientClipNorm,
            Schedule = _options.LearningRateSchedule,
            WarmupFraction = _options.WarmupFraction,
            EarlyStoppingPatience = _options.EarlyStoppingPatience,
            Threads = threads,
            Seed = seed,
        }, _options.SequenceLength);
        var token = _options.CancellationToken;
        int epoch = 1, lastTenth = 0;
        double recentLoss = 0;
        int recentSteps = 0;
        trainer.Train(stream, validation, () =>
        {
            _host.CheckAlive();
            token.ThrowIfCancellationRequested();
        }, report =>
        {
            channel.Info(Describe(report));
            _options.EpochCallback?.Invoke(report);
            epoch = report.Epoch + 1;
            lastTenth = 0;
        }, (step, steps, loss) =>
        {
            // Progress within an epoch, every tenth of it: the mean loss of the steps since the last message.
            recentLoss += loss;
            recentSteps++;
            int tenth = (int)(10L * step / steps);
            if (tenth > lastTenth && tenth < 10)
            {
                channel.Info($"Epoch {epoch}/{_options.NumberOfEpochs}: {tenth * 10} % (step {step:N0}/{steps:N0}), loss {recentLoss / recentSteps:F4}.");
                lastTenth = tenth;
                recentLoss = 0;
                recentSteps = 0;
            }
        });
        if (validation is not null)
            channel.Info($"Keeping the weights of epoch {trainer.BestEpoch}, the best on the validation data.");
        return new RecurrentLanguageModelTransformer(_host, vocabulary, network.CreateInferenceSibling(), _options.InputColumnName,
            _options.LogLikelihoodColumnName, _options.PerplexityColumnName, _options.Backward);
    }

    private static string Describe(RecurrentEpochInfo r)
    {
        var text = new System.Text.StringBuilder();
        text.Append($"Epoch {r.Epoch}/{r.Epochs}: loss {r.Loss:F4} (perplexity {Math.Exp(r.Loss):F2})");
        if (!double.IsNaN(r.ValidationLoss)) text.Append($", validation loss {r.ValidationLoss:F4} (perplexity {r.ValidationPerplexity:F2}){(r.IsBest ? " (best)" : "")}");
        text.Append($", lr {r.LearningRate:G3}, {r.TokensPerSecond:N0} tokens/s, {r.Elapsed.TotalSeconds:F1} s, ETA {r.Remaining:hh\\:mm\\:ss}");
        return text.ToString();
    }

    /// <summary>True for a text column (characters), false for a vector of keys; otherwise a clear error.</summary>
    private static bool CheckInput(DataViewSchema.Column column)
    {
        if (column.Type is TextDataViewType) return true;
        if (column.Type is VectorDataViewType { ItemType: KeyDataViewType key } && key.RawType == typeof(uint) && key.Count > 0 && key.Count <= LanguageModelVocabulary.MaxKeys)
            return false;
        throw new ArgumentOutOfRangeException(nameof(column), $"Input column '{column.Name}' has type {column.Type}; a language model reads text (characters) or a vector of keys (tokens) of at most 2^24 keys.");
    }

    private LanguageModelVocabulary CountCharacters(IDataView input, DataViewSchema.Column column)
    {
        var counts = new long[char.MaxValue + 1];
        using var cursor = input.GetRowCursor([column]);
        var getter = cursor.GetGetter<ReadOnlyMemory<char>>(column);
        ReadOnlyMemory<char> text = default;
        while (cursor.MoveNext())
        {
            getter(ref text);
            foreach (char c in text.Span) counts[c]++;
        }
        return LanguageModelVocabulary.ForCharacters(counts, _options.MinimumTokenFrequency);
    }

    private LanguageModelVocabulary CountKeys(IDataView input, DataViewSchema.Column column)
    {
        int keyCount = (int)((KeyDataViewType)((VectorDataViewType)column.Type).ItemType).Count;
        var counts = new long[keyCount + 1];
        using (var cursor = input.GetRowCursor([column]))
        {
            var getter = cursor.GetGetter<VBuffer<uint>>(column);
            VBuffer<uint> keys = default;
            while (cursor.MoveNext())
            {
                getter(ref keys);
                foreach (uint k in keys.DenseValues())
                    if (k <= keyCount) counts[k]++;
            }
        }
        string[]? words = null;
        if (column.Annotations.Schema.GetColumnOrNull(AnnotationUtils.Kinds.KeyValues) is { Type: VectorDataViewType { ItemType: TextDataViewType } })
        {
            VBuffer<ReadOnlyMemory<char>> values = default;
            column.GetKeyValues(ref values);
            words = values.DenseValues().Select(w => w.ToString()).ToArray();
        }
        return LanguageModelVocabulary.ForKeys(counts, _options.MinimumTokenFrequency, words);
    }

    /// <summary>The input schema plus the two score columns; checks the input column's type.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        if (!inputSchema.TryFindColumn(_options.InputColumnName, out var column))
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Input column '{_options.InputColumnName}' not found.");
        bool text = column.Kind == SchemaShape.Column.VectorKind.Scalar && column.ItemType is TextDataViewType;
        bool keys = column.Kind != SchemaShape.Column.VectorKind.Scalar && column.IsKey;
        if (!text && !keys)
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Input column '{_options.InputColumnName}' has type {column.ItemType}; a language model reads text or a vector of keys.");
        var result = inputSchema.ToDictionary(c => c.Name);
        result[_options.LogLikelihoodColumnName] = new SchemaShape.Column(_options.LogLikelihoodColumnName, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single, false);
        result[_options.PerplexityColumnName] = new SchemaShape.Column(_options.PerplexityColumnName, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single, false);
        return new SchemaShape(result.Values);
    }
}
