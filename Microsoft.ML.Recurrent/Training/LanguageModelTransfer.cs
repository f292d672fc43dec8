using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Model;

namespace Microsoft.ML.Recurrent.Training;

/// <summary>
/// Transfer learning from language models (ULMFiT, Howard &amp; Ruder 2018): a classifier's embedding and recurrent
/// layers start from a trained forward language model and, for a bidirectional classifier, a backward one (trained on
/// the reversed text). Knows nothing of ML.NET.
/// <para>
/// The copy is exact: a network initialized this way computes, before fine-tuning, exactly what the language models
/// computed. With a backward model the embedding is the two models' embeddings side by side ([E_f | E_b]); each
/// direction's input weights read its own model's half, and the other half starts at zero — in layer 0 the other
/// model's embedding, in higher layers the other direction's outputs. Fine-tuning then learns those cross
/// connections. Without a backward model the reverse direction and the cross weights keep their random start.
/// </para>
/// </summary>
internal static class LanguageModelTransfer
{
    /// <summary>
    /// The language-model stream of token sequences: for each sequence (in the given order) the end-of-row id and
    /// its tokens, then a final end-of-row id. <paramref name="reverse"/> reverses the whole stream, which reverses
    /// every sequence — the backward model's text.
    /// </summary>
    public static int[] Stream(IReadOnlyList<ReadOnlyMemory<int>> sequences, int endOfRow, bool reverse)
    {
        long total = 1;
        foreach (var s in sequences) total += s.Length + 1;
        if (total > Array.MaxLength) throw new ArgumentException($"The text holds {total:N0} tokens, more than one stream can hold.", nameof(sequences));
        var stream = new int[total];
        int at = 0;
        foreach (var s in sequences)
        {
            stream[at++] = endOfRow;
            s.Span.CopyTo(stream.AsSpan(at));
            at += s.Length;
        }
        stream[at] = endOfRow;
        if (reverse) Array.Reverse(stream);
        return stream;
    }

    /// <summary>
    /// Copies the language models' embeddings and recurrent layers into <paramref name="target"/> (see the type's
    /// remarks). <paramref name="forwardIds"/>[r] is the forward model's id for the target's embedding row r (and
    /// likewise <paramref name="backwardIds"/>); map rows the model does not know to its unknown id. The target's
    /// bottom layers take the models' bottom layers; other parameters (head, attention) are left alone.
    /// </summary>
    /// <exception cref="ArgumentException">The shapes do not fit; the message names the parameter or the size.</exception>
    public static void Apply(RecurrentNetwork target, RecurrentNetwork forward, ReadOnlySpan<int> forwardIds,
        RecurrentNetwork? backward = null, ReadOnlySpan<int> backwardIds = default)
    {
        var t = target.Config;
        Check(t, forward.Config, "forward");
        if (backward is not null)
        {
            Check(t, backward.Config, "backward");
            if (!t.Bidirectional)
                throw new ArgumentException("A backward language model initializes the reverse direction: the target must be bidirectional.", nameof(backward));
            if (backward.Config.Cell != forward.Config.Cell || backward.Config.HiddenSize != forward.Config.HiddenSize)
                throw new ArgumentException("The forward and backward language models differ in cell or hidden size.", nameof(backward));
        }
        int ef = forward.Config.InputSize, eb = backward?.Config.InputSize ?? 0;
        if (t.InputSize != ef + eb)
            throw new ArgumentException($"The target's embedding width is {t.InputSize}; the language model(s) need {ef + eb} ({ef}{(backward is null ? "" : $" + {eb}")}).", nameof(target));
        if (t.UsesCharacters)
            throw new ArgumentException("A target with character features has a different layer-0 input; transfer from a language model is not supported for it.", nameof(target));
        if (forwardIds.Length != t.VocabularySize)
            throw new ArgumentException($"{forwardIds.Length} forward ids for {t.VocabularySize} embedding rows.", nameof(forwardIds));
        if (backward is not null && backwardIds.Length != t.VocabularySize)
            throw new ArgumentException($"{backwardIds.Length} backward ids for {t.VocabularySize} embedding rows.", nameof(backwardIds));

        var ps = target.Parameters;
        var embedding = ps.Value(ps["embedding.weight"]);
        CopyEmbedding(embedding, t.InputSize, 0, forward, forwardIds);
        if (backward is not null)
            CopyEmbedding(embedding, t.InputSize, ef, backward, backwardIds);

        int h = t.HiddenSize, d = t.Bidirectional ? 2 : 1;
        for (int l = 0; l < t.NumLayers; l++)
        {
            int targetInput = l == 0 ? t.InputSize : d * h;
            CopyDirection(ps, $"l{l}", forward, targetInput, column: 0, zeroOthers: backward is not null);
            if (backward is not null)
                CopyDirection(ps, $"l{l}_reverse", backward, targetInput, column: l == 0 ? ef : h, zeroOthers: true, sourceSuffix: $"l{l}");
        }
    }

