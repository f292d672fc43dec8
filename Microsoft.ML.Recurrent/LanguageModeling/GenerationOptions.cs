namespace Microsoft.ML.Recurrent;

/// <summary>How <see cref="RecurrentLanguageModelTransformer"/> generates text.</summary>
public sealed class GenerationOptions
{
    /// <summary>Characters (character model) or tokens (token model) to generate at most, after the prompt. Default 200.</summary>
    public int MaximumLength = 200;

    /// <summary>
    /// Softmax temperature: below 1 the likely tokens get likelier (safer, more repetitive text), above 1 the unlikely
    /// ones do; 0 always takes the most likely token (greedy). Default 1.
    /// </summary>
    public float Temperature = 1f;

    /// <summary>Only the k most likely tokens may be drawn at each step; 0 = no limit. Default 0.</summary>
    public int TopK;

    /// <summary>
    /// Nucleus sampling (Holtzman et al. 2020): only the most likely tokens whose probabilities first add up to this may be
    /// drawn (after <see cref="TopK"/>); 1 = no limit. Default 1.
    /// </summary>
    public float TopP = 1f;

    /// <summary>Seed of the draws: the same seed, prompt, options and model give the same text. null = a random seed. Default null.</summary>
    public int? Seed;

    /// <summary>Whether to stop when the model predicts the end of a row (else it is written as <see cref="EndOfRowText"/> and generation goes on). Default false.</summary>
    public bool StopAtEndOfRow;

    /// <summary>Text written for the end of a row. Default a line feed.</summary>
    public string EndOfRowText = "\n";

    /// <summary>Text written between the tokens of a token model (not used by character models). Default a space.</summary>
    public string TokenSeparator = " ";

    internal void Validate()
    {
        if (MaximumLength < 0) throw new ArgumentOutOfRangeException(nameof(MaximumLength), MaximumLength, "MaximumLength must not be negative.");
        if (!(Temperature >= 0) || !float.IsFinite(Temperature)) throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "Temperature must be a finite value ≥ 0 (0 = greedy).");
        if (TopK < 0) throw new ArgumentOutOfRangeException(nameof(TopK), TopK, "TopK must be ≥ 0 (0 = no limit).");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentOutOfRangeException(nameof(TopP), TopP, "TopP must be in (0, 1] (1 = no limit).");
        ArgumentNullException.ThrowIfNull(EndOfRowText, nameof(EndOfRowText));
        ArgumentNullException.ThrowIfNull(TokenSeparator, nameof(TokenSeparator));
    }
}
