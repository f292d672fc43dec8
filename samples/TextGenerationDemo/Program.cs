// Character-level text generation with an LSTM language model in ML.NET (Microsoft.ML.Recurrent).
//
//   dotnet run -c Release --project samples/TextGenerationDemo      the shipped Tiny Shakespeare excerpt (under 3 minutes)
//   options: --epochs N  --hidden N  --layers N  --embed N  --batch N  --lr X  --threads N
//            --length N (characters to generate)  --prompt TEXT
//            --text FILE   another plain-text file (trains on its first 90 %, validates on the rest)
//            --out DIR     where the model zip goes
//
// It trains a character model with per-epoch progress (and progress within each epoch through MLContext.Log),
// reports the validation loss and perplexity, saves the model zip, loads it back, streams generated text at two
// temperatures, and scores two lines with the LogLikelihood and Perplexity columns.
using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Recurrent;

int epochs = 6, hidden = 256, layers = 2, length = 400, embed = 64, batch = 32;
float learningRate = 2e-3f;
int? threads = null;
string prompt = "ROMEO:\n";
string textPath = Path.Combine(AppContext.BaseDirectory, "data", "shakespeare.txt");
string output = Path.Combine(Path.GetTempPath(), "recurrent-text-generation-demo");
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--epochs": epochs = int.Parse(args[++i]); break;
        case "--hidden": hidden = int.Parse(args[++i]); break;
        case "--layers": layers = int.Parse(args[++i]); break;
        case "--threads": threads = int.Parse(args[++i]); break;
        case "--embed": embed = int.Parse(args[++i]); break;
        case "--batch": batch = int.Parse(args[++i]); break;
        case "--lr": learningRate = float.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture); break;
        case "--length": length = int.Parse(args[++i]); break;
        case "--prompt": prompt = args[++i].Replace("\\n", "\n"); break;
        case "--text": textPath = args[++i]; break;
        case "--out": output = args[++i]; break;
        default: Console.Error.WriteLine($"Unknown argument {args[i]}; see the comment at the top of Program.cs."); return 2;
    }
}
var clock = Stopwatch.StartNew();
var ml = new MLContext(seed: 1);
string text = File.ReadAllText(textPath);
int split = (int)(text.Length * 0.9);
// One long text per data view: the model is trained on it as one stream (stateful truncated back-propagation).
var train = ml.Data.LoadFromEnumerable(new[] { new TextRow { Text = text[..split] } });
var validation = ml.Data.LoadFromEnumerable(new[] { new TextRow { Text = text[split..] } });
Console.WriteLine($"Training a {layers}-layer LSTM ({hidden} units) on {split:N0} characters, validating on {text.Length - split:N0}.");

// Progress within each epoch comes through MLContext.Log, as a text progress bar.
ml.Log += (_, e) =>
{
    // e.RawMessage, e.g. "Epoch 2/6: 40 % (step 25/63), loss 1.8421."
    if (e.Source.Contains("LanguageModel") && e.RawMessage.Contains("% (step"))
    {
        int percent = int.Parse(e.RawMessage.Split(": ")[1].Split(' ')[0]);
        Console.Write($"\r  [{new string('#', percent / 5),-20}] {e.RawMessage}");
    }
};
var options = new RecurrentLanguageModelEstimator.Options
{
    InputColumnName = nameof(TextRow.Text),
    EmbeddingSize = embed,
    HiddenSize = hidden,
    BatchSize = batch,
    LearningRate = learningRate,
    NumberOfLayers = layers,
    NumberOfEpochs = epochs,
    NumberOfThreads = threads,
    EpochCallback = e => Console.WriteLine($"\r  epoch {e.Epoch}/{e.Epochs}: loss {e.Loss:F3}, validation loss {e.ValidationLoss:F3} nats/char " +
        $"(perplexity {e.ValidationPerplexity:F2}){(e.IsBest ? ", best" : "")}, {e.TokensPerSecond:N0} chars/s, {e.Elapsed.TotalSeconds:F0} s".PadRight(100)),
};
var model = ml.Transforms.Text.RecurrentLanguageModel(options).Fit(train, validation);
Console.WriteLine($"Trained in {clock.Elapsed.TotalSeconds:F0} s.");

// Save, load back, and generate from the loaded model.
Directory.CreateDirectory(output);
string zip = Path.Combine(output, "language-model.zip");
ml.Model.Save(model, train.Schema, zip);
var loaded = (RecurrentLanguageModelTransformer)ml.Model.Load(zip, out _);
Console.WriteLine($"Saved to {zip} ({new FileInfo(zip).Length / 1024:N0} KiB) and loaded back.");

foreach (float temperature in new[] { 0.5f, 1.0f })
{
    Console.WriteLine($"\n--- temperature {temperature} (seed 42) ---");
    Console.Write(prompt);
    var generation = new GenerationOptions { Temperature = temperature, MaximumLength = length, Seed = 42 };
    var watch = Stopwatch.StartNew();
    int count = 0;
    foreach (string piece in loaded.GenerateStream(prompt, generation))
    {
        Console.Write(piece); // streamed as it is produced
        count++;
    }
    Console.WriteLine($"\n--- {count} characters in {watch.Elapsed.TotalMilliseconds:F0} ms ({count / watch.Elapsed.TotalSeconds:N0} characters/s) ---");
}

// The transformer's columns: each row's log-likelihood and perplexity.
var lines = new[]
{
    new TextRow { Text = "What light through yonder window breaks?" },
    new TextRow { Text = "Wht lgiht thruogh ynoder wnidow berkas?" },
};
var scored = loaded.Transform(ml.Data.LoadFromEnumerable(lines));
var logLikelihood = scored.GetColumn<float>("LogLikelihood").ToArray();
var perplexity = scored.GetColumn<float>("Perplexity").ToArray();
Console.WriteLine();
for (int i = 0; i < lines.Length; i++)
    Console.WriteLine($"  \"{lines[i].Text}\": log-likelihood {logLikelihood[i]:F1} nats, perplexity {perplexity[i]:F2}");
Console.WriteLine($"Done in {clock.Elapsed.TotalSeconds:F0} s.");
return 0;

/// <summary>One row of text.</summary>
public sealed class TextRow
{
    public string Text { get; set; } = "";
}
