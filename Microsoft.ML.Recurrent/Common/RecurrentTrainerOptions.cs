using Microsoft.ML.Data;
using Microsoft.ML.Recurrent.Layers;
using Microsoft.ML.Recurrent.Training;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// Options shared by the recurrent trainers. The network is: input (an embedding of the token keys, or the dense
/// per-step features) → <see cref="NumberOfLayers"/> recurrent layers of <see cref="Cell"/> with
/// <see cref="HiddenSize"/> units per direction → pooling over each sequence's real steps → a linear head.
/// </summary>
public abstract class RecurrentTrainerOptions
{
    /// <summary>The label column. Default <c>Label</c>.</summary>
    public string LabelColumnName = DefaultColumnNames.Label;

    /// <summary>The feature column: a variable-length vector of keys (token ids) or of <see cref="float"/> values. Default <c>Features</c>.</summary>
    public string FeatureColumnName = DefaultColumnNames.Features;

    /// <summary>Optional example-weight column (<see cref="float"/>). Default none.</summary>
    public string? ExampleWeightColumnName;

    /// <summary>Recurrent cell. Default <see cref="RecurrentCellKind.Lstm"/>.</summary>
    public RecurrentCellKind Cell = RecurrentCellKind.Lstm;

    /// <summary>Embedding width for token input. Default 128.</summary>
    public int EmbeddingSize = 128;

    /// <summary>Values per time step for dense <see cref="float"/> input (the row holds T × this many values). Default 1.</summary>
    public int FeaturesPerStep = 1;

    /// <summary>Hidden units per direction. Default 128.</summary>
    public int HiddenSize = 128;

    /// <summary>Stacked recurrent layers. Default 1.</summary>
    public int NumberOfLayers = 1;

    /// <summary>Whether each layer also reads the sequence backwards (outputs are concatenated). Default true.</summary>
    public bool Bidirectional = true;

    /// <summary>Dropout between recurrent layers during training. Default 0.</summary>
    public float Dropout;

    /// <summary>Dropout on the embedded tokens (or dense features) during training. Default 0.25.</summary>
    public float EmbeddingDropout = 0.25f;

    /// <summary>Dropout on the pooled vector before the linear head during training. Default 0.25.</summary>
    public float HeadDropout = 0.25f;

    /// <summary>How each sequence's outputs become one vector for the head. Default <see cref="PoolingKind.Mean"/> | <see cref="PoolingKind.Max"/>.</summary>
    public PoolingKind Pooling = PoolingKind.Mean | PoolingKind.Max;

    /// <summary>
    /// Token keys seen fewer times than this in the training data are read as the unknown token (key 0), in training
    /// and scoring, so rare words share one learned embedding instead of overfitting one each. 1 keeps every key. Default 2.
    /// </summary>
    public int MinimumTokenFrequency = 2;

    /// <summary>
    /// Sequences longer than this keep their first steps, in training and scoring; 0 = no limit. Default 0 (the accuracy
    /// study found truncation at 256 or 512 tokens costs IMDB 1.1–1.5 points). Training memory grows with the longest
    /// sequence of a batch: about (G + 2)·H·D·4 bytes per token per layer (G = 4 for LSTM).
    /// </summary>
    public int MaximumSequenceLength;

    /// <summary>
    /// A vector-of-text column holding each token's text, aligned one to one with the token keys (e.g. the
    /// <c>TokenizeIntoWords</c> output the keys were made from), for a character-level word encoder (Lample et al.
    /// 2016): each word's characters are read by a small bidirectional LSTM whose final states are concatenated to its
    /// embedding, so words never seen in training still get a representation from their spelling. null = none.
    /// Default null.
    /// </summary>
    public string? CharacterColumnName;

    /// <summary>Character embedding width of the character encoder. Default 25.</summary>
    public int CharacterEmbeddingSize = 25;

    /// <summary>Hidden units per direction of the character encoder; each token gets twice as many features. Default 25.</summary>
    public int CharacterHiddenSize = 25;

    /// <summary>Characters the encoder reads per word at most — the first ⌈k/2⌉ and the last ⌊k/2⌋; 0 = all. Default 0.</summary>
    public int MaximumWordLength;

    /// <summary>
    /// A word-vector text file (GloVe, or fastText <c>.vec</c>: a word and its values per line) whose vectors
    /// initialize the embedding rows of the feature column's words (its key values; a word's lower-cased form is tried
    /// too). Words not in the file keep their random start. The file's width sets <see cref="EmbeddingSize"/>. Token
    /// input only. null = none. Default null.
    /// </summary>
    public string? PretrainedEmbeddingsPath;

