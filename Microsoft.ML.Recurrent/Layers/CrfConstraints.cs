namespace Microsoft.ML.Recurrent.Layers;

/// <summary>
/// Which tag paths a <see cref="LinearChainCrf"/> may use: the allowed first tags [C], the allowed last tags [C] and
/// the allowed transitions [C, C] (row-major, <c>[from, to]</c>, as the CRF's <c>transitions</c>). A disallowed choice
/// scores −∞: it takes no part in the partition function, the decoded paths or the marginals, and its parameter gets
/// no gradient.
/// <para><see cref="ForBio"/> and <see cref="ForIobes"/> derive the constraints from tag names exactly as AllenNLP's
/// <c>allowed_transitions</c> does for its "BIO" and "BIOUL" schemes; <see cref="None"/> allows everything.</para>
/// </summary>
internal sealed class CrfConstraints
{
    private readonly bool[] _start;       // [C]
    private readonly bool[] _end;         // [C]
    private readonly bool[] _transitions; // [C, C] [from, to]

    /// <summary>Number of tags C.</summary>
    public int NumTags { get; }

    /// <summary>Whether every start, end and transition is allowed (the CRF then skips masking).</summary>
    public bool AllowsEverything { get; }

    /// <summary>allowed first tags, [C].</summary>
    public ReadOnlySpan<bool> AllowedStart => _start;

    /// <summary>allowed last tags, [C].</summary>
    public ReadOnlySpan<bool> AllowedEnd => _end;

    /// <summary>allowed transitions, [C, C] row-major: [i·C + j] = tag i may be followed by tag j.</summary>
    public ReadOnlySpan<bool> AllowedTransitions => _transitions;

    /// <summary>Copies the three masks.</summary>
    /// <param name="allowedStart">[C]: tags a sequence may start with.</param>
    /// <param name="allowedEnd">[C]: tags a sequence may end with.</param>
    /// <param name="allowedTransitions">[C, C] row-major: [i·C + j] = tag i may be followed by tag j.</param>
    /// <exception cref="ArgumentException">C is 0 or the lengths disagree.</exception>
    public CrfConstraints(ReadOnlySpan<bool> allowedStart, ReadOnlySpan<bool> allowedEnd, ReadOnlySpan<bool> allowedTransitions)
    {
        int c = allowedStart.Length;
        if (c == 0)
            throw new ArgumentException("Constraints need at least one tag.", nameof(allowedStart));
        if (allowedEnd.Length != c)
            throw new ArgumentException($"{c} start flags but {allowedEnd.Length} end flags.", nameof(allowedEnd));
        if (allowedTransitions.Length != (long)c * c)
            throw new ArgumentException($"{c} tags need {(long)c * c} transition flags, got {allowedTransitions.Length}.", nameof(allowedTransitions));
        NumTags = c;
        _start = allowedStart.ToArray();
        _end = allowedEnd.ToArray();
        _transitions = allowedTransitions.ToArray();
        AllowsEverything = !allowedStart.Contains(false) && !allowedEnd.Contains(false) && !allowedTransitions.Contains(false);
    }

    /// <summary>Every start, end and transition allowed.</summary>
    public static CrfConstraints None(int numTags)
    {
        if (numTags <= 0) throw new ArgumentOutOfRangeException(nameof(numTags), numTags, "The number of tags must be positive.");
        var start = new bool[numTags];
        var transitions = new bool[numTags * numTags];
        start.AsSpan().Fill(true);
        transitions.AsSpan().Fill(true);
        return new CrfConstraints(start, start, transitions);
    }

    /// <summary>
    /// The constraints of a tag scheme by name (case-insensitive): "none"; "BIO" (also "IOB2"); "IOBES" (also "BIOES",
    /// "BIOUL", "BILOU").
    /// </summary>
    /// <exception cref="ArgumentException">The scheme is unknown, or a tag does not follow it.</exception>
    public static CrfConstraints ForScheme(string scheme, IReadOnlyList<string> tags)
    {
        ArgumentNullException.ThrowIfNull(scheme);
        ArgumentNullException.ThrowIfNull(tags);
        return scheme.ToUpperInvariant() switch
        {
            "NONE" => None(tags.Count),
            "BIO" or "IOB2" => ForBio(tags),
            "IOBES" or "BIOES" or "BIOUL" or "BILOU" => ForIobes(tags),
            _ => throw new ArgumentException($"Unknown tag scheme '{scheme}'; expected none, BIO (IOB2) or IOBES (BIOES, BIOUL, BILOU).", nameof(scheme)),
        };
    }

