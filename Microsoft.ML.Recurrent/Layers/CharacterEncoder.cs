using Microsoft.ML.Recurrent.Core;

namespace Microsoft.ML.Recurrent.Layers;

/// <summary>
/// The character-level word encoder of a BiLSTM tagger (Lample et al. 2016, "Neural Architectures for Named Entity
/// Recognition", §4.1): each word's characters are embedded and read by a one-layer bidirectional recurrent network,
/// and the word's vector is [final forward state | final reverse state] — the forward direction after the last
/// character, the reverse direction after the first. The vector is meant to be concatenated to the word embedding, so
/// that words never seen in training still get a representation built from their spelling.
/// <para>Parameters (PyTorch names and shapes): <c>{prefix}embedding.weight</c> [Vc, Ec], and the stack's
/// <c>{prefix}rnn.weight_ih_l0</c> [G·H, Ec], <c>{prefix}rnn.weight_hh_l0</c> [G·H, H], <c>{prefix}rnn.bias_ih_l0</c>,
/// <c>{prefix}rnn.bias_hh_l0</c> [G·H] and the same with <c>_reverse</c>. Character id 0 is the unknown character: an
/// ordinary learned row, not padding.</para>
/// <para>All W words of a call are the sequences of ONE ragged batch (see <see cref="RaggedBatch"/>), so the words of a
/// whole batch of sentences cost one stack forward: step t is one GEMM over the words longer than t.</para>
/// <para>Words with no characters are left out of the batch: their output row is zeros and they get no gradient.
/// Words longer than <see cref="MaximumWordLength"/> (when it is positive) keep their first ⌈k/2⌉ and last ⌊k/2⌋
/// characters, so both the prefix (capitalization, prefixes) and the suffix (inflection) are still read; the characters
/// in between are skipped and get no gradient.</para>
/// <para>Optional inverted dropout on the character embeddings (<see cref="Dropout"/>), active when <see cref="Forward"/>
/// gets a generator, as in the rest of the network. The stack has one layer, so it has no dropout of its own.</para>
/// <para>What this deliberately is not: it does not map text to character ids (the caller's input piece does), and it
/// keeps no state between calls other than the activations of the last <see cref="Forward"/> for <see cref="Backward"/>.</para>
/// </summary>
internal sealed class CharacterEncoder
{
    private readonly Embedding _embedding;
    private readonly RecurrentStack _stack;
    private readonly Dropout _dropout;

    // The last forward, in the layout of the ragged batch of non-empty words (reused from call to call).
    private RaggedBatch? _batch;
    private int[] _ids = [];        // [N] character ids of the non-empty words, concatenated in compact order, capped
    private int[] _lengths = [];    // [W'] (capped) length of each non-empty word, compact order (longest first)
    private int[] _words = [];      // [W'] compact index → the caller's word index
    private int[] _starts = [];     // [W'] scratch: first character of each compact word in the caller's array
    private int[] _slots = [];      // [longest + 1] scratch of the counting sort
    private float[] _x = [];        // [N, Ec] embedded (and dropped-out) characters, packed
    private float[] _dX = [];       // [N, Ec]
    private float[] _hN = [];       // [2, W', H] final states, sorted order (also dhN in backward)
    private int _wordCount = -1;    // W of the last forward, −1 before the first
    private int _activeWords;       // W' of the last forward
    private int _characterCount;    // Σ lengths of the last forward (uncapped)

    /// <summary>Character vocabulary size Vc (id 0 = unknown character).</summary>
    public int CharacterVocabularySize => _embedding.VocabularySize;

    /// <summary>Character embedding width Ec.</summary>
    public int CharacterEmbeddingSize => _embedding.Dimension;

    /// <summary>Hidden width H of each direction.</summary>
    public int HiddenSize => _stack.HiddenSize;

    /// <summary>Output width per word: 2·H.</summary>
    public int OutputSize => _stack.OutputSize;

    /// <summary>Cell kind of the character network.</summary>
    public RecurrentCellKind CellKind => _stack.CellKind;

    /// <summary>Characters read per word at most, k (0 = all); a longer word keeps its first ⌈k/2⌉ and last ⌊k/2⌋.</summary>
    public int MaximumWordLength { get; }

    /// <summary>Dropout probability on the character embeddings (training only).</summary>
    public float DropoutProbability => _dropout.Probability;

    /// <summary>Threads of the character network (the two directions run at once with 2). Results do not depend on it.</summary>
    public int Threads
    {
        get => _stack.Threads;
        set => _stack.Threads = value;
    }

    /// <summary>Weights never change (inference copies): see <see cref="RecurrentStack.WeightsFrozen"/>.</summary>
    public bool WeightsFrozen
    {
        get => _stack.WeightsFrozen;
        set => _stack.WeightsFrozen = value;
    }

