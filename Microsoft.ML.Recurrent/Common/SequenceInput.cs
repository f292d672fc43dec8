using Microsoft.ML.Data;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// How the feature column feeds the network, and the conversion of one row's feature value into a sequence.
/// Two kinds: a variable-length vector of keys (token ids; key k ↦ embedding row k, key 0 — ML.NET's missing or
/// unseen value — is a real, learned "unknown" row) or a vector of <see cref="float"/> holding T × F values.
/// Shared by training and scoring so both read rows identically, and every error names the column and row.
/// </summary>
internal sealed class SequenceInput
{
    /// <summary>Feature column name.</summary>
    public string ColumnName { get; }

    /// <summary>Key count of the token column (vocabulary = KeyCount + 1 rows including key 0), or 0 for dense input.</summary>
    public int KeyCount { get; }

    /// <summary>Values per step F for dense input, 0 for token input.</summary>
    public int FeaturesPerStep { get; }

    /// <summary>Longest sequence fed to the network; longer ones keep their first steps. 0 = no limit.</summary>
    public int MaximumLength { get; }

    /// <summary>Whether the input is token keys.</summary>
    public bool IsTokens => KeyCount > 0;

    /// <summary>
    /// Key → embedding row, [KeyCount + 1], or null for the identity. Keys that were rare in the training data map to
    /// row 0 with key 0 (missing/unseen), and the remaining keys to rows 1 … V−1.
    /// </summary>
    public int[]? TokenMap { get; }

    /// <summary>Embedding rows V: KeyCount + 1, or the rows of <see cref="TokenMap"/>.</summary>
    public int VocabularySize { get; }

    /// <summary>The characters of every token, for a character-level word encoder, or null.</summary>
    public CharacterInput? Characters { get; }

    /// <summary>The wide features of a wide &amp; deep model, or null.</summary>
    public WideInput? Wide { get; }

    public SequenceInput(string columnName, int keyCount, int featuresPerStep, int maximumLength, int[]? tokenMap = null, CharacterInput? characters = null,
        WideInput? wide = null)
    {
        Characters = characters;
        Wide = wide;
        ColumnName = columnName;
        KeyCount = keyCount;
        FeaturesPerStep = featuresPerStep;
        MaximumLength = maximumLength;
        if (tokenMap is not null && tokenMap.Length != keyCount + 1)
            throw new ArgumentException($"The token map has {tokenMap.Length} entries for {keyCount} keys.", nameof(tokenMap));
        TokenMap = tokenMap;
        VocabularySize = keyCount == 0 ? 0 : tokenMap is null ? keyCount + 1 : tokenMap.Max() + 1;
    }

    /// <summary>
    /// The same input with a token map that sends keys seen fewer than <paramref name="minimumCount"/> times in
    /// <paramref name="tokens"/> (raw keys) to row 0; the others get rows 1, 2, … in key order.
    /// </summary>
    public SequenceInput WithRareTokensAsUnknown(ReadOnlySpan<int> tokens, int minimumCount)
    {
        var counts = new int[KeyCount + 1];
        foreach (int key in tokens) counts[key]++;
        var map = new int[KeyCount + 1];
        int next = 1;
        for (int key = 1; key <= KeyCount; key++)
            map[key] = counts[key] >= minimumCount ? next++ : 0;
        return new SequenceInput(ColumnName, KeyCount, FeaturesPerStep, MaximumLength, map, Characters, Wide);
    }

    /// <summary>The same input, with the characters of every token read from <paramref name="characters"/>' column.</summary>
    public SequenceInput WithCharacters(CharacterInput characters) =>
        new(ColumnName, KeyCount, FeaturesPerStep, MaximumLength, TokenMap, characters, Wide);

    /// <summary>The same input, with wide features read from <paramref name="wide"/>' column.</summary>
    public SequenceInput WithWide(WideInput wide) =>
        new(ColumnName, KeyCount, FeaturesPerStep, MaximumLength, TokenMap, Characters, wide);