    /// <summary>
    /// BIO (IOB2) tags: "O", or "B-" / "I-" followed by an entity type ("B-PER", "I-PER"; prefix letter in either case,
    /// "-" or "_" after it; entity types compared exactly). As AllenNLP's "BIO": a sequence starts with O or B-x and may
    /// end with any tag; O and B-x may follow any tag; I-x may follow only B-x or I-x of the same type x.
    /// </summary>
    /// <exception cref="ArgumentException">There are no tags, or a tag is neither "O" nor B-/I- with a type; the message names it.</exception>
    public static CrfConstraints ForBio(IReadOnlyList<string> tags)
    {
        var parsed = Parse(tags, "BIO", "BI");
        return Build(parsed,
            start: to => to.Prefix is 'O' or 'B',
            end: from => true,
            transition: (from, to) => to.Prefix is 'O' or 'B'
                || (to.Prefix == 'I' && from.Prefix is 'B' or 'I' && from.Entity == to.Entity));
    }

    /// <summary>
    /// IOBES (BIOES; BILOU with U = S and L = E) tags: "O", or "B-", "I-", "E-", "S-" (or "L-", "U-") followed by an
    /// entity type. As AllenNLP's "BIOUL": a sequence starts with O, B-x or S-x and ends with O, E-x or S-x; after O, E-x
    /// or S-x come O, B-y or S-y; after B-x or I-x come only I-x or E-x of the same type x.
    /// </summary>
    /// <exception cref="ArgumentException">There are no tags, or a tag does not follow the scheme; the message names it.</exception>
    public static CrfConstraints ForIobes(IReadOnlyList<string> tags)
    {
        var parsed = Parse(tags, "IOBES", "BIESLU");
        return Build(parsed,
            start: to => to.Prefix is 'O' or 'B' or 'S',
            end: from => from.Prefix is 'O' or 'E' or 'S',
            transition: (from, to) =>
                (from.Prefix is 'O' or 'E' or 'S' && to.Prefix is 'O' or 'B' or 'S')
                || (from.Prefix is 'B' or 'I' && to.Prefix is 'I' or 'E' && from.Entity == to.Entity));
    }

    /// <summary>Whether tag <paramref name="tag"/> may start a sequence.</summary>
    public bool IsAllowedStart(int tag) => _start[tag];

    /// <summary>Whether tag <paramref name="tag"/> may end a sequence.</summary>
    public bool IsAllowedEnd(int tag) => _end[tag];

    /// <summary>Whether tag <paramref name="from"/> may be followed by tag <paramref name="to"/>.</summary>
    public bool IsAllowed(int from, int to) => _transitions[from * NumTags + to];

    /// <summary>
    /// The first place where <paramref name="path"/> (tags in [0, C), at least one) breaks the constraints: −1 when
    /// it is allowed; 0 when its first tag may not start a sequence; t in [1, L) when tag[t−1] → tag[t] is disallowed;
    /// L when its last tag may not end a sequence. Lets a trainer check its labels once, before training.
    /// </summary>
    public int FirstViolation(ReadOnlySpan<int> path)
    {
        if (path.IsEmpty) throw new ArgumentException("A path has at least one tag.", nameof(path));
        if (!_start[path[0]]) return 0;
        for (int t = 1; t < path.Length; t++)
            if (!_transitions[path[t - 1] * NumTags + path[t]]) return t;
        return _end[path[^1]] ? -1 : path.Length;
    }

    private readonly record struct Tag(char Prefix, string Entity);

    /// <summary>Splits each tag into its prefix letter (upper case; BILOU's U and L mapped to S and E) and entity type.</summary>
    private static Tag[] Parse(IReadOnlyList<string> tags, string scheme, string prefixes)
    {
        ArgumentNullException.ThrowIfNull(tags);
        if (tags.Count == 0)
            throw new ArgumentException("A tag set needs at least one tag.", nameof(tags));
        var parsed = new Tag[tags.Count];
        for (int i = 0; i < tags.Count; i++)
        {
            string tag = tags[i];
            if (tag is "O" or "o")
            {
                parsed[i] = new Tag('O', "");
                continue;
            }
            char prefix = tag is { Length: >= 3 } && tag[1] is '-' or '_' ? char.ToUpperInvariant(tag[0]) : '\0';
            if (prefix == '\0' || !prefixes.Contains(prefix))
            {
                string expected = string.Join(", ", prefixes.Select(p => p + "-"));
                throw new ArgumentException(
                    $"Tag {i} '{tag}' is not a {scheme} tag: expected 'O', or one of {expected} followed by an entity type (e.g. '{prefixes[0]}-PER').",
                    nameof(tags));
            }
            parsed[i] = new Tag(prefix switch { 'U' => 'S', 'L' => 'E', _ => prefix }, tag[2..]);
        }
        return parsed;
    }

    private static CrfConstraints Build(Tag[] tags, Func<Tag, bool> start, Func<Tag, bool> end, Func<Tag, Tag, bool> transition)
    {
        int c = tags.Length;
        var allowedStart = new bool[c];
        var allowedEnd = new bool[c];
        var allowed = new bool[c * c]; // [from, to]
        for (int i = 0; i < c; i++)
        {
            allowedStart[i] = start(tags[i]);
            allowedEnd[i] = end(tags[i]);
            for (int j = 0; j < c; j++)
                allowed[i * c + j] = transition(tags[i], tags[j]);
        }
        return new CrfConstraints(allowedStart, allowedEnd, allowed);
    }
}
