namespace Microsoft.ML.Recurrent.Tests.LanguageModeling;

/// <summary>Small, deterministic texts for the language-model tests.</summary>
internal static class LanguageModelText
{
    public sealed class Row
    {
        public string Text { get; set; } = "";
    }

    private static readonly string[] Subjects = ["the cat", "a dog", "the bird", "my friend", "the king"];
    private static readonly string[] Verbs = ["sees", "likes", "follows", "calls", "finds"];
    private static readonly string[] Objects = ["the mat.", "a ball.", "the tree.", "the river.", "a song."];

    /// <summary><paramref name="count"/> sentences "subject verb object." drawn from a seed, one per row.</summary>
    public static Row[] Sentences(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count)
            .Select(_ => new Row { Text = $"{Subjects[random.Next(Subjects.Length)]} {Verbs[random.Next(Verbs.Length)]} {Objects[random.Next(Objects.Length)]}" })
            .ToArray();
    }
}
