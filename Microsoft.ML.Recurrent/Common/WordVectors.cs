using System.Globalization;
using System.Text;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// Pretrained word vectors from a text file in the GloVe or fastText (<c>.vec</c>) format: one word per line followed
/// by its values, separated by spaces; a fastText file's first line ("count dimension") is recognized and skipped.
/// Only the words asked for are kept, so a large file costs its reading time, not its size in memory.
/// </summary>
internal sealed class WordVectors
{
    private readonly Dictionary<string, float[]> _vectors;

    private WordVectors(Dictionary<string, float[]> vectors, int dimension)
    {
        _vectors = vectors;
        Dimension = dimension;
    }

    /// <summary>Values per word.</summary>
    public int Dimension { get; }

    /// <summary>Words read (of those asked for).</summary>
    public int Count => _vectors.Count;

    /// <summary>The vector of <paramref name="word"/>, or of its lower-cased form, or null.</summary>
    public float[]? Find(string word) =>
        _vectors.TryGetValue(word, out var vector) || _vectors.TryGetValue(word.ToLowerInvariant(), out vector) ? vector : null;

    /// <summary>Reads the vectors of <paramref name="wanted"/> words (and of their lower-cased forms) from <paramref name="path"/>.</summary>
    /// <exception cref="InvalidDataException">A line is malformed or has another number of values than the first; the message names the line.</exception>
    public static WordVectors Read(string path, IEnumerable<string> wanted)
    {
        var keep = new HashSet<string>(StringComparer.Ordinal);
        foreach (var word in wanted)
        {
            keep.Add(word);
            keep.Add(word.ToLowerInvariant());
        }
        using var reader = new StreamReader(path, Encoding.UTF8);
        var vectors = new Dictionary<string, float[]>(StringComparer.Ordinal);
        int dimension = 0, number = 0;
        for (string? line = reader.ReadLine(); line is not null; line = reader.ReadLine())
        {
            number++;
            line = line.TrimEnd();
            if (line.Length == 0) continue;
            var parts = line.Split(' ');
            if (number == 1 && parts.Length == 2 && int.TryParse(parts[0], out _) && int.TryParse(parts[1], out int declared))
            {
                dimension = declared; // fastText header: "count dimension"
                continue;
            }
            if (parts.Length < 2)
                throw new InvalidDataException($"{path}, line {number}: expected a word followed by its values.");
            if (dimension == 0) dimension = parts.Length - 1;
            if (parts.Length - 1 != dimension)
                throw new InvalidDataException($"{path}, line {number}: {parts.Length - 1} values where the file's vectors have {dimension}.");
            if (!keep.Contains(parts[0]) || vectors.ContainsKey(parts[0]))
                continue;
            var vector = new float[dimension];
            for (int i = 0; i < dimension; i++)
                if (!float.TryParse(parts[i + 1], NumberStyles.Float, CultureInfo.InvariantCulture, out vector[i]) || !float.IsFinite(vector[i]))
                    throw new InvalidDataException($"{path}, line {number}: value {i + 1} of '{Model.BoundedReader.Printable(parts[0])}' is not a finite number ('{Model.BoundedReader.Printable(parts[i + 1])}').");
            vectors.Add(parts[0], vector);
        }
        if (dimension == 0)
            throw new InvalidDataException($"{path} holds no word vectors.");
        return new WordVectors(vectors, dimension);
    }
}
