using Microsoft.ML.Recurrent.Core;
namespace Microsoft.ML.Recurrent.Training;

/// <summary>What the network is trained to predict. The numeric values are written to model files: never change or reuse them.</summary>
internal enum Objective
{
    /// <summary>One of C classes; softmax cross-entropy; labels are class indices.</summary>
    Multiclass = 0,
    /// <summary>Two classes; logistic loss on one logit; targets are 0 or 1.</summary>
    Binary = 1,
    /// <summary>A real value; squared error.</summary>
    Regression = 2,
    /// <summary>One of C tags at every step; per-step softmax cross-entropy (or a CRF); step targets are tag indices.</summary>
    Tagging = 3,
}

/// <summary>
/// Examples held in memory in flat arrays: the sequences concatenated (token ids, or dense features of
/// <see cref="FeaturesPerStep"/> values per step), their lengths, targets and optional weights.
/// Memory: 4 bytes per token (token input) or 4·F bytes per step (dense input), plus 12 bytes per example.
/// </summary>
internal sealed class SequenceDataset
{
    /// <summary>Token ids, all sequences concatenated (token input), else empty.</summary>
    public int[] Tokens { get; }
    /// <summary>Dense features [Σ lengths, F] (dense input), else empty.</summary>
    public float[] Features { get; }
    /// <summary>Values per step F (dense input), 0 for token input.</summary>
    public int FeaturesPerStep { get; }
    /// <summary>Length of each sequence (≥ 1).</summary>
    public int[] Lengths { get; }
    /// <summary>Start of each sequence in steps, [Count + 1].</summary>
    public long[] Starts { get; }
    /// <summary>Class index (multiclass) or 0/1 (binary) or target value (regression), as float.</summary>
    public float[] Targets { get; }
    /// <summary>Example weights, or empty for all 1.</summary>
    public float[] Weights { get; }
    /// <summary>Tag index of every step [Σ lengths], the sequences concatenated (tagging), else empty.</summary>
    public int[] StepTargets { get; }
    /// <summary>Character ids of every token, the tokens' characters concatenated in token order (character input), else empty.</summary>
    public int[] Characters { get; }
    /// <summary>Characters of each token [Σ lengths] (character input), else empty.</summary>
    public int[] CharacterLengths { get; }
    /// <summary>Start of each token's characters in <see cref="Characters"/>, [Σ lengths + 1] (character input), else empty.</summary>
    public long[] CharacterStarts { get; }

    /// <summary>Wide features of every example (a wide &amp; deep head), or null.</summary>
    public SparseRows? Wide { get; init; }

    /// <summary>Width F of <see cref="Wide"/>.</summary>
    public int WideSize { get; init; }

    /// <summary>Whether every token comes with its characters.</summary>
    public bool HasCharacters => CharacterLengths.Length != 0;

    /// <summary>Number of examples.</summary>
    public int Count => Lengths.Length;

    /// <summary>Whether the sequences are token ids.</summary>
    public bool TokenInput => FeaturesPerStep == 0;

    /// <summary>
    /// Wraps the arrays (no copy). Lengths must be positive and match the data. Per-sequence targets, or (tagging)
    /// per-step targets with <paramref name="targets"/> empty.
    /// </summary>
    public SequenceDataset(int[] tokens, float[] features, int featuresPerStep, int[] lengths, float[] targets, float[] weights, int[]? stepTargets = null,
        int[]? characters = null, int[]? characterLengths = null)
    {
        StepTargets = stepTargets ?? [];
        Characters = characters ?? [];
        CharacterLengths = characterLengths ?? [];
        CharacterStarts = CharacterLengths.Length == 0 ? [] : new long[CharacterLengths.Length + 1];
        for (int i = 0; i < CharacterLengths.Length; i++) CharacterStarts[i + 1] = CharacterStarts[i] + CharacterLengths[i];
        if (CharacterLengths.Length != 0 && CharacterStarts[^1] != Characters.Length)
            throw new ArgumentException("The characters do not match their lengths.", nameof(characters));
        if (StepTargets.Length == 0 ? targets.Length != lengths.Length : targets.Length != 0)
            throw new ArgumentException("One target per sequence, or per step (tagging), is required.", nameof(targets));
        if (weights.Length != 0 && weights.Length != lengths.Length) throw new ArgumentException("One weight per sequence is required.", nameof(weights));
        Tokens = tokens;
        Features = features;
        FeaturesPerStep = featuresPerStep;
        Lengths = lengths;
        Targets = targets;
        Weights = weights;
        Starts = new long[lengths.Length + 1];
        for (int i = 0; i < lengths.Length; i++)
        {
            if (lengths[i] <= 0) throw new ArgumentException($"Sequence {i} is empty.", nameof(lengths));
            Starts[i + 1] = Starts[i] + lengths[i];
        }
        long steps = Starts[^1];
        if (featuresPerStep == 0 ? tokens.Length != steps : features.LongLength != steps * featuresPerStep)
            throw new ArgumentException("The sequence data does not match the lengths.");
        if (StepTargets.Length != 0 && StepTargets.Length != steps)
            throw new ArgumentException("One step target per step is required.", nameof(stepTargets));
        if (CharacterLengths.Length != 0 && (CharacterLengths.Length != steps || featuresPerStep != 0))
            throw new ArgumentException("Characters need token input and one length per token.", nameof(characterLengths));
    }

    /// <summary>Total number of steps (tokens).</summary>
    public long TotalSteps => Starts[^1];

    /// <summary>Whether the targets are per step (tagging).</summary>
    public bool PerStepTargets => StepTargets.Length != 0;

    /// <summary>A new dataset holding the given examples (copied), in the given order.</summary>
    public SequenceDataset Subset(IReadOnlyList<int> indices)
    {
        var lengths = new int[indices.Count];
        var targets = PerStepTargets ? [] : new float[indices.Count];
        var weights = Weights.Length == 0 ? [] : new float[indices.Count];
        long steps = 0;
        for (int i = 0; i < indices.Count; i++)
        {
            lengths[i] = Lengths[indices[i]];
            if (!PerStepTargets) targets[i] = Targets[indices[i]];
            if (weights.Length != 0) weights[i] = Weights[indices[i]];
            steps += lengths[i];
        }
        int f = FeaturesPerStep;
        var tokens = TokenInput ? new int[steps] : [];
        var features = TokenInput ? [] : new float[steps * f];
        var stepTargets = PerStepTargets ? new int[steps] : [];
        var characterLengths = HasCharacters ? new int[steps] : [];
        var characters = new List<int>();
        long at = 0;
        foreach (int index in indices)
        {
            if (TokenInput) Array.Copy(Tokens, Starts[index], tokens, at, Lengths[index]);
            else Array.Copy(Features, Starts[index] * f, features, at * f, (long)Lengths[index] * f);
            if (PerStepTargets) Array.Copy(StepTargets, Starts[index], stepTargets, at, Lengths[index]);
            if (HasCharacters)
            {
                Array.Copy(CharacterLengths, Starts[index], characterLengths, at, Lengths[index]);
                long first = CharacterStarts[Starts[index]], last = CharacterStarts[Starts[index] + Lengths[index]];
                characters.AddRange(Characters.AsSpan((int)first, (int)(last - first)));
            }
            at += Lengths[index];
        }
        return new SequenceDataset(tokens, features, f, lengths, targets, weights, stepTargets, characters.ToArray(), characterLengths)
        {
            Wide = Wide?.Subset(indices, WideSize),
            WideSize = WideSize,
        };
    }
}
