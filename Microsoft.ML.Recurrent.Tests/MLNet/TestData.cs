using Microsoft.ML;

namespace Microsoft.ML.Recurrent.Tests.MLNet;

public sealed class TextRow
{
    public string Label { get; set; } = "";
    public string Text { get; set; } = "";
}

public sealed class SeriesRow
{
    [Microsoft.ML.Data.VectorType] public float[] Features { get; set; } = [];
    public float Label { get; set; }
}

public sealed class BinaryRow
{
    public bool Label { get; set; }
    public string Text { get; set; } = "";
}

/// <summary>
/// Small synthetic data sets whose classes are learnable from word order and content. Also compiled into
/// build/CompatFixtures, which writes the format-compatibility fixtures from them.
/// </summary>
internal static class TestData
{
    private static readonly string[][] Topics =
    [
        ["goal", "match", "team", "coach", "league", "score"],
        ["market", "stock", "profit", "bank", "shares", "trade"],
        ["chip", "software", "robot", "laptop", "code", "cloud"],
    ];
    private static readonly string[] Filler = ["the", "a", "of", "and", "today", "new", "big", "in", "on", "said"];
    public static readonly string[] Classes = ["Sports", "Business", "Tech"];

    public static List<TextRow> Topic(int count, int seed)
    {
        var random = new Random(seed);
        var rows = new List<TextRow>();
        for (int i = 0; i < count; i++)
        {
            int c = random.Next(3);
            int length = 3 + random.Next(10);
            var words = new List<string>();
            for (int k = 0; k < length; k++)
                words.Add(random.NextDouble() < 0.35 ? Topics[c][random.Next(Topics[c].Length)] : Filler[random.Next(Filler.Length)]);
            words[random.Next(length)] = Topics[c][random.Next(Topics[c].Length)];
            rows.Add(new TextRow { Label = Classes[c], Text = string.Join(' ', words) });
        }
        return rows;
    }

    /// <summary>Positive when "good" appears after "not" does not precede it — needs order, not just a bag of words.</summary>
    public static List<BinaryRow> Sentiment(int count, int seed)
    {
        var random = new Random(seed);
        var rows = new List<BinaryRow>();
        for (int i = 0; i < count; i++)
        {
            bool positive = random.Next(2) == 0;
            bool negated = random.Next(2) == 0;
            string word = positive ^ negated ? "good" : "bad";
            var words = new List<string>();
            int before = random.Next(4), after = random.Next(4);
            for (int k = 0; k < before; k++) words.Add(Filler[random.Next(Filler.Length)]);
            if (negated) words.Add("not");
            words.Add(word);
            for (int k = 0; k < after; k++) words.Add(Filler[random.Next(Filler.Length)]);
            rows.Add(new BinaryRow { Label = positive, Text = string.Join(' ', words) });
        }
        return rows;
    }

    /// <summary>Dense multivariate time series: 2 features per step, variable length, predict the next value of the first.</summary>
    public static List<SeriesRow> Series(int count, int seed)
    {
        var random = new Random(seed);
        var rows = new List<SeriesRow>();
        for (int i = 0; i < count; i++)
        {
            int steps = 5 + random.Next(15);
            double phase = random.NextDouble() * Math.PI * 2, frequency = 0.2 + random.NextDouble() * 0.3;
            var values = new float[steps * 2];
            for (int t = 0; t < steps; t++)
            {
                values[2 * t] = (float)Math.Sin(phase + frequency * t);
                values[2 * t + 1] = (float)frequency;
            }
            rows.Add(new SeriesRow { Features = values, Label = (float)Math.Sin(phase + frequency * steps) });
        }
        return rows;
    }

    /// <summary>Tokenize → keys pipeline in front of a trainer.</summary>
    public static IEstimator<ITransformer> TokenKeys(MLContext ml, string input = "Text") =>
        ml.Transforms.Text.TokenizeIntoWords("Tokens", input)
            .Append(ml.Transforms.Conversion.MapValueToKey("Features", "Tokens"));
}
