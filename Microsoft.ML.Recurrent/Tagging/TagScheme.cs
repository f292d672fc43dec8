namespace Microsoft.ML.Recurrent;

/// <summary>
/// The chunk scheme of a tagger's tags, from which the CRF derives the tag transitions it allows (an "I-PER" only after
/// "B-PER" or "I-PER", and so on). The numeric values are written to model files: never change or reuse them.
/// </summary>
public enum TagScheme
{
    /// <summary>No constraint: every tag may follow every tag (part-of-speech tags, or tags of no known scheme).</summary>
    None = 0,
    /// <summary>BIO (IOB2): B-X begins an entity, I-X continues one of the same type, O is outside.</summary>
    Bio = 1,
    /// <summary>IOBES (BIOES, BILOU): as BIO, plus E-X (L-X) ends an entity and S-X (U-X) is a one-token entity.</summary>
    Iobes = 2,
}
