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
/// <typeparam name="TTransformer">The transformer that <see cref="Fit"/> returns.</typeparam>
public abstract class RecurrentTrainerBase<TTransformer> : IEstimator<TTransformer>
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

    /// <summary>The label as a training target: class index, 0/1 or value; NaN when the row's label is missing (the row is skipped).</summary>
    private protected abstract Func<float> MakeTargetGetter(DataViewRow row, DataViewSchema.Column label);

    private protected abstract TTransformer MakeTransformer(RecurrentModel model);

    /// <summary>The output columns this trainer's transformer adds, given the input's label column.</summary>
    private protected abstract IEnumerable<SchemaShape.Column> OutputColumns(SchemaShape.Column label);

    /// <summary>Trains the network on <paramref name="input"/> and returns the transformer that scores with it.</summary>
    public TTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var schema = input.Schema;
        var label = schema.GetColumnOrNull(TrainerOptions.LabelColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(input), $"Label column '{TrainerOptions.LabelColumnName}' not found in the training data.");
        int outputs = CheckLabel(label);
        var sequenceInput = SequenceInput.FromSchema(schema, TrainerOptions.FeatureColumnName, TrainerOptions.FeaturesPerStep, TrainerOptions.MaximumSequenceLength);
        DataViewSchema.Column? weight = null;
        if (TrainerOptions.ExampleWeightColumnName is { } weightName)
        {
            weight = schema.GetColumnOrNull(weightName)
                ?? throw new ArgumentOutOfRangeException(nameof(input), $"Example weight column '{weightName}' not found in the training data.");
            if (weight.Value.Type != NumberDataViewType.Single)
                throw new ArgumentOutOfRangeException(nameof(input), $"Example weight column '{weightName}' has type {weight.Value.Type}; expected Single.");
        }

        using var channel = Host.Start("Training");
        var data = ReadTrainingData(input, label, sequenceInput, weight, channel);
        long seed = TrainerOptions.Seed ?? Host.Rand.Next();
        var network = new RecurrentNetwork(new NetworkConfig
        {
            Cell = TrainerOptions.Cell,
            VocabularySize = sequenceInput.VocabularySize,
            InputSize = sequenceInput.IsTokens ? TrainerOptions.EmbeddingSize : TrainerOptions.FeaturesPerStep,
            HiddenSize = TrainerOptions.HiddenSize,
            NumLayers = TrainerOptions.NumberOfLayers,
            Bidirectional = TrainerOptions.Bidirectional,
            Dropout = TrainerOptions.Dropout,
            Pooling = TrainerOptions.Pooling,
            OutputSize = outputs,
        });
        network.Initialize(seed);
        channel.Info($"Training a {(TrainerOptions.Bidirectional ? "bidirectional " : "")}{TrainerOptions.NumberOfLayers}-layer {TrainerOptions.Cell} " +
            $"(hidden {TrainerOptions.HiddenSize}, {network.Parameters.Length:N0} parameters) on {data.Count:N0} rows, {data.TotalSteps:N0} steps, seed {seed}.");
        var trainer = new SequenceTrainer(network, Objective, new TrainingSettings
        {
            Epochs = TrainerOptions.NumberOfEpochs,
            BatchSize = TrainerOptions.BatchSize,
            LearningRate = TrainerOptions.LearningRate,
            Optimizer = TrainerOptions.Optimizer,
            Momentum = TrainerOptions.Momentum,
            WeightDecay = TrainerOptions.WeightDecay,
            GradientClipNorm = TrainerOptions.GradientClipNorm,
            Seed = seed,
        });
        trainer.Train(data, Host.CheckAlive, report => channel.Info(
            $"Epoch {report.Epoch}/{TrainerOptions.NumberOfEpochs}: loss {report.Loss:F4}" +
            (double.IsNaN(report.Accuracy) ? "" : $", accuracy {report.Accuracy:P2}") +
            $", {report.TokensPerSecond:N0} steps/s, {report.Elapsed.TotalSeconds:F1} s"));
        var labelValues = Objective == Objective.Multiclass ? LabelKeyValues.FromColumn(label) : null;
        if (labelValues is not null && labelValues.Count != outputs)
            labelValues = null;
        return MakeTransformer(new RecurrentModel(sequenceInput, Objective, network, labelValues, TrainerOptions.BatchSize));
    }

    private SequenceDataset ReadTrainingData(IDataView input, DataViewSchema.Column label, SequenceInput sequenceInput,
        DataViewSchema.Column? weight, IChannel channel)
    {
        var feature = input.Schema[TrainerOptions.FeatureColumnName];
        var columns = new List<DataViewSchema.Column> { label, feature };
        if (weight is not null) columns.Add(weight.Value);
        var tokens = new List<int>();
        var features = new List<float>();
        var lengths = new List<int>();
        var targets = new List<float>();
        var weights = new List<float>();
        long skipped = 0;
        using (var cursor = input.GetRowCursor(columns))
        {
            var target = MakeTargetGetter(cursor, label);
            var tokenGetter = sequenceInput.IsTokens ? cursor.GetGetter<VBuffer<uint>>(feature) : null;
            var featureGetter = sequenceInput.IsTokens ? null : cursor.GetGetter<VBuffer<float>>(feature);
            var weightGetter = weight is null ? null : cursor.GetGetter<float>(weight.Value);
            VBuffer<uint> tokenBuffer = default;
            VBuffer<float> featureBuffer = default;
            while (cursor.MoveNext())
            {
                float y = target();
                float w = 1;
                weightGetter?.Invoke(ref w);
                if (float.IsNaN(y) || !(w > 0) || !float.IsFinite(w))
                {
                    skipped++;
                    continue;
                }
                if (tokenGetter is not null)
                {
                    tokenGetter(ref tokenBuffer);
                    lengths.Add(sequenceInput.ReadTokens(tokenBuffer, cursor.Position, tokens));
                }
                else
                {
                    featureGetter!(ref featureBuffer);
                    lengths.Add(sequenceInput.ReadFeatures(featureBuffer, cursor.Position, features));
                }
                targets.Add(y);
                if (weight is not null) weights.Add(w);
            }
        }
        if (skipped > 0)
            channel.Warning($"Skipped {skipped:N0} rows with a missing label or a non-positive weight.");
        if (lengths.Count == 0)
            throw new InvalidOperationException("The training data has no usable rows (every label is missing, or the data is empty).");
        return new SequenceDataset(tokens.ToArray(), features.ToArray(), sequenceInput.IsTokens ? 0 : sequenceInput.FeaturesPerStep,
            lengths.ToArray(), targets.ToArray(), weights.ToArray());
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