    /// <summary>
    /// Registers <c>{prefix}embedding.weight</c> [Vc, Ec] and the one-layer bidirectional stack <c>{prefix}rnn.*</c>
    /// (input Ec, hidden H). <paramref name="maximumWordLength"/> k caps the characters read per word (0 = no cap);
    /// <paramref name="dropout"/> is the training-time dropout probability on the character embeddings.
    /// </summary>
    public CharacterEncoder(ParameterSet parameters, string prefix, int characterVocabularySize, int characterEmbeddingSize,
        int hiddenSize, RecurrentCellKind cell = RecurrentCellKind.Lstm, int maximumWordLength = 0, float dropout = 0f)
    {
        if (maximumWordLength < 0)
            throw new ArgumentOutOfRangeException(nameof(maximumWordLength), maximumWordLength, "The maximum word length must be 0 (no cap) or positive.");
        _embedding = new Embedding(parameters, $"{prefix}embedding.", characterVocabularySize, characterEmbeddingSize);
        _stack = new RecurrentStack(parameters, $"{prefix}rnn.", cell, characterEmbeddingSize, hiddenSize, numLayers: 1,
            bidirectional: true, dropout: 0f);
        _dropout = new Dropout(dropout);
        MaximumWordLength = maximumWordLength;
    }

    /// <summary>PyTorch's defaults, in registration order: embedding N(0, 1), recurrent weights U(−1/√H, 1/√H).</summary>
    public void Initialize(SeededRandom random)
    {
        _embedding.Initialize(random);
        _stack.Initialize(random);
    }

    /// <summary>Number of characters read of a word of <paramref name="length"/> characters.</summary>
    public int ReadLength(int length) => MaximumWordLength > 0 ? Math.Min(length, MaximumWordLength) : length;

    /// <summary>
    /// Encodes W words. lengths [W]: characters per word, in the caller's word order (0 allowed); characters [Σ lengths]:
    /// the character ids of all words concatenated in that order; output [W, 2H] in the caller's word order:
    /// output[w] = [h_fwd after the last character | h_rev after the first character], zeros for a word with no characters.
    /// <paramref name="dropout"/> non-null enables training-time dropout on the character embeddings.
    /// </summary>
    public void Forward(ReadOnlySpan<int> characters, ReadOnlySpan<int> lengths, Span<float> output, SeededRandom? dropout = null)
    {
        int w = lengths.Length, h = HiddenSize, width = OutputSize, e = CharacterEmbeddingSize;
        if (output.Length < w * width)
            throw new ArgumentException($"The output holds {output.Length} values; {w} words need {w * width}.", nameof(output));
        int words = Gather(characters, lengths);
        _wordCount = w;
        _characterCount = characters.Length;
        _activeWords = words;
        output.Slice(0, w * width).Clear();
        if (words == 0)
            return;

        if (_batch is null) _batch = new RaggedBatch(_lengths.AsSpan(0, words));
        else _batch.Reset(_lengths.AsSpan(0, words));
        var batch = _batch;
        int n = batch.TotalSteps;
        var ids = _ids.AsSpan(0, n);
        var x = Workspace.Ensure(ref _x, n * e);                 // [N, Ec]
        _embedding.Forward(batch, ids, x);
        _dropout.Forward(x, x, dropout);
        _stack.Forward(batch, x, random: null);
        var hN = Workspace.Ensure(ref _hN, 2 * words * h);      // [2, W', H] sorted order
        _stack.FinalStates(batch, hN, default);

        // output[word, 0:H] = hN[0, j], output[word, H:2H] = hN[1, j] for sorted word j
        for (int j = 0; j < words; j++)
        {
            int word = _words[batch.Order[j]];
            hN.Slice(j * h, h).CopyTo(output.Slice(word * width, h));
            hN.Slice((words + j) * h, h).CopyTo(output.Slice(word * width + h, h));
        }
    }

