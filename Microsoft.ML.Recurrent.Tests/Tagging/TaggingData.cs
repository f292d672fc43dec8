using Microsoft.ML.Data;

namespace Microsoft.ML.Recurrent.Tests.Tagging;

public sealed class TaggedSentence
{
    [VectorType] public string[] Tokens { get; set; } = [];
    [VectorType] public string[] Tags { get; set; } = [];
}

public sealed class TaggedPrediction
{
    [VectorType] public string[] Tags { get; set; } = [];
}

/// <summary>
/// A small synthetic part-of-speech task whose ambiguous words ("can", "fish", "saw", "duck") take their tag from the
/// context — solvable only by reading neighbours — plus named entities in BIO form.
/// </summary>
internal static class TaggingData
{
    private static readonly string[] Pronouns = ["i", "we", "they", "you"];
    private static readonly string[] Determiners = ["the", "a", "this", "every"];
    private static readonly string[] Nouns = ["dog", "boat", "river", "market", "table", "song"];
    private static readonly string[] Ambiguous = ["can", "fish", "saw", "duck"];
    private static readonly string[] Adjectives = ["old", "red", "quiet", "big"];
    private static readonly string[] FirstNames = ["anna", "omar", "li", "maria"];
    private static readonly string[] LastNames = ["smith", "khan", "chen", "garcia"];
    private static readonly string[] Places = ["paris", "lagos", "lima", "oslo"];

    public static List<TaggedSentence> Sentences(int count, int seed)
    {
        var random = new Random(seed);
        string Pick(string[] words) => words[random.Next(words.Length)];
        var sentences = new List<TaggedSentence>();
        for (int i = 0; i < count; i++)
        {
            var tokens = new List<string>();
            var tags = new List<string>();
            void Add(string word, string tag) { tokens.Add(word); tags.Add(tag); }
            switch (random.Next(3))
            {
                case 0: // PRON AMB(verb) DET (ADJ) AMB-or-NOUN(noun)
                    Add(Pick(Pronouns), "PRON");
                    Add(Pick(Ambiguous), "VERB");
                    Add(Pick(Determiners), "DET");
                    if (random.Next(2) == 0) Add(Pick(Adjectives), "ADJ");
                    Add(random.Next(2) == 0 ? Pick(Ambiguous) : Pick(Nouns), "NOUN");
                    break;
                case 1: // DET (ADJ) AMB(noun) AMB(verb) DET NOUN
                    Add(Pick(Determiners), "DET");
                    if (random.Next(2) == 0) Add(Pick(Adjectives), "ADJ");
                    Add(Pick(Ambiguous), "NOUN");
                    Add(Pick(Ambiguous), "VERB");
                    Add(Pick(Determiners), "DET");
                    Add(Pick(Nouns), "NOUN");
                    break;
                default: // B-PER I-PER VERB (in) B-LOC
                    Add(Pick(FirstNames), "B-PER");
                    if (random.Next(2) == 0) Add(Pick(LastNames), "I-PER");
                    Add(Pick(Ambiguous), "VERB");
                    Add("in", "ADP");
                    Add(Pick(Places), "B-LOC");
                    break;
            }
            sentences.Add(new TaggedSentence { Tokens = [.. tokens], Tags = [.. tags] });
        }
        return sentences;
    }

    /// <summary>Tags → keys, tokens → keys, in front of a tagger.</summary>
    public static IEstimator<ITransformer> Featurizer(MLContext ml) =>
        ml.Transforms.Conversion.MapValueToKey("Label", "Tags")
            .Append(ml.Transforms.Conversion.MapValueToKey("Features", "Tokens"));
}
