using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Layers;

namespace Microsoft.ML.Recurrent.Tests;

/// <summary>
/// The character-level word encoder: finite-difference gradients of every parameter, batch = each word alone (bitwise),
/// agreement with RecurrentStack run by hand on one word, words with no characters, the length cap, bad input, and no
/// allocation in steady state.
/// </summary>
[TestClass]
public sealed class CharacterEncoderTests
{
    private const string Prefix = "char.";

    private static (ParameterSet Parameters, CharacterEncoder Encoder) Create(RecurrentCellKind cell, int vocabulary, int embedding,
        int hidden, int maximumWordLength = 0, float dropout = 0f, long seed = 11)
    {
        var parameters = new ParameterSet();
        var encoder = new CharacterEncoder(parameters, Prefix, vocabulary, embedding, hidden, cell, maximumWordLength, dropout);
        parameters.Allocate();
        encoder.Initialize(new SeededRandom(seed));
        return (parameters, encoder);
    }

    /// <summary>Random words: lengths [W] in [minLength, maxLength] and their character ids concatenated.</summary>
    private static (int[] Characters, int[] Lengths) RandomWords(SeededRandom random, int words, int minLength, int maxLength, int vocabulary)
    {
        var lengths = new int[words];
        for (int i = 0; i < words; i++) lengths[i] = minLength + random.NextInt(maxLength - minLength + 1);
        var characters = new int[lengths.Sum()];
        for (int i = 0; i < characters.Length; i++) characters[i] = random.NextInt(vocabulary);
        return (characters, lengths);
    }