    /// <summary>
    /// Backward of the last <see cref="Forward"/> given dOutput [W, 2H] (caller's word order): adds into the gradients of
    /// the character embeddings and the recurrent weights. Pass the same characters and lengths as that forward.
    /// </summary>
    public void Backward(ReadOnlySpan<int> characters, ReadOnlySpan<int> lengths, ReadOnlySpan<float> dOutput)
    {
        int w = lengths.Length, h = HiddenSize, width = OutputSize, e = CharacterEmbeddingSize;
        if (_wordCount < 0)
            throw new InvalidOperationException("Backward needs a forward pass first.");
        if (w != _wordCount || characters.Length != _characterCount)
            throw new ArgumentException($"Backward got {w} words and {characters.Length} characters; the last forward had {_wordCount} and {_characterCount}.", nameof(lengths));
        if (dOutput.Length < w * width)
            throw new ArgumentException($"dOutput holds {dOutput.Length} values; {w} words need {w * width}.", nameof(dOutput));
        var batch = _batch;
        if (_activeWords == 0 || batch is null)
            return;

        int words = batch.BatchSize, n = batch.TotalSteps;
        // dhN[0, j] = dOutput[word, 0:H], dhN[1, j] = dOutput[word, H:2H] for sorted word j
        var dhN = Workspace.Ensure(ref _hN, 2 * words * h);
        for (int j = 0; j < words; j++)
        {
            int word = _words[batch.Order[j]];
            dOutput.Slice(word * width, h).CopyTo(dhN.Slice(j * h, h));
            dOutput.Slice(word * width + h, h).CopyTo(dhN.Slice((words + j) * h, h));
        }
        var dX = Workspace.Ensure(ref _dX, n * e);               // [N, Ec]
        dX.Clear();
        _stack.Backward(batch, _x.AsSpan(0, n * e), default, dhN, default, dX);
        _dropout.Backward(dX, dX);
        _embedding.Backward(batch, _ids.AsSpan(0, n), dX);
    }

    /// <summary>
    /// Validates the input and lays out the non-empty words for the ragged batch, longest first: <see cref="_words"/>
    /// [W'] their word indices, <see cref="_lengths"/> [W'] their (capped) lengths, <see cref="_ids"/> [N] their
    /// (capped) character ids concatenated in that order. Returns W', the number of non-empty words.
    /// </summary>
    /// <remarks>
    /// The words are ordered here by a stable counting sort on the length (lengths are small), so the batch receives
    /// them already sorted and its own stable insertion sort runs in O(W') instead of O(W'²) for the ~800 words of a
    /// batch of sentences. The order inside the batch does not change any result (every word is encoded as if alone).
    /// </remarks>
    private int Gather(ReadOnlySpan<int> characters, ReadOnlySpan<int> lengths)
    {
        int w = lengths.Length, v = CharacterVocabularySize;
        long total = 0, kept = 0;
        int longest = 0;
        for (int i = 0; i < w; i++)
        {
            if (lengths[i] < 0)
                throw new ArgumentOutOfRangeException(nameof(lengths), lengths[i], $"Word {i} has a negative number of characters.");
            total += lengths[i];
            kept += ReadLength(lengths[i]);
            longest = Math.Max(longest, ReadLength(lengths[i]));
        }
        if (total != characters.Length)
            throw new ArgumentException($"The word lengths add up to {total} characters but {characters.Length} were given.", nameof(characters));
        for (int i = 0; i < characters.Length; i++)
            if ((uint)characters[i] >= (uint)v)
                ThrowInvalidCharacter(characters, lengths, i);

        // slot[L] = first position of the words of (read) length L in the longest-first order, L = longest … 1.
        var slot = Workspace.Ensure(ref _slots, longest + 1);
        slot.Clear();
        for (int i = 0; i < w; i++)
            slot[ReadLength(lengths[i])]++;
        int words = 0;
        for (int length = longest; length >= 1; length--)
        {
            int count = slot[length];
            slot[length] = words;
            words += count;
        }

        var ids = Workspace.Ensure(ref _ids, (int)kept);             // [N]
        var sortedLengths = Workspace.Ensure(ref _lengths, words);   // [W']
        var wordOf = Workspace.Ensure(ref _words, words);            // [W']
        var starts = Workspace.Ensure(ref _starts, words);           // [W'] first character of each word in the caller's array
        int start = 0;
        for (int i = 0; i < w; i++)
        {
            int read = ReadLength(lengths[i]);
            if (read > 0)
            {
                int k = slot[read]++;
                wordOf[k] = i;
                sortedLengths[k] = read;
                starts[k] = start;
            }
            start += lengths[i];
        }
        int next = 0;
        for (int k = 0; k < words; k++)
        {
            int length = lengths[wordOf[k]], read = sortedLengths[k];
            var word = characters.Slice(starts[k], length);
            // A capped word keeps its first ⌈k/2⌉ and last ⌊k/2⌋ characters.
            int head = read == length ? length : (read + 1) / 2;
            word.Slice(0, head).CopyTo(ids.Slice(next));
            word.Slice(length - (read - head), read - head).CopyTo(ids.Slice(next + head));
            next += read;
        }
        return words;
    }

    private void ThrowInvalidCharacter(ReadOnlySpan<int> characters, ReadOnlySpan<int> lengths, int index)
    {
        int word = 0, start = 0;
        while (start + lengths[word] <= index)
            start += lengths[word++];
        throw new ArgumentOutOfRangeException(nameof(characters), characters[index],
            $"Character id {characters[index]} at position {index - start} of word {word} is outside the character vocabulary [0, {CharacterVocabularySize}).");
    }
}
