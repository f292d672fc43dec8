namespace Microsoft.ML.Recurrent.Model;

/// <summary>
/// One batch's input values, all sequences concatenated in the caller's (original) order, as the network's input
/// piece reads them. Which spans are set depends on the input: token ids, or dense features, and for a words +
/// characters input also the characters of every token.
/// </summary>
internal readonly ref struct SequenceData
{
    /// <summary>Token ids [Σ lengths] (token input), else empty.</summary>
    public ReadOnlySpan<int> Tokens { get; init; }

    /// <summary>Dense features [Σ lengths, F] (dense input), else empty.</summary>
    public ReadOnlySpan<float> Features { get; init; }

    /// <summary>Character ids of every token, the tokens' characters concatenated in token order (character input), else empty.</summary>
    public ReadOnlySpan<int> Characters { get; init; }

    /// <summary>Number of characters of each token [Σ lengths] (character input), else empty.</summary>
    public ReadOnlySpan<int> CharacterLengths { get; init; }

    /// <summary>
    /// Wide features of each sequence (wide &amp; deep head), compressed rows: sequence b's entries are
    /// [WideStarts[b], WideStarts[b + 1]) of <see cref="WideIndices"/>/<see cref="WideValues"/>, [B + 1]; else empty.
    /// </summary>
    public ReadOnlySpan<int> WideStarts { get; init; }

    /// <summary>Column of each wide entry.</summary>
    public ReadOnlySpan<int> WideIndices { get; init; }

    /// <summary>Value of each wide entry.</summary>
    public ReadOnlySpan<float> WideValues { get; init; }

    /// <summary>
    /// Dense values of each sequence as a whole [B, S] (a forecast head's known future covariates), in the caller's
    /// order, else empty.
    /// </summary>
    public ReadOnlySpan<float> Static { get; init; }

    /// <summary>Token input.</summary>
    public static SequenceData OfTokens(ReadOnlySpan<int> tokens) => new() { Tokens = tokens };

    /// <summary>Dense input.</summary>
    public static SequenceData OfFeatures(ReadOnlySpan<float> features) => new() { Features = features };
}
