// usage: dotnet run --project build/CompatFixtures -- <output directory>
// Trains nine small pipelines with the library as it is now and writes, for each fixture name N:
//   N.zip          the model (mlContext.Model.Save)
//   N.input.idv    the rows to score (ML.NET binary IDataView, the model's input schema)
//   N.scores.tsv   the scores this version gives: one line per row, columns Score (comma-separated floats, "R"
//                  format) and PredictedLabel / Probability where the task has them
using System.Globalization;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Recurrent;
using Microsoft.ML.Recurrent.Tests.MLNet; // TestData: the tests' small synthetic data sets
using Microsoft.ML.Recurrent.Tests.Tagging; // TaggingData

if (args.Length != 1)
{
    Console.Error.WriteLine("usage: CompatFixtures <output directory>");
    return 2;
}
string outDir = args[0];
Directory.CreateDirectory(outDir);

// Multiclass: words → keys (rare words map to the unknown row), bidirectional 2-layer LSTM, mean|max pooling.
{
    var ml = new MLContext(seed: 11);
    var train = ml.Data.LoadFromEnumerable(TestData.Topic(300, 1));
    var test = ml.Data.LoadFromEnumerable(TestData.Topic(40, 2));
    var model = ml.Transforms.Conversion.MapValueToKey("Label")
        .Append(ml.Transforms.Text.TokenizeIntoWords("Tokens", "Text"))
        .Append(ml.Transforms.Conversion.MapValueToKey("Features", "Tokens"))
        .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
        {
            EmbeddingSize = 8, HiddenSize = 8, NumberOfLayers = 2, NumberOfEpochs = 3, BatchSize = 16, LearningRate = 1e-2f,
            MinimumTokenFrequency = 3, Seed = 1,
        }))
        .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
        .Fit(train);
    Write(ml, "multiclass", model, train.Schema, test);
}

// Binary: GRU, final-state pooling, a maximum sequence length.
{
    var ml = new MLContext(seed: 12);
    var train = ml.Data.LoadFromEnumerable(TestData.Sentiment(300, 3));
    var test = ml.Data.LoadFromEnumerable(TestData.Sentiment(40, 4));
    var model = ml.Transforms.Text.TokenizeIntoWords("Tokens", "Text")
        .Append(ml.Transforms.Conversion.MapValueToKey("Features", "Tokens"))
        .Append(ml.BinaryClassification.Trainers.Recurrent(new RecurrentBinaryTrainer.Options
        {
            Cell = RecurrentCellKind.Gru, EmbeddingSize = 8, HiddenSize = 8, NumberOfEpochs = 3,
            BatchSize = 16, LearningRate = 1e-2f, Pooling = PoolingKind.FinalState,
            MaximumSequenceLength = 6, Seed = 2,
        }))
        .Fit(train);
    Write(ml, "binary", model, train.Schema, test);
}

// Regression on dense steps: unidirectional RNN-tanh, 2 features per step.
{
    var ml = new MLContext(seed: 13);
    var train = ml.Data.LoadFromEnumerable(TestData.Series(200, 5));
    var test = ml.Data.LoadFromEnumerable(TestData.Series(40, 6));
    var model = ml.Regression.Trainers.Recurrent(new RecurrentRegressionTrainer.Options
    {
        Cell = RecurrentCellKind.RnnTanh, FeaturesPerStep = 2, HiddenSize = 8, NumberOfEpochs = 3,
        BatchSize = 16, LearningRate = 1e-2f, Bidirectional = false, Seed = 3,
    }).Fit(train);
    Write(ml, "regression", model, train.Schema, test);
}

