// Text classification with a bidirectional LSTM in an ML.NET pipeline (Microsoft.ML.Recurrent).
//
//   dotnet run --project samples/TextClassificationDemo                       the shipped AG News excerpt (< 3 min)
//   dotnet run --project samples/TextClassificationDemo -- --dataset agnews   full AG News from ../shared/datasets
//   dotnet run --project samples/TextClassificationDemo -- --dataset sst2     SST-2 (train → dev)
//   dotnet run --project samples/TextClassificationDemo -- --dataset imdb     IMDB (train → test)
//   options: --epochs N  --datasets DIR  --out DIR  --threads N  --onnx
//
// It trains, prints per-epoch progress, evaluates on held-out rows, saves the model zip, loads it back, predicts a few
// sentences and draws the training curve as an SVG file (ScottPlot). With --onnx it also exports the recurrent part to
// ONNX (OnnxExport.cs), for samples/OnnxScoring to score with ONNX Runtime alone (docs/onnx.md).
using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Recurrent;
using TextClassificationDemo;

var arguments = Arguments.Parse(args);
var clock = Stopwatch.StartNew();
var ml = new MLContext(seed: 1);

var (trainRows, testRows, examples) = DemoData.Load(arguments);
Console.WriteLine($"Data: {arguments.Dataset} — {trainRows.Count:N0} training rows, {testRows.Count:N0} test rows, classes: {string.Join(", ", trainRows.Select(r => r.Label).Distinct().Order())}");
var train = ml.Data.LoadFromEnumerable(trainRows);
var test = ml.Data.LoadFromEnumerable(testRows);

var epochs = new List<RecurrentEpochInfo>();
var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
    .Append(ml.Transforms.Text.NormalizeText("Normalized", "Text", keepPunctuations: false, keepNumbers: true))
    .Append(ml.Transforms.Text.TokenizeIntoWords("Tokens", "Normalized"))
    .Append(ml.Transforms.Conversion.MapValueToKey("Features", "Tokens", maximumNumberOfKeys: 30_000))
    .Append(ml.MulticlassClassification.Trainers.Recurrent(new RecurrentMulticlassTrainer.Options
    {
        Cell = RecurrentCellKind.Lstm,
        Bidirectional = true,
        EmbeddingSize = 128,
        HiddenSize = 128,
        NumberOfLayers = 1,
        Pooling = PoolingKind.FinalState | PoolingKind.Mean | PoolingKind.Max | PoolingKind.InputMean,
        EmbeddingDropout = 0.25f,
        HeadDropout = 0.3f,
        MaximumSequenceLength = 256,
        NumberOfEpochs = arguments.Epochs,
        NumberOfThreads = arguments.Threads,
        BatchSize = 32,
        LearningRate = 2e-3f,
        LearningRateSchedule = LearningRateSchedule.Cosine,
        WarmupFraction = 0.05f,
        ValidationFraction = 0.1f,
        EarlyStoppingPatience = 2,
        EpochCallback = e =>
        {
            epochs.Add(e);
            Console.WriteLine($"  epoch {e.Epoch}/{e.Epochs}: loss {e.Loss:F3}, train acc {e.Accuracy:P1}, validation acc {e.ValidationAccuracy:P1}" +
                $"{(e.IsBest ? " *" : "  ")}  {e.TokensPerSecond:N0} tokens/s, {e.Elapsed.TotalSeconds:F1} s, ETA {e.Remaining.TotalSeconds:F0} s");
        },
    }))
    .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));

Console.WriteLine("Training a bidirectional LSTM (embedding 128, hidden 128, pooling final+mean+max+input mean; 10 % of the rows held out for early stopping)…");
var model = pipeline.Fit(train);
Console.WriteLine($"Trained in {clock.Elapsed.TotalSeconds:F0} s; kept the weights of epoch {epochs.Last(e => e.IsBest).Epoch}.");

var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
Console.WriteLine($"Test: accuracy {metrics.MicroAccuracy:P2}, macro accuracy {metrics.MacroAccuracy:P2}, log-loss {metrics.LogLoss:F3}");
Console.WriteLine(metrics.ConfusionMatrix.GetFormattedConfusionTable());

Directory.CreateDirectory(arguments.Output);
string zip = Path.Combine(arguments.Output, $"{arguments.Dataset}-bilstm.zip");
ml.Model.Save(model, train.Schema, zip);
Console.WriteLine($"Saved {zip} ({new FileInfo(zip).Length / 1024.0 / 1024.0:F1} MB).");

var loaded = new MLContext().Model.Load(zip, out _);
var engine = ml.Model.CreatePredictionEngine<TextRow, Prediction>(loaded);
Console.WriteLine("Predictions of the reloaded model:");
foreach (var text in examples)
{
    var prediction = engine.Predict(new TextRow { Text = text });
    Console.WriteLine($"  {prediction.PredictedLabel,-10} {prediction.Score.Max():P0}  \"{text}\"");
}

if (arguments.Onnx)
    OnnxExport.Write(ml, model, test, Path.Combine(arguments.Output, $"{arguments.Dataset}-bilstm.onnx"));

string svg = Path.Combine(arguments.Output, $"{arguments.Dataset}-training-curve.svg");
TrainingCurve.Save(svg, epochs, $"BiLSTM on {arguments.Dataset}: test accuracy {metrics.MicroAccuracy:P1}");
Console.WriteLine($"Wrote the training curve to {svg}. Total time {clock.Elapsed.TotalSeconds:F0} s.");

namespace TextClassificationDemo
{
    public sealed class TextRow
    {
        public string Label { get; set; } = "";
        public string Text { get; set; } = "";
    }

    public sealed class Prediction
    {
        public string PredictedLabel { get; set; } = "";
        public float[] Score { get; set; } = [];
    }
}