    /// <summary>The input description for a column of <paramref name="schema"/>; throws naming the column when its type does not fit.</summary>
    public static SequenceInput FromSchema(DataViewSchema schema, string columnName, int featuresPerStep, int maximumLength)
    {
        var column = schema.GetColumnOrNull(columnName)
            ?? throw new ArgumentOutOfRangeException(nameof(columnName), $"Feature column '{columnName}' not found in the input schema.");
        return FromType(column.Type, columnName, featuresPerStep, maximumLength);
    }

    /// <summary>As <see cref="FromSchema"/> for a column type.</summary>
    public static SequenceInput FromType(DataViewType type, string columnName, int featuresPerStep, int maximumLength)
    {
        if (type is VectorDataViewType vector)
        {
            if (vector.ItemType is KeyDataViewType key)
            {
                if (key.RawType != typeof(uint))
                    throw new ArgumentOutOfRangeException(nameof(columnName), $"Feature column '{columnName}' holds keys of {key.RawType.Name}; expected UInt32 keys (what MapValueToKey produces).");
                if (key.Count == 0 || key.Count >= int.MaxValue)
                    throw new ArgumentOutOfRangeException(nameof(columnName), $"Feature column '{columnName}' has keys with unknown or huge count {key.Count}; the vocabulary size must be known.");
                return new SequenceInput(columnName, (int)key.Count, 0, maximumLength);
            }
            if (vector.ItemType == NumberDataViewType.Single)
            {
                if (featuresPerStep <= 0)
                    throw new ArgumentOutOfRangeException(nameof(featuresPerStep), featuresPerStep, "Features per step must be positive.");
                if (vector.Size > 0 && vector.Size % featuresPerStep != 0)
                    throw new ArgumentOutOfRangeException(nameof(columnName), $"Feature column '{columnName}' has {vector.Size} values per row, not a multiple of FeaturesPerStep = {featuresPerStep}.");
                return new SequenceInput(columnName, 0, featuresPerStep, maximumLength);
            }
        }
        throw new ArgumentOutOfRangeException(nameof(columnName),
            $"Feature column '{columnName}' has type {type}; expected a vector of keys (e.g. TokenizeIntoWords → MapValueToKey) or a vector of Single (T × FeaturesPerStep values).");
    }

    /// <summary>Checks that a scoring-time column type matches what the model was trained on.</summary>
    public void CheckCompatible(DataViewSchema schema)
    {
        var column = schema.GetColumnOrNull(ColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(schema), $"Feature column '{Model.BoundedReader.Printable(ColumnName)}' not found in the input schema.");
        var other = FromType(column.Type, ColumnName, Math.Max(FeaturesPerStep, 1), MaximumLength);
        if (other.IsTokens != IsTokens)
            throw new ArgumentOutOfRangeException(nameof(schema), $"Feature column '{ColumnName}' has type {column.Type}, but the model was trained on {(IsTokens ? "a vector of keys" : "a vector of Single")}.");
        if (IsTokens && other.KeyCount != KeyCount)
            throw new ArgumentOutOfRangeException(nameof(schema), $"Feature column '{ColumnName}' has {other.KeyCount} keys, but the model was trained with a vocabulary of {KeyCount} keys.");
    }

