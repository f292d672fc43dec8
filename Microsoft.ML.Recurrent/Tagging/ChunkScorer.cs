namespace Microsoft.ML.Recurrent;

/// <summary>
/// Entity (chunk) scoring as the CoNLL shared tasks' <c>conlleval</c> script does it, for tags in the BIO (IOB2), IOB1 or
/// IOBES schemes ("B-PER", "I-PER", "E-PER", "S-PER", "O"): a chunk is correct when the predicted and the gold tags give
/// it the same first token, the same last token and the same type. Chunk boundaries follow conlleval's rules (with
/// its later IOBES extension), so ill-formed sequences — "I-PER" after "O", a type change inside a chunk — are read the
/// way conlleval reads them.
/// </summary>
internal sealed class ChunkScorer
{
    private readonly (char Prefix, string Type)[] _tags; // per tag index: its prefix (B, I, E, S or O) and type
    private readonly Dictionary<string, (long Correct, long Predicted, long Gold)> _byType = new(StringComparer.Ordinal);

    private ChunkScorer((char, string)[] tags) => _tags = tags;

    /// <summary>A scorer for these tag names, or null when they are not a chunk scheme (e.g. part-of-speech tags).</summary>
    public static ChunkScorer? ForTags(IReadOnlyList<string> tagNames)
    {
        var tags = new (char, string)[tagNames.Count];
        bool anyChunk = false;
        for (int i = 0; i < tagNames.Count; i++)
        {
            string name = tagNames[i];
            if (name.Equals("O", StringComparison.OrdinalIgnoreCase))
            {
                tags[i] = ('O', "");
                continue;
            }
            if (name.Length < 3 || name[1] != '-' || "BIESbies".IndexOf(name[0]) < 0)
                return null;
            tags[i] = (char.ToUpperInvariant(name[0]), name[2..]);
            anyChunk = true;
        }
        return anyChunk ? new ChunkScorer(tags) : null;
    }

    /// <summary>Adds one sentence: gold and predicted tag indices (−1 = no prediction, read as "O").</summary>
    public void Add(ReadOnlySpan<int> gold, ReadOnlySpan<int> predicted)
    {
        var goldChunks = Chunks(gold);
        var predictedChunks = Chunks(predicted);
        foreach (var chunk in goldChunks) Count(chunk.Type, gold: 1);
        foreach (var chunk in predictedChunks)
        {
            Count(chunk.Type, predicted: 1);
            if (goldChunks.Contains(chunk)) Count(chunk.Type, correct: 1);
        }
    }

    private void Count(string type, long correct = 0, long predicted = 0, long gold = 0)
    {
        var (c, p, g) = _byType.GetValueOrDefault(type);
        _byType[type] = (c + correct, p + predicted, g + gold);
    }

    /// <summary>Totals over all types, and per type.</summary>
    public ((long Correct, long Predicted, long Gold) Total, IReadOnlyDictionary<string, (long Correct, long Predicted, long Gold)> ByType) Counts()
    {
        long c = 0, p = 0, g = 0;
        foreach (var (tc, tp, tg) in _byType.Values) { c += tc; p += tp; g += tg; }
        return ((c, p, g), _byType);
    }

    /// <summary>The chunks (first token, last token, type) of one tag sequence.</summary>
    private HashSet<(int Start, int End, string Type)> Chunks(ReadOnlySpan<int> sequence)
    {
        var chunks = new HashSet<(int, int, string)>();
        char previousTag = 'O';
        string previousType = "";
        int start = -1;
        for (int t = 0; t <= sequence.Length; t++)
        {
            // One step past the end closes the last chunk, like conlleval's sentence boundary.
            var (tag, type) = t < sequence.Length && sequence[t] >= 0 ? _tags[sequence[t]] : ('O', "");
            if (start >= 0 && EndOfChunk(previousTag, tag, previousType, type))
            {
                chunks.Add((start, t - 1, previousType));
                start = -1;
            }
            if (t < sequence.Length && StartOfChunk(previousTag, tag, previousType, type))
                start = t;
            previousTag = tag;
            previousType = type;
        }
        return chunks;
    }

    private static bool EndOfChunk(char previousTag, char tag, string previousType, string type) =>
        previousTag is 'E' or 'S'
        || (previousTag is 'B' or 'I' && tag is 'B' or 'S' or 'O')
        || (previousTag != 'O' && previousType != type);

    private static bool StartOfChunk(char previousTag, char tag, string previousType, string type) =>
        tag is 'B' or 'S'
        || (previousTag is 'E' or 'S' or 'O' && tag is 'E' or 'I')
        || (tag != 'O' && previousType != type);
}