// TokenizeToIds with a BERT vocabulary stored in the zip; RNN-ReLU, final state | max | input mean pooling.
{
    var ml = new MLContext(seed: 14);
    var rows = TestData.Topic(300, 7);
    string vocabulary = Path.Combine(Path.GetTempPath(), $"compat-vocab-{Guid.NewGuid():N}.txt");
    var words = rows.SelectMany(r => r.Text.Split(' ')).Distinct().Order(StringComparer.Ordinal).Take(14);
    File.WriteAllLines(vocabulary, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", .. words, "##s", "##ing"]);
    var train = ml.Data.LoadFromEnumerable(rows);
    var test = ml.Data.LoadFromEnumerable(TestData.Topic(40, 8));
    var model = ml.Transforms.Conversion.MapValueToKey("Label")
        .Append(ml.Transforms.Text.TokenizeToIds("Features", "Text", TokenizerData.Bert(vocabulary)))
        .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
        {
            Cell = RecurrentCellKind.RnnRelu, EmbeddingSize = 8, HiddenSize = 8, NumberOfEpochs = 3,
            BatchSize = 16, LearningRate = 1e-2f, MinimumTokenFrequency = 1, Seed = 4,
            Pooling = PoolingKind.FinalState | PoolingKind.Max | PoolingKind.InputMean,
        }))
        .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
        .Fit(train);
    File.Delete(vocabulary);
    Write(ml, "tokenizetoids", model, train.Schema, test);
}
// TokenizeToIds with tiktoken cl100k_base (format version 2 and later store the encoding in the zip).
{
    var ml = new MLContext(seed: 15);
    var train = ml.Data.LoadFromEnumerable(TestData.Topic(200, 9));
    var test = ml.Data.LoadFromEnumerable(TestData.Topic(40, 10));
    var model = ml.Transforms.Conversion.MapValueToKey("Label")
        .Append(ml.Transforms.Text.TokenizeToIds("Features", "Text", TokenizerData.Tiktoken("cl100k_base")))
        .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
        {
            Cell = RecurrentCellKind.Gru, EmbeddingSize = 4, HiddenSize = 4, NumberOfEpochs = 2,
            BatchSize = 16, LearningRate = 1e-2f, Seed = 5,
        }))
        .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
        .Fit(train);
    Write(ml, "tiktoken", model, train.Schema, test);
}
// A tagger with a BIO-constrained CRF and character features (format version 3 and later).
{
    var ml = new MLContext(seed: 16);
    static List<TaggedSentence> Entities(int count, int seed) => TaggingData.Sentences(count, seed)
        .Select(r => new TaggedSentence { Tokens = r.Tokens, Tags = r.Tags.Select(t => t.Contains('-') ? t : "O").ToArray() }).ToList();
    var train = ml.Data.LoadFromEnumerable(Entities(200, 11));
    var test = ml.Data.LoadFromEnumerable(Entities(30, 12));
    var model = TaggingData.Featurizer(ml)
        .Append(ml.MulticlassClassification.Trainers.RecurrentTagger(new RecurrentTaggerTrainer.Options
        {
            EmbeddingSize = 6, HiddenSize = 6, NumberOfEpochs = 2, BatchSize = 16, LearningRate = 1e-2f, Seed = 6,
            UseCrf = true, TagScheme = TagScheme.Bio, OutputProbabilities = true,
            CharacterColumnName = "Tokens", CharacterEmbeddingSize = 4, CharacterHiddenSize = 4,
        }))
        .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
        .Fit(train);
    Write(ml, "tagger", model, train.Schema, test);
}

// A classifier applied as a featurizer: its pooled representation (format version 3 and later).
{
    var ml = new MLContext(seed: 17);
    var train = ml.Data.LoadFromEnumerable(TestData.Topic(200, 13));
    var featurizer = ml.Transforms.Conversion.MapValueToKey("Label").Append(TestData.TokenKeys(ml)).Fit(train);
    var classifier = ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
    {
        EmbeddingSize = 6, HiddenSize = 6, NumberOfEpochs = 2, Seed = 7,
    }).Fit(featurizer.Transform(train));
    var model = featurizer.Append(ml.Transforms.RecurrentFeatures(classifier).Fit(featurizer.Transform(train)));
    Write(ml, "featurizer", model, train.Schema, ml.Data.LoadFromEnumerable(TestData.Topic(30, 14)));
}