    [TestMethod]
    public void ParametersHavePyTorchNamesAndShapes()
    {
        var (parameters, encoder) = Create(RecurrentCellKind.Lstm, 30, 5, 4);
        var expected = new (string, int[])[]
        {
            ("char.embedding.weight", [30, 5]),
            ("char.rnn.weight_ih_l0", [16, 5]), ("char.rnn.weight_hh_l0", [16, 4]), ("char.rnn.bias_ih_l0", [16]), ("char.rnn.bias_hh_l0", [16]),
            ("char.rnn.weight_ih_l0_reverse", [16, 5]), ("char.rnn.weight_hh_l0_reverse", [16, 4]),
            ("char.rnn.bias_ih_l0_reverse", [16]), ("char.rnn.bias_hh_l0_reverse", [16]),
        };
        Assert.AreEqual(expected.Length, parameters.Parameters.Count);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.AreEqual(expected[i].Item1, parameters.Parameters[i].Name);
            CollectionAssert.AreEqual(expected[i].Item2, parameters.Parameters[i].Shape, expected[i].Item1);
        }
        Assert.AreEqual(8, encoder.OutputSize);
        var gru = Create(RecurrentCellKind.Gru, 30, 5, 4).Parameters;
        CollectionAssert.AreEqual(new[] { 12, 5 }, gru["char.rnn.weight_ih_l0"].Shape);
    }

    /// <summary>
    /// L = Σ output ⊙ G for a fixed random G, checked by central differences for every element of every parameter, on
    /// words of lengths 0 to 5 (several of length 1, one of length 0); with the cap and dropout (fixed mask) too.
    /// </summary>
    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm, 0, 0f)]
    [DataRow(RecurrentCellKind.Gru, 0, 0f)]
    [DataRow(RecurrentCellKind.RnnTanh, 0, 0f)]
    [DataRow(RecurrentCellKind.Lstm, 3, 0.3f)]
    [DataRow(RecurrentCellKind.Gru, 4, 0.3f)]
    public void GradientsMatchFiniteDifferences(RecurrentCellKind cell, int maximumWordLength, float dropout)
    {
        const int vocabulary = 6, embedding = 3, hidden = 3;
        var (parameters, encoder) = Create(cell, vocabulary, embedding, hidden, maximumWordLength, dropout);
        var random = new SeededRandom(23 + (int)cell * 100 + maximumWordLength);
        random.FillUniform(parameters.Values, -0.7f, 0.7f);
        // Lengths 0 to 5, several of length 1; words 5 and 7 repeat words 1 and 0, and with a cap of 3 words 2 and 6
        // read the same characters [1, 4, 3]: each is encoded once and gets the sum of its occurrences' gradients.
        int[][] words = [[0, 1, 2], [3], [1, 4, 5, 2, 3], [], [5, 5], [3], [1, 4, 0, 3], [0, 1, 2], [2]];
        var (characters, lengths) = Concatenate(words);
        int width = encoder.OutputSize;
        var g = new float[lengths.Length * width];
        random.FillUniform(g, -1f, 1f);
        var output = new float[g.Length];

        double Loss()
        {
            encoder.Forward(characters, lengths, output, dropout > 0 ? new SeededRandom(99) : null);
            double sum = 0;
            for (int i = 0; i < output.Length; i++) sum += (double)output[i] * g[i];
            return sum;
        }

        Loss();
        parameters.ZeroGradients();
        encoder.Backward(characters, lengths, g);

        var failures = new List<string>();
        foreach (var p in parameters.Parameters)
            GradientCheckTests.CheckAll(p.Length, i => parameters.Values[p.Offset + i], (i, v) => parameters.Values[p.Offset + i] = v,
                parameters.Gradient(p).ToArray(), Loss, p.Name, failures);
        Assert.AreEqual(0, failures.Count, string.Join("\n", failures.Take(20)));
        CollectionAssert.AreEqual(new float[width], output.AsSpan(3 * width, width).ToArray(), "A word with no characters encodes to zeros.");
        Assert.IsTrue(parameters.Gradients.Any(v => v != 0), "Some gradient must be non-zero.");
        Assert.AreEqual(maximumWordLength == 3 ? 5 : 6, encoder.DistinctWords);
    }

    private static (int[] Characters, int[] Lengths) Concatenate(IEnumerable<int[]> words) =>
        (words.SelectMany(c => c).ToArray(), words.Select(c => c.Length).ToArray());

    /// <summary>The output of a batch of words equals, bit for bit, each word encoded alone, with 1 or 2 threads.</summary>
    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm, 1)]
    [DataRow(RecurrentCellKind.Lstm, 2)]
    [DataRow(RecurrentCellKind.Gru, 1)]
    [DataRow(RecurrentCellKind.Gru, 2)]
    public void BatchEqualsEachWordAlone(RecurrentCellKind cell, int threads)
    {
        const int vocabulary = 40;
        var (_, encoder) = Create(cell, vocabulary, 25, 25, seed: 5);
        // 30 random words of 0 to 14 characters (one of length 1), then 8 repeats of earlier ones.
        var random = new SeededRandom(8);
        var words = new List<int[]>();
        for (int i = 0; i < 30; i++)
        {
            var word = new int[i == 4 ? 1 : random.NextInt(15)];
            for (int c = 0; c < word.Length; c++) word[c] = random.NextInt(vocabulary);
            words.Add(word);
        }
        for (int i = 0; i < 8; i++) words.Add(words[random.NextInt(30)]);
        var (characters, lengths) = Concatenate(words);
        int width = encoder.OutputSize;
        var batched = new float[lengths.Length * width];
        encoder.Threads = threads;
        encoder.Forward(characters, lengths, batched);
        Assert.IsTrue(encoder.DistinctWords < lengths.Length, "the repeats are encoded once");

        var alone = new float[width];
        int start = 0;
        for (int w = 0; w < lengths.Length; w++)
        {
            encoder.Forward(characters.AsSpan(start, lengths[w]), lengths.AsSpan(w, 1), alone);
            CollectionAssert.AreEqual(alone, batched.AsSpan(w * width, width).ToArray(), $"word {w} (length {lengths[w]})");
            start += lengths[w];
        }

        // And the thread count changes no bit.
        var other = new float[batched.Length];
        encoder.Threads = 3 - threads;
        encoder.Forward(characters, lengths, other);
        CollectionAssert.AreEqual(batched, other);
    }

    /// <summary>
    /// A word's encoding, against RecurrentStack run by hand on that one sequence: (a) a bidirectional stack on the
    /// embedded word, whose output rows give [Y[T−1, 0:H] | Y[0, H:2H]]; (b) two unidirectional stacks, one with the
    /// forward weights on the word and one with the reverse weights on the reversed word, each giving its last row.
    /// </summary>
    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm)]
    [DataRow(RecurrentCellKind.Gru)]
    public void MatchesRecurrentStackOnTheSingleWord(RecurrentCellKind cell)
    {
        const int vocabulary = 20, e = 7, h = 9;
        var (parameters, encoder) = Create(cell, vocabulary, e, h, seed: 3);
        int[] word = [4, 0, 19, 7, 7, 2];
        int t = word.Length;
        int[] lengths = [2, t, 1];
        int[] characters = [5, 6, .. word, 8];
        var output = new float[3 * 2 * h];
        encoder.Forward(characters, lengths, output);
        var encoded = output.AsSpan(2 * h, 2 * h).ToArray();

        var table = parameters.Value(parameters["char.embedding.weight"]);
        var x = new float[t * e];
        var reversed = new float[t * e];
        for (int i = 0; i < t; i++)
        {
            table.Slice(word[i] * e, e).CopyTo(x.AsSpan(i * e));
            table.Slice(word[i] * e, e).CopyTo(reversed.AsSpan((t - 1 - i) * e));
        }
        var one = new RaggedBatch([t]);

        // (a) bidirectional stack on the single sequence (one sequence: packed rows are the time steps).
        var bi = new ParameterSet();
        var biStack = new RecurrentStack(bi, "rnn.", cell, e, h, 1, bidirectional: true, dropout: 0f);
        bi.Allocate();
        foreach (var p in bi.Parameters)
            parameters.Value(parameters["char." + p.Name]).CopyTo(bi.Value(p));
        var y = biStack.Forward(one, x, null);
        var expected = new float[2 * h];
        y.Slice((t - 1) * 2 * h, h).CopyTo(expected);
        y.Slice(h, h).CopyTo(expected.AsSpan(h));
        CollectionAssert.AreEqual(expected, encoded, "against the bidirectional stack's output rows");

        // (b) each direction as a forward stack: the reverse direction is the forward recurrence over the reversed word.
        var reference = new float[2 * h];
        for (int d = 0; d < 2; d++)
        {
            var uni = new ParameterSet();
            var stack = new RecurrentStack(uni, "rnn.", cell, e, h, 1, bidirectional: false, dropout: 0f);
            uni.Allocate();
            foreach (var p in uni.Parameters)
                parameters.Value(parameters["char." + p.Name + (d == 1 ? "_reverse" : "")]).CopyTo(uni.Value(p));
            stack.Forward(one, d == 0 ? x : reversed, null).Slice((t - 1) * h, h).CopyTo(reference.AsSpan(d * h));
        }
        CollectionAssert.AreEqual(reference, encoded, "against each direction run forward by hand");
    }

    [TestMethod]
    public void WordsWithoutCharactersEncodeToZerosAndGetNoGradient()
    {
        const int vocabulary = 12, width = 2 * 4;
        var (parameters, encoder) = Create(RecurrentCellKind.Lstm, vocabulary, 3, 4);
        int[] lengths = [0, 3, 0, 0, 2, 0];
        int[] characters = [1, 2, 3, 4, 5];
        var output = new float[lengths.Length * width];
        output.AsSpan().Fill(float.NaN); // every row is written, the empty words' rows with zeros
        encoder.Forward(characters, lengths, output);
        var dOutput = new float[output.Length];
        new SeededRandom(4).FillUniform(dOutput, -1f, 1f);
        parameters.ZeroGradients();
        encoder.Backward(characters, lengths, dOutput);
        var gradients = parameters.Gradients.ToArray();

        // Same as the two non-empty words alone, with their rows of dOutput.
        var compact = new float[2 * width];
        encoder.Forward(characters, [3, 2], compact);
        foreach (int w in new[] { 0, 2, 3, 5 })
            CollectionAssert.AreEqual(new float[width], output.AsSpan(w * width, width).ToArray(), $"word {w}");
        CollectionAssert.AreEqual(compact.AsSpan(0, width).ToArray(), output.AsSpan(1 * width, width).ToArray());
        CollectionAssert.AreEqual(compact.AsSpan(width, width).ToArray(), output.AsSpan(4 * width, width).ToArray());
        var dCompact = new float[2 * width];
        dOutput.AsSpan(1 * width, width).CopyTo(dCompact);
        dOutput.AsSpan(4 * width, width).CopyTo(dCompact.AsSpan(width));
        parameters.ZeroGradients();
        encoder.Backward(characters, [3, 2], dCompact);
        CollectionAssert.AreEqual(parameters.Gradients, gradients);

        // Only empty words, and no words at all: zeros, no gradient, no stale batch used by backward.
        var empty = new float[3 * width];
        empty.AsSpan().Fill(1f);
        encoder.Forward([], [0, 0, 0], empty);
        CollectionAssert.AreEqual(new float[3 * width], empty);
        parameters.ZeroGradients();
        encoder.Backward([], [0, 0, 0], dOutput.AsSpan(0, 3 * width));
        Assert.IsTrue(parameters.Gradients.All(v => v == 0));
        encoder.Forward([], [], []);
        encoder.Backward([], [], []);
        Assert.IsTrue(parameters.Gradients.All(v => v == 0));
    }

    /// <summary>
    /// A repeated word is one sequence of the batch: the outputs of its occurrences are equal, and backward gives exactly
    /// the gradients of the batch without the repeat whose output gradient is the sum of the occurrences'.
    /// </summary>
    [TestMethod]
    public void RepeatedWordsAreEncodedOnceWithTheirGradientsAdded()
    {
        const int width = 2 * 5;
        var (parameters, encoder) = Create(RecurrentCellKind.Lstm, 20, 4, 5);
        int[] a = [3, 1, 4, 1, 5], b = [9, 2, 6];
        var (characters, lengths) = Concatenate([a, b, a, [], a]);
        var output = new float[5 * width];
        encoder.Forward(characters, lengths, output);
        Assert.AreEqual(2, encoder.DistinctWords);
        CollectionAssert.AreEqual(output.AsSpan(0, width).ToArray(), output.AsSpan(2 * width, width).ToArray());
        CollectionAssert.AreEqual(output.AsSpan(0, width).ToArray(), output.AsSpan(4 * width, width).ToArray());
        var dOutput = new float[output.Length];
        new SeededRandom(6).FillUniform(dOutput, -1f, 1f);
        parameters.ZeroGradients();
        encoder.Backward(characters, lengths, dOutput);
        var gradients = parameters.Gradients.ToArray();

        var (once, onceLengths) = Concatenate([a, b]);
        encoder.Forward(once, onceLengths, new float[2 * width]);
        var dOnce = new float[2 * width];
        for (int c = 0; c < width; c++)
        {
            dOnce[c] = dOutput[c] + dOutput[2 * width + c] + dOutput[4 * width + c];
            dOnce[width + c] = dOutput[width + c];
        }
        parameters.ZeroGradients();
        encoder.Backward(once, onceLengths, dOnce);
        CollectionAssert.AreEqual(parameters.Gradients, gradients);
    }

    /// <summary>With k = <see cref="CharacterEncoder.MaximumWordLength"/>, a longer word reads its first ⌈k/2⌉ and last ⌊k/2⌋ characters.</summary>
    [TestMethod]
    [DataRow(4)]
    [DataRow(5)]
    [DataRow(1)]
    public void LongWordsKeepTheirFirstAndLastCharacters(int k)
    {
        const int vocabulary = 30;
        var (parameters, capped) = Create(RecurrentCellKind.Lstm, vocabulary, 4, 5, maximumWordLength: k);
        var full = new ParameterSet();
        var uncapped = new CharacterEncoder(full, Prefix, vocabulary, 4, 5);
        full.Allocate(parameters.Values);
        int[] longWord = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        int[] shortWord = [10, 11];   // not longer than k = 4 or 5: unchanged (k = 1 keeps its first character)
        int[] lengths = [longWord.Length, shortWord.Length];
        var output = new float[2 * capped.OutputSize];
        capped.Forward([.. longWord, .. shortWord], lengths, output);

        int head = (k + 1) / 2, tail = k / 2;
        int[] kept = [.. longWord[..head], .. longWord[^tail..]];
        int[] keptShort = shortWord.Length > k ? shortWord[..k] : shortWord;
        var expected = new float[output.Length];
        uncapped.Forward([.. kept, .. keptShort], [kept.Length, keptShort.Length], expected);
        CollectionAssert.AreEqual(expected, output);
        Assert.AreEqual(k, capped.ReadLength(9));
        Assert.AreEqual(Math.Min(2, k), capped.ReadLength(2));
    }

    [TestMethod]
    public void BadInputIsReportedWithTheWordAndPosition()
    {
        var (_, encoder) = Create(RecurrentCellKind.Lstm, 10, 3, 2);
        var output = new float[3 * encoder.OutputSize];
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => encoder.Forward([1, 2, 3, 10, 4], [2, 3], output));
        StringAssert.Contains(e.Message, "position 1 of word 1");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => encoder.Forward([1, 2, -1], [3], output));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => encoder.Forward([1, 2], [3, -1], output));
        var sum = Assert.ThrowsExactly<ArgumentException>(() => encoder.Forward([1, 2, 3], [2, 2], output));
        StringAssert.Contains(sum.Message, "4 characters but 3");
        Assert.ThrowsExactly<ArgumentException>(() => encoder.Forward([1, 2, 3], [1, 1, 1], output.AsSpan(0, 5).ToArray()));
        Assert.ThrowsExactly<InvalidOperationException>(() => Create(RecurrentCellKind.Gru, 10, 3, 2).Encoder.Backward([1], [1], new float[4]));
        encoder.Forward([1, 2, 3], [1, 2], output);
        Assert.ThrowsExactly<ArgumentException>(() => encoder.Backward([1, 2, 3], [3], output));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            new CharacterEncoder(new ParameterSet(), "", 10, 3, 2, maximumWordLength: -1));
    }

    /// <summary>Once the largest batch has been seen, Forward + Backward allocate nothing (with dropout, 1 or 2 threads).</summary>
    [TestMethod]
    [DataRow(1)]
    [DataRow(2)]
    public void SteadyStateForwardAndBackwardAllocateNothing(int threads)
    {
        const int vocabulary = 50;
        var (parameters, encoder) = Create(RecurrentCellKind.Lstm, vocabulary, 8, 8, maximumWordLength: 12, dropout: 0.2f);
        encoder.Threads = threads;
        var random = new SeededRandom(31);
        var batches = new List<(int[] Characters, int[] Lengths)>();
        for (int i = 0; i < 4; i++)
            batches.Add(RandomWords(random, 40 - 7 * i, 0, 16, vocabulary));
        var output = new float[40 * encoder.OutputSize];
        var dOutput = new float[output.Length];
        random.FillUniform(dOutput, -1f, 1f);
        var dropout = new SeededRandom(1);
        void Step((int[] Characters, int[] Lengths) b)
        {
            int n = b.Lengths.Length * encoder.OutputSize;
            encoder.Forward(b.Characters, b.Lengths, output.AsSpan(0, n), dropout);
            encoder.Backward(b.Characters, b.Lengths, dOutput.AsSpan(0, n));
        }
        foreach (var b in batches) Step(b);   // warm-up: buffers grow to the largest batch
        Step(batches[0]);
        // A round of 12 calls must allocate nothing. Up to 5 rounds are tried because a one-time lazy allocation may land
        // in the first: with 2 threads, the 24-byte lock object ManualResetEventSlim creates the first time a wait of
        // PairRunner really blocks (on a loaded machine). Anything allocated per call shows up in every round.
        var rounds = new List<long>();
        for (int round = 0; round < 5 && (rounds.Count == 0 || rounds[^1] != 0); round++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int r = 0; r < 3; r++)
                foreach (var b in batches) Step(b);
            rounds.Add(GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.AreEqual(0L, rounds[^1], $"bytes allocated per round of 12 steady-state Forward + Backward calls: {string.Join(", ", rounds)}");
        Assert.IsTrue(parameters.Gradients.All(float.IsFinite));
    }
}
