using Microsoft.ML.Data;
using Microsoft.ML.Recurrent.Tests.MLNet;

namespace Microsoft.ML.Recurrent.Tests.LanguageModeling;

/// <summary>
/// Classifiers that start from language models through ML.NET: pretraining inside Fit, a saved language model (matched
/// by word even when its featurizer numbered the words differently), backward models, and bad combinations.
/// </summary>
[TestClass]
public sealed class TransferLearningTests
{
    public TestContext TestContext { get; set; } = null!;

    private static RecurrentMulticlassTrainer.Options Classifier(bool bidirectional) => new()
    {
        EmbeddingSize = 12, HiddenSize = 16, NumberOfEpochs = 4, BatchSize = 16, LearningRate = 1e-2f, Bidirectional = bidirectional,
        MinimumTokenFrequency = 1, Seed = 3, NumberOfThreads = 1,
    };

    private static RecurrentLanguageModelEstimator.Options LanguageModel(bool backward) => new()
    {
        InputColumnName = "Features", EmbeddingSize = 12, HiddenSize = 16, NumberOfLayers = 1, SequenceLength = 16, BatchSize = 8,
        NumberOfEpochs = 2, LearningRate = 1e-2f, Dropout = 0, OutputDropout = 0, Seed = 5, NumberOfThreads = 1, Backward = backward,
    };

    private static IEstimator<ITransformer> Pipeline(MLContext ml, RecurrentMulticlassTrainer.Options options) =>
        ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(TestData.TokenKeys(ml))
            .Append(ml.MulticlassClassification.Trainers.Recurrent(options))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void PretrainingInsideFitLearnsSavesAndLoads(bool bidirectional)
    {
        var ml = new MLContext(seed: 1);
        var messages = new List<string>();
        ml.Log += (_, e) => { if (e.Message.Contains("anguage")) lock (messages) messages.Add(e.Message); };
        var train = ml.Data.LoadFromEnumerable(TestData.Topic(400, 1));
        var test = ml.Data.LoadFromEnumerable(TestData.Topic(200, 2));
        var unlabeled = ml.Data.LoadFromEnumerable(TestData.Topic(300, 7));
        var options = Classifier(bidirectional);
        options.LanguageModelEpochs = 2;
        // The unlabeled rows go through the same fitted featurizer as the training rows.
        var featurizer = TestData.TokenKeys(ml).Fit(train);
        options.UnlabeledData = featurizer.Transform(unlabeled);
        var model = Pipeline(ml, options).Fit(train);
        TestContext.WriteLine(string.Join("\n", messages));
        Assert.IsTrue(messages.Any(m => m.Contains("Language model (forward) epoch 2/2")), "forward pretraining reports its epochs");
        Assert.AreEqual(bidirectional, messages.Any(m => m.Contains("Language model (backward) epoch 2/2")), "a backward model exactly for a bidirectional network");
        Assert.IsTrue(messages.Any(m => m.Contains("300 unlabeled rows")), "the unlabeled rows are read");
        var classifier = ((IEnumerable<ITransformer>)model).OfType<RecurrentMulticlassTransformer>().Single();
        Assert.AreEqual(bidirectional ? 24 : 12, classifier.Model.Network.Config.InputSize, "the embeddings side by side for a bidirectional network");
        var scored = model.Transform(test);
        var accuracy = ml.MulticlassClassification.Evaluate(scored).MicroAccuracy;
        Assert.IsTrue(accuracy > 0.9, $"accuracy {accuracy}");

        using var stream = new MemoryStream();
        ml.Model.Save(model, train.Schema, stream);
        stream.Position = 0;
        var loaded = ml.Model.Load(stream, out _);
        CollectionAssert.AreEqual(scored.GetColumn<float[]>("Score").SelectMany(x => x).ToArray(),
            loaded.Transform(test).GetColumn<float[]>("Score").SelectMany(x => x).ToArray());
    }

    /// <summary>
    /// With two threads the forward and backward models train side by side; the classifier is bitwise the same as with
    /// one thread. A small language-model vocabulary reads the rarer words as its unknown token.
    /// </summary>
    [TestMethod]
    public void PretrainingIsTheSameOnOneAndTwoThreads()
    {
        float[] Scores(int threads)
        {
            var ml = new MLContext(seed: 1);
            var options = Classifier(bidirectional: true);
            options.LanguageModelEpochs = 1;
            options.LanguageModelVocabularySize = 10;
            options.NumberOfEpochs = 1;
            options.NumberOfThreads = threads;
            var messages = new List<string>();
            ml.Log += (_, e) => { if (e.Message.Contains("vocabulary")) lock (messages) messages.Add(e.Message); };
            var model = Pipeline(ml, options).Fit(ml.Data.LoadFromEnumerable(TestData.Topic(200, 1)));
            Assert.IsTrue(messages.Any(m => m.Contains("the 10 most frequent of")), string.Join("\n", messages));
            return model.Transform(ml.Data.LoadFromEnumerable(TestData.Topic(50, 2))).GetColumn<float[]>("Score").SelectMany(x => x).ToArray();
        }
        CollectionAssert.AreEqual(Scores(1), Scores(2));
    }