    /// <summary>Whether the word embedding stays as initialized (e.g. from <see cref="PretrainedEmbeddingsPath"/>) during training. Default false.</summary>
    public bool FreezeEmbeddings;

    /// <summary>
    /// Wide &amp; deep (Cheng et al. 2016): a numeric vector column of known size — typically ML.NET's
    /// <c>FeaturizeText</c> output, large and sparse — that a linear part of the head reads beside the pooled recurrent
    /// representation; the model's output combines both parts (see <see cref="WideTraining"/>). The vector is never
    /// densified (sparse products and gradients), and its weights start at zero. A row whose wide vector holds NaN or
    /// infinity is skipped in training and scored NaN. null = none. Default null.
    /// </summary>
    public string? WideFeatureColumnName;

    /// <summary>
    /// The wide part learns at <see cref="LearningRate"/> times this: a linear model over normalized n-gram counts needs
    /// far larger weights than a network does. The default is the factor with the best worst case across the study's
    /// data sets in the default <see cref="WideTrainingMode.Ensemble"/> mode (docs/accuracy.md). In
    /// <see cref="WideTrainingMode.Joint"/> mode a fast wide part fits the training rows first and starves the
    /// recurrent part on short phrases; there, 5 was the best worst case. Default 30.
    /// </summary>
    public float WideLearningRateFactor = 30f;

    /// <summary>Dropout on the wide features (each stored entry, during training), which keeps the wide part from fitting the training rows alone. Default 0.</summary>
    public float WideDropout;

    /// <summary>
    /// How the wide and the recurrent part learn: a loss each, the outputs averaged
    /// (<see cref="WideTrainingMode.Ensemble"/>: neither part can starve the other), one loss on their sum
    /// (<see cref="WideTrainingMode.Joint"/>), or the wide part fitting what the recurrent part leaves
    /// (<see cref="WideTrainingMode.Boosted"/>). Scoring and the model format are the same in every mode. Default
    /// <see cref="WideTrainingMode.Ensemble"/>, chosen by the study in docs/accuracy.md.
    /// </summary>
    public WideTrainingMode WideTraining = WideTrainingMode.Ensemble;

    /// <summary>
    /// Language-model pretraining (ULMFiT, Howard &amp; Ruder 2018): before the classifier trains, <c>Fit</c> trains a
    /// language model for this many epochs on the training rows' tokens (and on <see cref="UnlabeledData"/>) with the
    /// classifier's cell, <see cref="EmbeddingSize"/>, <see cref="HiddenSize"/> and <see cref="NumberOfLayers"/> —
    /// a forward model and, for a <see cref="Bidirectional"/> network, a backward one — and starts the classifier's
    /// embedding and recurrent layers from them. A bidirectional network's embedding is then the two models'
    /// embeddings side by side (2 × <see cref="EmbeddingSize"/> wide). Token input only. 0 = none. Default 0.
    /// </summary>
    public int LanguageModelEpochs;

    /// <summary>
    /// The pretraining language model predicts this many of the most frequent tokens (the others, and the rows beyond it,
    /// count as one unknown token): its output layer costs <see cref="HiddenSize"/> multiply-adds per kept token and
    /// position. Rows it does not keep start from its unknown token's embedding. Default 5,000 (on AG News, 5,000 gave
    /// 85.80 % in 252 s and 2,000 gave 85.25 % in 125 s; a first run with 10,000 was stopped after 5 minutes of pretraining: docs/accuracy.md).
    /// </summary>
    public int LanguageModelVocabularySize = 5_000;

    /// <summary>
    /// Extra rows for <see cref="LanguageModelEpochs"/>: unlabeled text with the same feature column, made by the same
    /// fitted featurizer (e.g. the pipeline's fitted transforms applied to a file of unlabeled text). Labels are not
    /// read. null = the training rows only. Default null.
    /// </summary>
    public IDataView? UnlabeledData;

    /// <summary>
    /// A trained token language model (a <see cref="RecurrentLanguageModelTransformer"/>, or a model loaded from a
    /// zip that contains one, e.g. <c>mlContext.Model.Load("lm.zip", out _)</c>) whose embedding and recurrent layers
    /// initialize the network. Its cell, embedding width, hidden size and number of layers replace
    /// <see cref="Cell"/>, <see cref="EmbeddingSize"/>, <see cref="HiddenSize"/> and <see cref="NumberOfLayers"/>.
    /// Its tokens are matched to the feature column's by their words (the key values of both columns) or, when
    /// either has none, by key (then the key counts must agree). Words it does not know start from its unknown
    /// token's embedding. null = none. Default null.
    /// </summary>
    public ITransformer? PretrainedLanguageModel;

