using System.Numerics;
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
/// whole batch of sentences cost one stack forward: step t is one GEMM over the words longer than t. A word that occurs
/// several times in a call (the same characters as read) is encoded once: its occurrences share the output, and in
/// backward their output gradients are added, in word order, into the one sequence's final-state gradient. Outputs are
/// those of encoding every word alone, bit for bit, and gradients equal the sum over occurrences up to rounding; only
/// the character-embedding dropout mask is shared by the occurrences of a word. In running text this removes a large share of the work (800 consecutive tokens of the Brown
/// corpus hold 362 distinct words and 61 % of the characters).</para>
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

    // The last forward (grow-only, reused from call to call). W = words of the call, U = distinct non-empty words (the
    // sequences of the batch), in "compact" order k = longest first; j = the batch's sorted order (see RaggedBatch.Order).
    private RaggedBatch? _batch;
    private int[] _compactOf = [];  // [W] word → compact index k of its distinct word, −1 for a word with no characters
    private int[] _lengths = [];    // [U] (capped) length of distinct word k, non-increasing
    private int[] _sortedOf = [];   // [U] compact k → sorted j in the batch
    private int[] _ids = [];        // [N] (capped) character ids of the distinct words, concatenated in compact order
    private float[] _x = [];        // [N, Ec] embedded (and dropped-out) characters, packed
    private float[] _dX = [];       // [N, Ec]
    private float[] _hN = [];       // [2, U, H] final states, sorted order (dhN in backward)
    private int _wordCount = -1;    // W of the last forward, −1 before the first
    private int _distinctWords;     // U of the last forward
    private int _characterCount;    // Σ lengths of the last forward (uncapped)
    // Scratch of the gathering.
    private int[] _table = [];      // open-addressing hash table of distinct words (first-seen index u, −1 = empty)
    private int[] _firstWord = [];  // [U] first-seen u → its first word
    private int[] _hashes = [];     // [U] first-seen u → hash of its characters
    private int[] _rank = [];       // [U] first-seen u → compact k
    private int[] _starts = [];     // [W] first character of each word in the caller's array
    private int[] _slots = [];      // [longest + 1] counting sort

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

    /// <summary>Distinct non-empty words of the last <see cref="Forward"/>: the sequences that were actually encoded.</summary>
    public int DistinctWords => _distinctWords;

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
        int u = Gather(characters, lengths);
        _wordCount = w;
        _characterCount = characters.Length;
        _distinctWords = u;
        if (u == 0)
        {
            output.Slice(0, w * width).Clear();
            return;
        }

        var lengthsOfBatch = _lengths.AsSpan(0, u);
        if (_batch is null) _batch = new RaggedBatch(lengthsOfBatch);
        else _batch.Reset(lengthsOfBatch);
        var batch = _batch;
        var sortedOf = Workspace.Ensure(ref _sortedOf, u);
        for (int j = 0; j < u; j++)
            sortedOf[batch.Order[j]] = j;
        int n = batch.TotalSteps;
        var x = Workspace.Ensure(ref _x, n * e);                 // [N, Ec]
        _embedding.Forward(batch, _ids.AsSpan(0, n), x);
        _dropout.Forward(x, x, dropout);
        _stack.Forward(batch, x, random: null);
        var hN = Workspace.Ensure(ref _hN, 2 * u * h);          // [2, U, H] sorted order
        _stack.FinalStates(batch, hN, default);

        // output[i, 0:H] = hN[0, j], output[i, H:2H] = hN[1, j], j = sorted index of word i's distinct word (zeros if none)
        for (int i = 0; i < w; i++)
        {
            var row = output.Slice(i * width, width);
            int k = _compactOf[i];
            if (k < 0)
            {
                row.Clear();
                continue;
            }
            int j = sortedOf[k];
            hN.Slice(j * h, h).CopyTo(row);
            hN.Slice((u + j) * h, h).CopyTo(row.Slice(h));
        }
    }

    /// <summary>
    /// Backward of the last <see cref="Forward"/> given dOutput [W, 2H] (caller's word order): adds into the gradients of
    /// the character embeddings and the recurrent weights. Pass the same characters and lengths as that forward.
    /// </summary>
    public void Backward(ReadOnlySpan<int> characters, ReadOnlySpan<int> lengths, ReadOnlySpan<float> dOutput)
    {
        int w = lengths.Length, h = HiddenSize, width = OutputSize, e = CharacterEmbeddingSize, u = _distinctWords;
        if (_wordCount < 0)
            throw new InvalidOperationException("Backward needs a forward pass first.");
        if (w != _wordCount || characters.Length != _characterCount)
            throw new ArgumentException($"Backward got {w} words and {characters.Length} characters; the last forward had {_wordCount} and {_characterCount}.", nameof(lengths));
        if (dOutput.Length < w * width)
            throw new ArgumentException($"dOutput holds {dOutput.Length} values; {w} words need {w * width}.", nameof(dOutput));
        var batch = _batch;
        if (u == 0 || batch is null)
            return;

        // dhN[0, j] = Σ dOutput[i, 0:H], dhN[1, j] = Σ dOutput[i, H:2H] over the words i of sorted distinct word j, in word order
        var dhN = Workspace.Ensure(ref _hN, 2 * u * h);         // [2, U, H]
        dhN.Clear();
        for (int i = 0; i < w; i++)
        {
            int k = _compactOf[i];
            if (k < 0) continue;
            int j = _sortedOf[k];
            var forward = dhN.Slice(j * h, h);
            var reverse = dhN.Slice((u + j) * h, h);
            System.Numerics.Tensors.TensorPrimitives.Add(forward, dOutput.Slice(i * width, h), forward);
            System.Numerics.Tensors.TensorPrimitives.Add(reverse, dOutput.Slice(i * width + h, h), reverse);
        }
        int n = batch.TotalSteps;
        var dX = Workspace.Ensure(ref _dX, n * e);               // [N, Ec]
        dX.Clear();
        _stack.Backward(batch, _x.AsSpan(0, n * e), default, dhN, default, dX);
        _dropout.Backward(dX, dX);
        _embedding.Backward(batch, _ids.AsSpan(0, n), dX);
    }

    /// <summary>
    /// Validates the input and lays out the distinct non-empty words for the ragged batch, longest first:
    /// <see cref="_compactOf"/> [W] each word's distinct word k (−1 if empty), <see cref="_lengths"/> [U] their (capped)
    /// lengths and <see cref="_ids"/> [N] their (capped) character ids concatenated in that order. Returns U.
    /// </summary>
    /// <remarks>
    /// Distinct words are found with an open-addressing hash table over their characters as read (after the cap). They
    /// are then ordered by a stable counting sort on the length, so the batch receives them already sorted and its own
    /// stable insertion sort runs in O(U) instead of O(U²). Neither the order nor the sharing changes any output: every
    /// word is encoded as if alone.
    /// </remarks>
    private int Gather(ReadOnlySpan<int> characters, ReadOnlySpan<int> lengths)
    {
        int w = lengths.Length, v = CharacterVocabularySize;
        long total = 0;
        for (int i = 0; i < w; i++)
        {
            if (lengths[i] < 0)
                throw new ArgumentOutOfRangeException(nameof(lengths), lengths[i], $"Word {i} has a negative number of characters.");
            total += lengths[i];
        }
        if (total != characters.Length)
            throw new ArgumentException($"The word lengths add up to {total} characters but {characters.Length} were given.", nameof(characters));
        for (int c = 0; c < characters.Length; c++)
            if ((uint)characters[c] >= (uint)v)
                ThrowInvalidCharacter(characters, lengths, c);

        // Distinct words, numbered u in order of first occurrence; compactOf[i] holds u for now.
        var compactOf = Workspace.Ensure(ref _compactOf, w);
        var starts = Workspace.Ensure(ref _starts, w);
        var firstWord = Workspace.Ensure(ref _firstWord, w);
        var hashes = Workspace.Ensure(ref _hashes, w);
        int capacity = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(2 * w, 16));
        var table = Workspace.Ensure(ref _table, capacity);
        table.Fill(-1);
        int distinct = 0, longest = 0, start = 0;
        for (int i = 0; i < w; i++)
        {
            int length = lengths[i], read = ReadLength(length);
            starts[i] = start;
            start += length;
            if (read == 0)
            {
                compactOf[i] = -1;
                continue;
            }
            var word = characters.Slice(starts[i], length);
            int hash = Hash(word, read);
            int slot = hash & (capacity - 1);
            while (true)
            {
                int other = table[slot];
                if (other < 0)
                {
                    table[slot] = distinct;
                    firstWord[distinct] = i;
                    hashes[distinct] = hash;
                    compactOf[i] = distinct++;
                    longest = Math.Max(longest, read);
                    break;
                }
                int first = firstWord[other];
                if (hashes[other] == hash && ReadLength(lengths[first]) == read && SameAsRead(characters.Slice(starts[first], lengths[first]), word, read))
                {
                    compactOf[i] = other;
                    break;
                }
                slot = (slot + 1) & (capacity - 1);
            }
        }

        // Stable counting sort of the distinct words by length, longest first: rank[u] = k.
        var slots = Workspace.Ensure(ref _slots, longest + 1);
        slots.Clear();
        for (int d = 0; d < distinct; d++)
            slots[ReadLength(lengths[firstWord[d]])]++;
        for (int length = longest, next = 0; length >= 1; length--)
        {
            int count = slots[length];
            slots[length] = next;
            next += count;
        }
        var rank = Workspace.Ensure(ref _rank, distinct);
        var sortedLengths = Workspace.Ensure(ref _lengths, distinct);
        var order = Workspace.Ensure(ref _sortedOf, distinct);  // scratch here: k → u
        long kept = 0;
        for (int d = 0; d < distinct; d++)
        {
            int read = ReadLength(lengths[firstWord[d]]);
            int k = slots[read]++;
            rank[d] = k;
            sortedLengths[k] = read;
            order[k] = d;
            kept += read;
        }
        for (int i = 0; i < w; i++)
            if (compactOf[i] >= 0)
                compactOf[i] = rank[compactOf[i]];

        // ids [N]: the characters of distinct word k as read, k = 0 … U−1.
        var ids = Workspace.Ensure(ref _ids, (int)kept);
        int position = 0;
        for (int k = 0; k < distinct; k++)
        {
            int i = firstWord[order[k]], length = lengths[i], read = sortedLengths[k];
            var word = characters.Slice(starts[i], length);
            for (int p = 0; p < read; p++)
                ids[position + p] = word[ReadPosition(length, read, p)];
            position += read;
        }
        return distinct;
    }

    /// <summary>
    /// Index in a word of <paramref name="length"/> characters of its <paramref name="p"/>-th character as read, when
    /// <paramref name="read"/> are read: a capped word keeps its first ⌈read/2⌉ and last ⌊read/2⌋ characters.
    /// </summary>
    private static int ReadPosition(int length, int read, int p) =>
        read == length || p < (read + 1) / 2 ? p : length - read + p;

    /// <summary>Whether two words read the same characters (both read <paramref name="read"/>).</summary>
    private static bool SameAsRead(ReadOnlySpan<int> a, ReadOnlySpan<int> b, int read)
    {
        for (int p = 0; p < read; p++)
            if (a[ReadPosition(a.Length, read, p)] != b[ReadPosition(b.Length, read, p)])
                return false;
        return true;
    }

    /// <summary>FNV-1a over the characters as read, and the count.</summary>
    private static int Hash(ReadOnlySpan<int> word, int read)
    {
        uint hash = 2166136261u ^ (uint)read;
        for (int p = 0; p < read; p++)
            hash = (hash ^ (uint)word[ReadPosition(word.Length, read, p)]) * 16777619u;
        return (int)(hash ^ (hash >> 15));
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
