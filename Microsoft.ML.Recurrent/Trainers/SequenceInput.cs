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

    public SequenceInput(string columnName, int keyCount, int featuresPerStep, int maximumLength, int[]? tokenMap = null)
    {
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
        return new SequenceInput(ColumnName, KeyCount, FeaturesPerStep, MaximumLength, map);
    }

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
            ?? throw new ArgumentOutOfRangeException(nameof(schema), $"Feature column '{ColumnName}' not found in the input schema.");
        var other = FromType(column.Type, ColumnName, Math.Max(FeaturesPerStep, 1), MaximumLength);
        if (other.IsTokens != IsTokens)
            throw new ArgumentOutOfRangeException(nameof(schema), $"Feature column '{ColumnName}' has type {column.Type}, but the model was trained on {(IsTokens ? "a vector of keys" : "a vector of Single")}.");
        if (IsTokens && other.KeyCount != KeyCount)
            throw new ArgumentOutOfRangeException(nameof(schema), $"Feature column '{ColumnName}' has {other.KeyCount} keys, but the model was trained with a vocabulary of {KeyCount} keys.");
    }

    /// <summary>
    /// Reads one row's tokens (key values, 0..KeyCount) into <paramref name="tokens"/>, truncated to
    /// <see cref="MaximumLength"/>. Returns the length. Throws naming the column and row for an empty vector or an
    /// out-of-range key.
    /// </summary>
    public int ReadTokens(in VBuffer<uint> value, long row, List<int> tokens)
    {
        int length = value.Length;
        if (length == 0)
            throw new InvalidOperationException($"Row {row}: the token vector in column '{ColumnName}' is empty; every row needs at least one token.");
        if (MaximumLength > 0) length = Math.Min(length, MaximumLength);
        var values = value.GetValues();
        var indices = value.GetIndices();
        if (value.IsDense)
        {
            for (int i = 0; i < length; i++)
                tokens.Add(CheckKey(values[i], row, i));
        }
        else
        {
            // Sparse: implicit entries are key 0 (missing/unknown).
            int next = 0;
            for (int i = 0; i < length; i++)
            {
                uint key = 0;
                if (next < indices.Length && indices[next] == i) key = values[next++];
                tokens.Add(CheckKey(key, row, i));
            }
        }
        return length;
    }

    private int CheckKey(uint key, long row, int position)
    {
        if (key > (uint)KeyCount)
            throw new InvalidOperationException($"Row {row}: key {key} at position {position} of column '{ColumnName}' is beyond the vocabulary of {KeyCount} keys.");
        return TokenMap is null ? (int)key : TokenMap[key];
    }

    /// <summary>
    /// Reads one row's dense features into <paramref name="features"/> (T × F values, truncated to
    /// <see cref="MaximumLength"/> steps). Returns T. Throws naming the column and row for an empty vector, a length
    /// that is not a multiple of F, or a NaN/infinite value.
    /// </summary>
    public int ReadFeatures(in VBuffer<float> value, long row, List<float> features)
    {
        int f = FeaturesPerStep;
        if (value.Length == 0)
            throw new InvalidOperationException($"Row {row}: the feature vector in column '{ColumnName}' is empty; every row needs at least one step.");
        if (value.Length % f != 0)
            throw new InvalidOperationException($"Row {row}: column '{ColumnName}' holds {value.Length} values, not a multiple of FeaturesPerStep = {f}.");
        int steps = value.Length / f;
        if (MaximumLength > 0) steps = Math.Min(steps, MaximumLength);
        int start = features.Count;
        int count = steps * f;
        if (value.IsDense)
        {
            var values = value.GetValues();
            for (int i = 0; i < count; i++) features.Add(values[i]);
        }
        else
        {
            for (int i = 0; i < count; i++) features.Add(0f);
            var values = value.GetValues();
            var indices = value.GetIndices();
            for (int k = 0; k < indices.Length && indices[k] < count; k++) features[start + indices[k]] = values[k];
        }
        for (int i = start; i < features.Count; i++)
            if (!float.IsFinite(features[i]))
                throw new InvalidOperationException($"Row {row}: column '{ColumnName}' holds {features[i]} at step {(i - start) / f}, feature {(i - start) % f}; values must be finite.");
        return steps;
    }
}