    /// <summary>
    /// A backward language model (trained with <see cref="RecurrentLanguageModelEstimator.Options.Backward"/>) for the
    /// reverse direction of a <see cref="Bidirectional"/> network, beside <see cref="PretrainedLanguageModel"/>; the
    /// embedding is then both models' embeddings side by side. null = the reverse direction starts at random. Default null.
    /// </summary>
    public ITransformer? PretrainedBackwardLanguageModel;

    /// <summary>
    /// Discriminative fine-tuning (ULMFiT): the head learns at <see cref="LearningRate"/>, the top recurrent layer at
    /// this factor times it, each layer below at this factor times the one above, the embedding last (ULMFiT uses
    /// 1/2.6 ≈ 0.385). Meant for a network started from a language model. 1 = one learning rate for all. Default 1.
    /// </summary>
    public float DiscriminativeLearningRateFactor = 1f;

    /// <summary>
    /// Gradual unfreezing (ULMFiT): the first epoch trains the head only, each further epoch one more layer group
    /// downwards (recurrent layers, then the embedding); the rest keep their values until their turn. Meant for a
    /// network started from a language model. Default false.
    /// </summary>
    public bool GradualUnfreezing;

    /// <summary>
    /// A <c>.safetensors</c> file of weights with PyTorch's names and shapes — written by
    /// <see cref="RecurrentTransformerBase.SaveAsSafetensors(string)"/>, or by PyTorch (<c>safetensors.torch.save_file</c>
    /// of the <c>state_dict</c> of the module in docs/interop.md) — that the network starts from instead of its seeded
    /// random start. The other options must describe the file's architecture (<see cref="Cell"/>,
    /// <see cref="EmbeddingSize"/>, <see cref="HiddenSize"/>, <see cref="NumberOfLayers"/>, <see cref="Bidirectional"/>,
    /// <see cref="Pooling"/>, …): every tensor is checked by name and shape, and a mismatch names the tensors and both
    /// shapes. For token input, row k of <c>embedding.weight</c> is key k of the feature column (row 0 is key 0, the
    /// missing or unknown token), so it has key count + 1 rows, and <see cref="MinimumTokenFrequency"/> does not apply.
    /// With <see cref="NumberOfEpochs"/> = 0, <c>Fit</c> reads no rows and returns the imported model; otherwise training
    /// continues from it. Not with <see cref="CharacterColumnName"/>, <see cref="PretrainedEmbeddingsPath"/> or a language
    /// model. null = none. Default null.
    /// </summary>
    public string? InitialWeightsPath;

    /// <summary>Passes over the training data; 0 only with <see cref="InitialWeightsPath"/> (the imported weights as they are). Default 5.</summary>
    public int NumberOfEpochs = 5;

    /// <summary>Sequences per mini-batch (also the scoring batch size). Default 32.</summary>
    public int BatchSize = 32;

    /// <summary>Learning rate. Default 0.002.</summary>
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

    /// <summary>Fraction of all steps spent raising the learning rate linearly from 0. Default 0.05.</summary>
    public float WarmupFraction = 0.05f;

    /// <summary>
    /// Fraction of the training rows held out for validation when <c>Fit</c> gets no validation data (0 = none).
    /// With validation data the best epoch's weights are kept. Default 0.
    /// </summary>
    public float ValidationFraction;

    /// <summary>Stop after this many epochs without improvement of the validation metric; 0 = never stop early. Default 0.</summary>
    public int EarlyStoppingPatience;

    /// <summary>Validation metric for early stopping and best-epoch selection. Default <see cref="EarlyStoppingMetric.Auto"/> (accuracy for classification, loss for regression).</summary>
    public EarlyStoppingMetric EarlyStoppingMetric = EarlyStoppingMetric.Auto;

    /// <summary>
    /// Threads for training and for scoring with the trained model (saved with it); null = all processors. Scoring one
    /// batch uses at most 2 (the two directions of a layer); results do not depend on it. Default null.
    /// </summary>
    public int? NumberOfThreads;

    /// <summary>
    /// Stops training (with <see cref="OperationCanceledException"/>) within one batch when cancelled. ML.NET's own
    /// <c>MLContext.CancelExecution()</c> is honoured the same way, but ML.NET 5.0.1 keeps that method internal.
    /// </summary>
    public CancellationToken CancellationToken;