// Wide & deep after FeaturizeText, attention pooling, started from language models pretrained inside Fit (format version 4 and later).
{
    var ml = new MLContext(seed: 19);
    var train = ml.Data.LoadFromEnumerable(TestData.Topic(200, 15));
    var model = ml.Transforms.Conversion.MapValueToKey("Label")
        .Append(ml.Transforms.Text.FeaturizeText("Wide", "Text"))
        .Append(TestData.TokenKeys(ml))
        .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
        {
            EmbeddingSize = 6, HiddenSize = 6, NumberOfEpochs = 2, Seed = 3, WideFeatureColumnName = "Wide",
            Pooling = PoolingKind.Max | PoolingKind.Attention, LanguageModelEpochs = 1, LanguageModelVocabularySize = 30,
        }))
        .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
        .Fit(train);
    Write(ml, "widedeep", model, train.Schema, ml.Data.LoadFromEnumerable(TestData.Topic(30, 16)));
}

// A backward word language model (language-model entry version 0x00010002 and later).
{
    var ml = new MLContext(seed: 23);
    var train = ml.Data.LoadFromEnumerable(TestData.Topic(200, 17));
    var model = TestData.TokenKeys(ml)
        .Append(ml.Transforms.Text.RecurrentLanguageModel(new RecurrentLanguageModelEstimator.Options
        {
            InputColumnName = "Features", EmbeddingSize = 8, HiddenSize = 8, NumberOfLayers = 1, SequenceLength = 16, BatchSize = 4,
            NumberOfEpochs = 1, Seed = 5, Backward = true,
        }))
        .Fit(train);
    Write(ml, "backwardlm", model, train.Schema, ml.Data.LoadFromEnumerable(TestData.Topic(30, 18)));
}
return 0;

void Write(MLContext ml, string name, ITransformer model, DataViewSchema schema, IDataView test)
{
    ml.Model.Save(model, schema, Path.Combine(outDir, name + ".zip"));
    using (var stream = File.Create(Path.Combine(outDir, name + ".input.idv")))
        ml.Data.SaveAsBinary(test, stream, keepHidden: false);
    File.WriteAllText(Path.Combine(outDir, name + ".scores.tsv"), Scores.Dump(model.Transform(test)));
    Console.WriteLine($"wrote {name}");
}

internal static class Scores
{
    /// <summary>Score, Probability and PredictedLabel of every row, tab-separated, floats in round-trip format.</summary>
    public static string Dump(IDataView scored)
    {
        var inv = CultureInfo.InvariantCulture;
        var names = new[] { "Score", "Probability", "PredictedLabel", "RecurrentFeatures", "LogLikelihood", "Perplexity" }.Where(n => scored.Schema.GetColumnOrNull(n) is not null).ToArray();
        var text = new StringBuilder(string.Join('\t', names)).Append('\n');
        using var cursor = scored.GetRowCursor(names.Select(n => scored.Schema[n]));
        var writers = names.Select(n => Writer(cursor, scored.Schema[n])).ToArray();
        while (cursor.MoveNext())
            text.AppendJoin('\t', writers.Select(w => w())).Append('\n');
        return text.ToString();

        Func<string> Writer(DataViewRowCursor c, DataViewSchema.Column column)
        {
            var type = column.Type;
            if (type == NumberDataViewType.Single)
            {
                var get = c.GetGetter<float>(column);
                return () => { float v = 0; get(ref v); return v.ToString("R", inv); };
            }
            if (type is VectorDataViewType { ItemType: TextDataViewType })
            {
                var get = c.GetGetter<VBuffer<ReadOnlyMemory<char>>>(column);
                return () => { VBuffer<ReadOnlyMemory<char>> v = default; get(ref v); return string.Join(' ', v.DenseValues()); };
            }
            if (type is VectorDataViewType)
            {
                var get = c.GetGetter<VBuffer<float>>(column);
                return () => { VBuffer<float> v = default; get(ref v); return string.Join(',', v.DenseValues().Select(x => x.ToString("R", inv))); };
            }
            if (type is BooleanDataViewType)
            {
                var get = c.GetGetter<bool>(column);
                return () => { bool v = false; get(ref v); return v ? "true" : "false"; };
            }
            var text = c.GetGetter<ReadOnlyMemory<char>>(column);
            return () => { ReadOnlyMemory<char> v = default; text(ref v); return v.ToString(); };
        }
    }
}
