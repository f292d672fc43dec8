// Part-of-speech tagging with a bidirectional LSTM in an ML.NET pipeline (Microsoft.ML.Recurrent).
//
//   dotnet run --project samples/TaggingDemo                 the shipped Brown corpus excerpt (under 2 minutes)
//   options: --epochs N  --threads N  --crf  --no-characters  --keep-case  --lr X  --dropout X  --out DIR
//            by default the word keys come from lower-cased tokens and a character BiLSTM reads each token as written
//            (so case and spelling still count); --keep-case keys the words as written; --no-characters: words only
//            --data DIR   a folder with train.tsv and test.tsv in the excerpt's format (e.g. the whole corpus)
//
// It trains a tagger on the excerpt, evaluates it on held-out sentences (token accuracy, accuracy on words never seen
// in training), saves the model zip, loads it back and tags a few sentences.
using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Recurrent;

int epochs = 5;
float? learningRate = null, dropout = null;
int? threads = null;
bool crf = false, characters = true, lower = true;
string output = Path.Combine(Path.GetTempPath(), "recurrent-tagging-demo");
string data = Path.Combine(AppContext.BaseDirectory, "data");
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--epochs": epochs = int.Parse(args[++i]); break;
        case "--threads": threads = int.Parse(args[++i]); break;
        case "--crf": crf = true; break;
        case "--no-characters": characters = false; break;
        case "--keep-case": lower = false; break;
        case "--out": output = args[++i]; break;
        case "--data": data = args[++i]; break;
        case "--lr": learningRate = float.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture); break;
        case "--dropout": dropout = float.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture); break;
        default: Console.Error.WriteLine($"Unknown argument {args[i]}; see the comment at the top of Program.cs."); return 2;
    }
}
var clock = Stopwatch.StartNew();
var ml = new MLContext(seed: 1);
var train = ml.Data.LoadFromTextFile<Sentence>(Path.Combine(data, "train.tsv"), separatorChar: '\t');
var test = ml.Data.LoadFromTextFile<Sentence>(Path.Combine(data, "test.tsv"), separatorChar: '\t');

// Sentences → tokens and tag strings → keys; the tagger; tags back to strings.
// The tagger's options: its defaults (a study on the Brown corpus, docs/tagging.md), unless given on the command line.
var options = new RecurrentTaggerTrainer.Options
{
    NumberOfEpochs = epochs,
    NumberOfThreads = threads,
    UseCrf = crf,
    CharacterColumnName = characters ? "Tokens" : null, // the words' characters, in their original case
    EpochCallback = e => Console.WriteLine($"  epoch {e.Epoch}/{e.Epochs}: loss {e.Loss:F3}, token accuracy {e.Accuracy:P2}, " +
        $"{e.TokensPerSecond:N0} tokens/s, {e.Elapsed.TotalSeconds:F1} s"),
};
if (learningRate is { } rate) options.LearningRate = rate;
if (dropout is { } p) { options.EmbeddingDropout = p; options.HeadDropout = p; }

// Sentences → tokens and tag strings → keys; the tagger; tags back to strings.
var pipeline = ml.Transforms.Text.TokenizeIntoWords("Tokens", "Text")
    .Append(ml.Transforms.Text.NormalizeText("LowerText", "Text", Microsoft.ML.Transforms.Text.TextNormalizingEstimator.CaseMode.Lower,
        keepDiacritics: true, keepPunctuations: true, keepNumbers: true))
    .Append(ml.Transforms.Text.TokenizeIntoWords("LowerTokens", "LowerText"))
    .Append(ml.Transforms.Text.TokenizeIntoWords("TagStrings", "Tags"))
    .Append(ml.Transforms.Conversion.MapValueToKey("Label", "TagStrings"))
    .Append(ml.Transforms.Conversion.MapValueToKey("Features", lower ? "LowerTokens" : "Tokens"))
    .Append(ml.MulticlassClassification.Trainers.RecurrentTagger(options))
    .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedTags", "PredictedLabel"));

Console.WriteLine($"Training a bidirectional LSTM tagger{(crf ? " with a CRF" : "")}{(characters ? " and character features" : "")} on the Brown excerpt ...");
var model = pipeline.Fit(train);
var metrics = ml.MulticlassClassification.EvaluateTagging(model.Transform(test));
Console.WriteLine($"Test: {metrics.Tokens:N0} tokens, accuracy {metrics.TokenAccuracy:P2}; " +
    $"{metrics.UnseenTokens:N0} tokens of words never seen in training, accuracy {metrics.UnseenTokenAccuracy:P2}");

Directory.CreateDirectory(output);
string zip = Path.Combine(output, "tagger.zip");
ml.Model.Save(model, train.Schema, zip);
var loaded = new MLContext().Model.Load(zip, out _);
using var engine = ml.Model.CreatePredictionEngine<Sentence, Tagged>(loaded);
foreach (string text in new[]
{
    "The committee approved the new budget on Tuesday .",
    "She can fish , but she saw no fish in the river .",
    "Quantum computers may soon outperform classical machines .",
})
{
    var tags = engine.Predict(new Sentence { Text = text }).PredictedTags;
    Console.WriteLine("  " + string.Join(' ', text.Split(' ').Zip(tags, (word, tag) => $"{word}/{tag}")));
}
Console.WriteLine($"Saved {zip} ({new FileInfo(zip).Length / 1024:N0} KB), reloaded and tagged; {clock.Elapsed.TotalSeconds:F0} s in all.");
return 0;

/// <summary>One line of the excerpt: the tokens and their tags, each separated by spaces.</summary>
public sealed class Sentence
{
    [LoadColumn(0)] public string Text { get; set; } = "";
    [LoadColumn(1)] public string Tags { get; set; } = "";
}

public sealed class Tagged
{
    public string[] PredictedTags { get; set; } = [];
}