    /// <summary>Called after every epoch with its loss, accuracy, validation metrics, throughput and ETA. Default none.</summary>
    public Action<RecurrentEpochInfo>? EpochCallback;

    /// <summary>Seed for initialization, shuffling and dropout; null takes one from the <c>MLContext</c>'s seed. Default null.</summary>
    public int? Seed;

    internal void Validate()
    {
        static void Positive(int value, string name)
        {
            if (value <= 0) throw new ArgumentOutOfRangeException(name, value, $"{name} must be positive.");
        }
        if (string.IsNullOrWhiteSpace(LabelColumnName)) throw new ArgumentException("LabelColumnName must be set.", nameof(LabelColumnName));
        if (string.IsNullOrWhiteSpace(FeatureColumnName)) throw new ArgumentException("FeatureColumnName must be set.", nameof(FeatureColumnName));
        Positive(EmbeddingSize, nameof(EmbeddingSize));
        Positive(FeaturesPerStep, nameof(FeaturesPerStep));
        Positive(HiddenSize, nameof(HiddenSize));
        Positive(NumberOfLayers, nameof(NumberOfLayers));
        if (InitialWeightsPath is null)
            Positive(NumberOfEpochs, nameof(NumberOfEpochs));
        else if (NumberOfEpochs < 0)
            throw new ArgumentOutOfRangeException(nameof(NumberOfEpochs), NumberOfEpochs, "NumberOfEpochs must not be negative (0 keeps the weights of InitialWeightsPath as they are).");
        if (InitialWeightsPath is not null && string.IsNullOrWhiteSpace(InitialWeightsPath))
            throw new ArgumentException("InitialWeightsPath must be null or a file path.", nameof(InitialWeightsPath));
        if (InitialWeightsPath is not null && (CharacterColumnName is not null || PretrainedEmbeddingsPath is not null || LanguageModelEpochs > 0 || PretrainedLanguageModel is not null))
            throw new ArgumentException("InitialWeightsPath sets every weight: it cannot be combined with CharacterColumnName (whose character vocabulary is built from the training rows), " +
                "PretrainedEmbeddingsPath, LanguageModelEpochs or PretrainedLanguageModel.", nameof(InitialWeightsPath));
        Positive(BatchSize, nameof(BatchSize));
        if (BatchSize > RecurrentModel.MaxBatchSize) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, $"BatchSize must be at most {RecurrentModel.MaxBatchSize}.");
        Positive(MinimumTokenFrequency, nameof(MinimumTokenFrequency));
        Positive(CharacterEmbeddingSize, nameof(CharacterEmbeddingSize));
        Positive(CharacterHiddenSize, nameof(CharacterHiddenSize));
        if (MaximumWordLength < 0) throw new ArgumentOutOfRangeException(nameof(MaximumWordLength), MaximumWordLength, "MaximumWordLength must not be negative.");
        if (WideFeatureColumnName is not null && string.IsNullOrWhiteSpace(WideFeatureColumnName)) throw new ArgumentException("WideFeatureColumnName must be null or a column name.", nameof(WideFeatureColumnName));
        if (CharacterColumnName is not null && string.IsNullOrWhiteSpace(CharacterColumnName)) throw new ArgumentException("CharacterColumnName must be null or a column name.", nameof(CharacterColumnName));
        if (!Enum.IsDefined(Cell)) throw new ArgumentOutOfRangeException(nameof(Cell), Cell, "Unknown cell kind.");
        if (!Enum.IsDefined(Optimizer)) throw new ArgumentOutOfRangeException(nameof(Optimizer), Optimizer, "Unknown optimizer.");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentOutOfRangeException(nameof(Dropout), Dropout, "Dropout must be in [0, 1).");
        if (!(EmbeddingDropout >= 0 && EmbeddingDropout < 1)) throw new ArgumentOutOfRangeException(nameof(EmbeddingDropout), EmbeddingDropout, "EmbeddingDropout must be in [0, 1).");
        if (!(HeadDropout >= 0 && HeadDropout < 1)) throw new ArgumentOutOfRangeException(nameof(HeadDropout), HeadDropout, "HeadDropout must be in [0, 1).");
        if (!(WarmupFraction >= 0 && WarmupFraction < 1)) throw new ArgumentOutOfRangeException(nameof(WarmupFraction), WarmupFraction, "WarmupFraction must be in [0, 1).");
        if (!(ValidationFraction >= 0 && ValidationFraction < 1)) throw new ArgumentOutOfRangeException(nameof(ValidationFraction), ValidationFraction, "ValidationFraction must be in [0, 1).");
        if (EarlyStoppingPatience < 0) throw new ArgumentOutOfRangeException(nameof(EarlyStoppingPatience), EarlyStoppingPatience, "EarlyStoppingPatience must not be negative.");
        if (NumberOfThreads is <= 0 or > RecurrentModel.MaxThreads) throw new ArgumentOutOfRangeException(nameof(NumberOfThreads), NumberOfThreads, $"NumberOfThreads must be between 1 and {RecurrentModel.MaxThreads}.");
        if (!Enum.IsDefined(LearningRateSchedule)) throw new ArgumentOutOfRangeException(nameof(LearningRateSchedule), LearningRateSchedule, "Unknown schedule.");
        if (MaximumSequenceLength < 0) throw new ArgumentOutOfRangeException(nameof(MaximumSequenceLength), MaximumSequenceLength, "MaximumSequenceLength must not be negative.");
        if (!(LearningRate > 0 && float.IsFinite(LearningRate))) throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "LearningRate must be positive.");
        if (!(WeightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(WeightDecay), WeightDecay, "WeightDecay must not be negative.");
        if (!(GradientClipNorm >= 0)) throw new ArgumentOutOfRangeException(nameof(GradientClipNorm), GradientClipNorm, "GradientClipNorm must not be negative.");
        if (!(Momentum >= 0 && Momentum < 1)) throw new ArgumentOutOfRangeException(nameof(Momentum), Momentum, "Momentum must be in [0, 1).");
        Positive(LanguageModelVocabularySize, nameof(LanguageModelVocabularySize));
        if (!Enum.IsDefined(WideTraining)) throw new ArgumentOutOfRangeException(nameof(WideTraining), WideTraining, "Unknown WideTrainingMode.");
        if (!(WideDropout >= 0 && WideDropout < 1)) throw new ArgumentOutOfRangeException(nameof(WideDropout), WideDropout, "WideDropout must be in [0, 1).");
        if (!(WideLearningRateFactor > 0 && float.IsFinite(WideLearningRateFactor)))
            throw new ArgumentOutOfRangeException(nameof(WideLearningRateFactor), WideLearningRateFactor, "WideLearningRateFactor must be positive.");
        if (!(DiscriminativeLearningRateFactor > 0 && DiscriminativeLearningRateFactor <= 1))
            throw new ArgumentOutOfRangeException(nameof(DiscriminativeLearningRateFactor), DiscriminativeLearningRateFactor, "DiscriminativeLearningRateFactor must be in (0, 1].");
        if (LanguageModelEpochs < 0) throw new ArgumentOutOfRangeException(nameof(LanguageModelEpochs), LanguageModelEpochs, "LanguageModelEpochs must not be negative.");
        if (LanguageModelEpochs > 0 && PretrainedLanguageModel is not null)
            throw new ArgumentException("Set LanguageModelEpochs (pretrain here) or PretrainedLanguageModel (a trained one), not both.", nameof(PretrainedLanguageModel));
        if (UnlabeledData is not null && LanguageModelEpochs == 0)
            throw new ArgumentException("UnlabeledData is read only for language-model pretraining: set LanguageModelEpochs too.", nameof(UnlabeledData));
        if (PretrainedBackwardLanguageModel is not null && PretrainedLanguageModel is null)
            throw new ArgumentException("PretrainedBackwardLanguageModel needs PretrainedLanguageModel (the forward model) too.", nameof(PretrainedBackwardLanguageModel));
        if (PretrainedBackwardLanguageModel is not null && !Bidirectional)
            throw new ArgumentException("PretrainedBackwardLanguageModel initializes the reverse direction: set Bidirectional.", nameof(PretrainedBackwardLanguageModel));
        if ((LanguageModelEpochs > 0 || PretrainedLanguageModel is not null) && (PretrainedEmbeddingsPath is not null || CharacterColumnName is not null))
            throw new ArgumentException("A language model initializes the embedding: it cannot be combined with PretrainedEmbeddingsPath or CharacterColumnName.", nameof(PretrainedLanguageModel));
        if ((Pooling & (PoolingKind.FinalState | PoolingKind.Mean | PoolingKind.Max | PoolingKind.Attention)) == 0
            || (Pooling & ~(PoolingKind.FinalState | PoolingKind.Mean | PoolingKind.Max | PoolingKind.InputMean | PoolingKind.Attention)) != 0)
            throw new ArgumentOutOfRangeException(nameof(Pooling), Pooling, "Choose one or more of FinalState, Mean, Max and Attention, optionally with InputMean.");
    }
}