    /// <summary>
    /// Reads one row's tokens (key values, 0..KeyCount, mapped through <see cref="TokenMap"/>) into
    /// <paramref name="tokens"/>, truncated to <see cref="MaximumLength"/>; <paramref name="length"/> is the number
    /// added. Never throws on the row's content: an empty vector is <see cref="RowStatus.Empty"/>, a key beyond the
    /// vocabulary is <see cref="RowStatus.Invalid"/> (nothing is added, <paramref name="length"/> is still the row's
    /// length, and <paramref name="problem"/> says why).
    /// </summary>
    public RowStatus ReadTokens(in VBuffer<uint> value, List<int> tokens, out int length, out string? problem)
    {
        problem = null;
        length = value.Length;
        if (length == 0)
            return RowStatus.Empty;
        if (MaximumLength > 0) length = Math.Min(length, MaximumLength);
        int start = tokens.Count;
        var values = value.GetValues();
        var indices = value.GetIndices();
        // Sparse vectors: implicit entries are key 0 (missing/unknown).
        for (int i = 0, next = 0; i < length; i++)
        {
            uint key;
            if (value.IsDense) key = values[i];
            else key = next < indices.Length && indices[next] == i ? values[next++] : 0;
            if (key > (uint)KeyCount)
            {
                tokens.RemoveRange(start, tokens.Count - start); // length stays the row's (truncated) length
                problem = $"key {key} at position {i} of column '{ColumnName}' is beyond the vocabulary of {KeyCount} keys";
                return RowStatus.Invalid;
            }
            tokens.Add(TokenMap is null ? (int)key : TokenMap[key]);
        }
        return RowStatus.Valid;
    }

    /// <summary>
    /// Reads one row's dense features into <paramref name="features"/> (T × F values, truncated to
    /// <see cref="MaximumLength"/> steps); <paramref name="steps"/> is T. Never throws on the row's content: an empty
    /// vector is <see cref="RowStatus.Empty"/>; a length that is not a multiple of F or a NaN/infinite value is
    /// <see cref="RowStatus.Invalid"/> (nothing is added, <paramref name="steps"/> is still the row's step count, and
    /// <paramref name="problem"/> names the step and feature).
    /// </summary>
    public RowStatus ReadFeatures(in VBuffer<float> value, List<float> features, out int steps, out string? problem)
    {
        problem = null;
        steps = 0;
        int f = FeaturesPerStep;
        if (value.Length == 0)
            return RowStatus.Empty;
        int count = Math.Min(value.Length / f, MaximumLength > 0 ? MaximumLength : int.MaxValue) * f;
        steps = count / f; // also for an invalid row: the steps it would have
        if (value.Length % f != 0)
        {
            problem = $"column '{ColumnName}' holds {value.Length} values, not a multiple of FeaturesPerStep = {f}";
            return RowStatus.Invalid;
        }
        var values = value.GetValues();
        if (value.IsDense)
        {
            int bad = System.Numerics.Tensors.TensorPrimitives.IndexOfMaxMagnitude(values[..count]);
            if (!float.IsFinite(values[bad]))
                return NotFinite(values[bad], bad, out problem);
            features.AddRange(values[..count]);
        }
        else
        {
            // Sparse: implicit entries are 0.
            var indices = value.GetIndices();
            for (int k = 0; k < indices.Length && indices[k] < count; k++)
                if (!float.IsFinite(values[k]))
                    return NotFinite(values[k], indices[k], out problem);
            int start = features.Count;
            for (int i = 0; i < count; i++) features.Add(0f);
            for (int k = 0; k < indices.Length && indices[k] < count; k++) features[start + indices[k]] = values[k];
        }
        return RowStatus.Valid;
    }

    private RowStatus NotFinite(float value, int index, out string problem)
    {
        problem = $"column '{ColumnName}' holds {value} at step {index / FeaturesPerStep}, feature {index % FeaturesPerStep}; values must be finite";
        return RowStatus.Invalid;
    }
}

/// <summary>What reading one row's feature value found.</summary>
internal enum RowStatus
{
    /// <summary>A sequence of at least one step.</summary>
    Valid,
    /// <summary>No steps (an empty token vector, e.g. from an empty or punctuation-only string): scored as "no evidence".</summary>
    Empty,
    /// <summary>A value the network cannot read (non-finite, out of the vocabulary, a wrong length): NaN scores when scoring, skipped in training.</summary>
    Invalid,
}