    /// <summary>
    /// Gradual unfreezing from a language model: after one epoch only the head has moved (embedding and recurrent
    /// weights are still the model's); after two, the recurrent layer has moved and the embedding not yet.
    /// Discriminative rates are accepted and change the result.
    /// </summary>
    [TestMethod]
    public void GradualUnfreezingTrainsTheHeadFirstThenOneGroupPerEpoch()
    {
        var ml = new MLContext(seed: 1);
        var featurizer = TestData.TokenKeys(ml).Fit(ml.Data.LoadFromEnumerable(TestData.Topic(300, 4)));
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(TestData.Topic(300, 4)))
            .Transform(featurizer.Transform(ml.Data.LoadFromEnumerable(TestData.Topic(300, 4))));
        var lm = ml.Transforms.Text.RecurrentLanguageModel(LanguageModel(backward: false)).Fit(data);
        float[] Values(RecurrentMulticlassTransformer t, string name) => t.Model.Network.Parameters.Value(t.Model.Network.Parameters[name]).ToArray();
        float[] LmValues(string name) => lm.Network.Parameters.Value(lm.Network.Parameters[name]).ToArray();
        RecurrentMulticlassTransformer Train(int epochs, bool gradual, float factor = 1f)
        {
            var options = Classifier(bidirectional: false);
            options.PretrainedLanguageModel = lm;
            options.NumberOfEpochs = epochs;
            options.GradualUnfreezing = gradual;
            options.DiscriminativeLearningRateFactor = factor;
            options.EmbeddingDropout = 0; // so that "unchanged" is exact for every row
            return ml.MulticlassClassification.Trainers.Recurrent(options).Fit(data);
        }
        var one = Train(1, gradual: true);
        CollectionAssert.AreEqual(LmValues("rnn.weight_hh_l0"), Values(one, "rnn.weight_hh_l0"), "epoch 1 trains the head only");
        CollectionAssert.AreEqual(LmValues("rnn.bias_ih_l0"), Values(one, "rnn.bias_ih_l0"));
        var two = Train(2, gradual: true);
        CollectionAssert.AreNotEqual(LmValues("rnn.weight_hh_l0"), Values(two, "rnn.weight_hh_l0"), "epoch 2 trains the recurrent layer");
        // The embedding rows are the language model's ids (same featurizer: matched by word, every key known).
        var embedding = Values(two, "embedding.weight");
        var words = new VBuffer<ReadOnlyMemory<char>>();
        data.Schema["Features"].GetKeyValues(ref words);
        var lmEmbedding = LmValues("embedding.weight");
        var list = words.DenseValues().ToArray();
        for (int key = 1; key <= list.Length; key++)
        {
            int id = lm.Vocabulary.OfWord(list[key - 1].ToString());
            CollectionAssert.AreEqual(lmEmbedding.AsSpan(id * 12, 12).ToArray(), embedding.AsSpan(key * 12, 12).ToArray(), $"epoch 2 leaves the embedding: '{list[key - 1]}'");
        }
        var three = Train(3, gradual: true);
        var moved = Values(three, "embedding.weight");
        Assert.IsTrue(Enumerable.Range(0, moved.Length).Any(i => moved[i] != embedding[i]), "epoch 3 trains the embedding");
        // Without gradual unfreezing, epoch 1 moves everything; a discriminative factor changes the result.
        CollectionAssert.AreNotEqual(LmValues("rnn.weight_hh_l0"), Values(Train(1, gradual: false), "rnn.weight_hh_l0"));
        CollectionAssert.AreNotEqual(Values(Train(1, gradual: false), "rnn.weight_hh_l0"), Values(Train(1, gradual: false, factor: 0.4f), "rnn.weight_hh_l0"));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options { DiscriminativeLearningRateFactor = 1.5f }));
    }

    [TestMethod]
    public void TheLanguageModelKeepsTheMostFrequentRows()
    {
        ReadOnlyMemory<int>[] rows = [new[] { 3, 3, 3, 1, 2 }, new[] { 2, 2, 4, 0, 0, 0, 0 }];
        var ids = RecurrentMulticlassTrainer.LanguageModelIds(rows, 6, 2, out int kept);
        Assert.AreEqual(2, kept);
        // Row 2 (3 times) and row 3 (3 times) are kept in row order; row 0 (unknown) never is; rows 1, 4, 5 are unknown.
        CollectionAssert.AreEqual(new[] { 0, 0, 1, 2, 0, 0 }, ids);
        RecurrentMulticlassTrainer.LanguageModelIds(rows, 6, 100, out kept);
        Assert.AreEqual(4, kept, "rows that never occur are not kept");
    }

    /// <summary>
    /// A language model saved to a zip, with its own featurizer fitted on other text (so its keys number the words
    /// differently), initializes the classifier by word: with the embedding frozen, every shared word's row is the
    /// language model's row for that word after training; words it lacks start from its unknown row.
    /// </summary>
    [TestMethod]
    public void ASavedLanguageModelInitializesTheClassifierByWord()
    {
        var ml = new MLContext(seed: 1);
        var lmText = TestData.Topic(300, 11);
        lmText.Reverse(); // another first-seen order: other keys for the same words
        lmText.Add(new TextRow { Label = "Tech", Text = "zebra quantum" }); // words the classifier's data never has
        var lmPipeline = TestData.TokenKeys(ml).Append(ml.Transforms.Text.RecurrentLanguageModel(LanguageModel(backward: false)));
        var lmData = ml.Data.LoadFromEnumerable(lmText);
        var lmModel = lmPipeline.Fit(lmData);
        string path = Path.Combine(Path.GetTempPath(), $"lm-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(lmModel, lmData.Schema, path);
            var loaded = ml.Model.Load(path, out _); // a chain: featurizer, then the language model
            var train = ml.Data.LoadFromEnumerable(TestData.Topic(400, 1).Append(new TextRow { Label = "Sports", Text = "unseenword goal" }));
            var options = Classifier(bidirectional: false);
            options.PretrainedLanguageModel = loaded;
            options.FreezeEmbeddings = true;
            var messages = new List<string>();
            ml.Log += (_, e) => { if (e.Message.Contains("PretrainedLanguageModel")) lock (messages) messages.Add(e.Message); };
            var model = Pipeline(ml, options).Fit(train);
            TestContext.WriteLine(string.Join("\n", messages));
            Assert.IsTrue(messages.Any(m => m.Contains("matched by word")), "tokens are matched by word");

            var lm = ((IEnumerable<ITransformer>)loaded).OfType<RecurrentLanguageModelTransformer>().Single();
            var classifier = ((IEnumerable<ITransformer>)model).OfType<RecurrentMulticlassTransformer>().Single();
            var network = classifier.Model.Network;
            Assert.AreEqual(lm.Network.Config.HiddenSize, network.Config.HiddenSize);
            Assert.AreEqual(12, network.Config.InputSize);
            var classifierKeys = model.Transform(train).Schema["Features"];
            VBuffer<ReadOnlyMemory<char>> words = default;
            classifierKeys.GetKeyValues(ref words);
            var embedding = network.Parameters.Value(network.Parameters["embedding.weight"]).ToArray();
            var lmEmbedding = lm.Network.Parameters.Value(lm.Network.Parameters["embedding.weight"]).ToArray();
            int checkedWords = 0;
            var wordList = words.DenseValues().Select(w => w.ToString()).ToArray();
            for (int key = 1; key <= wordList.Length; key++)
            {
                int id = lm.Vocabulary.OfWord(wordList[key - 1]);
                if (wordList[key - 1] == "unseenword") Assert.AreEqual(0, id, "a word the language model never saw");
                CollectionAssert.AreEqual(lmEmbedding.AsSpan(id * 12, 12).ToArray(), embedding.AsSpan(key * 12, 12).ToArray(), $"row of '{wordList[key - 1]}'");
                checkedWords++;
            }
            Assert.IsTrue(checkedWords > 20);
            // The recurrent weights were the language model's (they have since been fine-tuned, so only the shapes are compared).
            Assert.AreEqual(lm.Network.Parameters["rnn.weight_hh_l0"].Length, network.Parameters["rnn.weight_hh_l0"].Length);
            var accuracy = ml.MulticlassClassification.Evaluate(model.Transform(ml.Data.LoadFromEnumerable(TestData.Topic(200, 2)))).MicroAccuracy;
            // Frozen at a tiny language model's embedding, it still learns (three classes: chance is 1/3).
            Assert.IsTrue(accuracy > 0.5, $"accuracy {accuracy}");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void ABackwardModelScoresReversedRowsRefusesToGenerateAndInitializesTheReverseDirection()
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.TokenKeys(ml).Fit(ml.Data.LoadFromEnumerable(TestData.Topic(300, 4))).Transform(ml.Data.LoadFromEnumerable(TestData.Topic(300, 4)));
        var forward = ml.Transforms.Text.RecurrentLanguageModel(LanguageModel(backward: false)).Fit(data);
        var backward = ml.Transforms.Text.RecurrentLanguageModel(LanguageModel(backward: true)).Fit(data);
        Assert.IsFalse(forward.IsBackward);
        Assert.IsTrue(backward.IsBackward);
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => backward.Generate("goal", new GenerationOptions { MaximumLength = 3 }));
        StringAssert.Contains(e.Message, "backward");
        // The scoring column of a backward model is the log-likelihood of the reversed row, as LogLikelihood computes it.
        string first = TestData.Topic(300, 4)[0].Text;
        float scored = backward.Transform(data).GetColumn<float>("LogLikelihood").First();
        Assert.AreEqual(backward.LogLikelihood(first), scored, 1e-3);
        Assert.AreNotEqual(forward.LogLikelihood(first), backward.LogLikelihood(first), 1e-3);

        // Saved and loaded, it is still backward.
        using var stream = new MemoryStream();
        ml.Model.Save(backward, data.Schema, stream);
        stream.Position = 0;
        var reloaded = (RecurrentLanguageModelTransformer)ml.Model.Load(stream, out _);
        Assert.IsTrue(reloaded.IsBackward);
        Assert.AreEqual(scored, reloaded.Transform(data).GetColumn<float>("LogLikelihood").First());

        // Both initialize a bidirectional classifier: the embedding holds both models' embeddings.
        var options = Classifier(bidirectional: true);
        options.PretrainedLanguageModel = forward;
        options.PretrainedBackwardLanguageModel = reloaded;
        var trainer = ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);
        var classifier = ml.MulticlassClassification.Trainers.Recurrent(options).Fit(trainer);
        Assert.AreEqual(24, classifier.Model.Network.Config.InputSize);

        // Swapped, each is refused with a message that says what to do.
        options.PretrainedLanguageModel = backward;
        var swapped = Assert.ThrowsExactly<ArgumentException>(() => ml.MulticlassClassification.Trainers.Recurrent(options).Fit(trainer));
        StringAssert.Contains(swapped.Message, "backward language model");
    }

    [TestMethod]
    public void BadCombinationsAreRefusedClearly()
    {
        var ml = new MLContext(seed: 1);
        var characterModel = ml.Transforms.Text.RecurrentLanguageModel(new RecurrentLanguageModelEstimator.Options
        {
            EmbeddingSize = 8, HiddenSize = 8, NumberOfLayers = 1, SequenceLength = 8, BatchSize = 2, NumberOfEpochs = 1, Seed = 1,
        }).Fit(ml.Data.LoadFromEnumerable(new[] { new LanguageModelText.Row { Text = "some text to learn from, long enough" } }));
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Append(TestData.TokenKeys(ml)).Fit(ml.Data.LoadFromEnumerable(TestData.Topic(50, 1)))
            .Transform(ml.Data.LoadFromEnumerable(TestData.Topic(50, 1)));
        var options = Classifier(bidirectional: false);
        options.PretrainedLanguageModel = characterModel;
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => ml.MulticlassClassification.Trainers.Recurrent(options).Fit(data)).Message, "character model");

        options = Classifier(bidirectional: false);
        options.PretrainedLanguageModel = ml.Transforms.Conversion.MapValueToKey("Label").Fit(data);
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => ml.MulticlassClassification.Trainers.Recurrent(options).Fit(data)).Message, "holds no RecurrentLanguageModelTransformer");

        void Refused(Action<RecurrentMulticlassTrainer.Options> set, string fragment)
        {
            var o = Classifier(bidirectional: false);
            set(o);
            var e = Assert.Throws<ArgumentException>(() => ml.MulticlassClassification.Trainers.Recurrent(o));
            StringAssert.Contains(e.Message, fragment);
        }
        Refused(o => { o.LanguageModelEpochs = 1; o.PretrainedLanguageModel = characterModel; }, "not both");
        Refused(o => o.UnlabeledData = data, "LanguageModelEpochs");
        Refused(o => o.PretrainedBackwardLanguageModel = characterModel, "forward model");
        Refused(o => { o.LanguageModelEpochs = 1; o.PretrainedEmbeddingsPath = "glove.txt"; }, "PretrainedEmbeddingsPath");
        Refused(o => o.LanguageModelEpochs = -1, "LanguageModelEpochs");

        // Dense features cannot be pretrained as a language model.
        var series = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 20).Select(i => new SeriesRowWithLabel { Features = [i, i + 1f], Label = i % 2 == 0 }));
        var binary = new RecurrentBinaryTrainer.Options { LanguageModelEpochs = 1, HiddenSize = 4, NumberOfEpochs = 1 };
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.BinaryClassification.Trainers.Recurrent(binary).Fit(series)).Message, "token input");
    }

    private sealed class SeriesRowWithLabel
    {
        [VectorType] public float[] Features { get; set; } = [];
        public bool Label { get; set; }
    }
}