    private static void Check(NetworkConfig target, NetworkConfig model, string which)
    {
        if (!model.TokenInput || model.Head != NetworkHeadKind.PerStep || model.Bidirectional)
            throw new ArgumentException($"The {which} model is not a language model (token input, unidirectional, a per-step head).");
        if (!target.TokenInput)
            throw new ArgumentException("The target reads dense features; a language model initializes token input only.");
        if (model.Cell != target.Cell)
            throw new ArgumentException($"The {which} language model's cell is {model.Cell}; the target's is {target.Cell}.");
        if (model.HiddenSize != target.HiddenSize)
            throw new ArgumentException($"The {which} language model's hidden size is {model.HiddenSize}; the target's is {target.HiddenSize}.");
        if (model.NumLayers < target.NumLayers)
            throw new ArgumentException($"The {which} language model has {model.NumLayers} layer(s); the target needs {target.NumLayers}.");
    }

    /// <summary>Columns [column, column + E) of every target row r ← the model's embedding row ids[r].</summary>
    private static void CopyEmbedding(Span<float> embedding, int width, int column, RecurrentNetwork model, ReadOnlySpan<int> ids)
    {
        var mp = model.Parameters;
        var source = mp.Value(mp["embedding.weight"]);
        int e = model.Config.InputSize, v = model.Config.VocabularySize;
        for (int r = 0; r < ids.Length; r++)
        {
            int id = ids[r];
            if ((uint)id >= (uint)v)
                throw new ArgumentException($"Embedding row {r} maps to id {id}, outside the language model's {v} ids.", nameof(ids));
            source.Slice(id * e, e).CopyTo(embedding.Slice(r * width + column, e));
        }
    }

    /// <summary>
    /// One direction of one layer: hidden weights and biases copied; the input weights [G·H, I_target] take the
    /// model's [G·H, I_model] at columns [column, column + I_model), the other columns zero when
    /// <paramref name="zeroOthers"/> (else left as they are).
    /// </summary>
    private static void CopyDirection(ParameterSet ps, string suffix, RecurrentNetwork model, int targetInput, int column, bool zeroOthers, string? sourceSuffix = null)
    {
        var mp = model.Parameters;
        string from = sourceSuffix ?? suffix;
        foreach (var name in new[] { "weight_hh_", "bias_ih_", "bias_hh_" })
        {
            var source = mp.Value(mp[$"rnn.{name}{from}"]);
            var destination = ps.Value(ps[$"rnn.{name}{suffix}"]);
            if (source.Length != destination.Length)
                throw new ArgumentException($"rnn.{name}{from} has {source.Length} values; the target's rnn.{name}{suffix} has {destination.Length}.");
            source.CopyTo(destination);
        }
        var sourceIh = mp[$"rnn.weight_ih_{from}"];
        var targetIh = ps[$"rnn.weight_ih_{suffix}"];
        int rows = sourceIh.Shape[0], sourceInput = sourceIh.Shape[1];
        if (targetIh.Shape[0] != rows || targetIh.Shape[1] != targetInput || column + sourceInput > targetInput)
            throw new ArgumentException($"rnn.weight_ih_{from} is [{rows}, {sourceInput}]; it does not fit the target's rnn.weight_ih_{suffix} [{targetIh.Shape[0]}, {targetIh.Shape[1]}] at column {column}.");
        var s = mp.Value(sourceIh);
        var d = ps.Value(targetIh);
        for (int r = 0; r < rows; r++)
        {
            var row = d.Slice(r * targetInput, targetInput);
            if (zeroOthers) row.Clear();
            s.Slice(r * sourceInput, sourceInput).CopyTo(row.Slice(column, sourceInput));
        }
    }
}
