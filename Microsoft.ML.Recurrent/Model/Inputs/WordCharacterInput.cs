using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Layers;

namespace Microsoft.ML.Recurrent.Model;

/// <summary>
/// Token ids and the characters of every token → [word embedding (E) | character encoding (2·Hc)] → dropout:
/// X [N, E + 2·Hc] (Lample et al. 2016). The word embedding is <c>embedding.weight</c>; the character encoder's
/// parameters are <c>char.embedding.weight</c> and <c>char.rnn.*</c> (see <see cref="CharacterEncoder"/>). Words never
/// seen in training share the word embedding's unknown row but keep a representation built from their spelling.
/// </summary>
internal sealed class WordCharacterInput : INetworkInput
{
    private readonly Embedding _embedding;
    private readonly CharacterEncoder _characters;
    private readonly Dropout _dropout;
    private float[] _words = [];        // [N, E] packed
    private float[] _encoded = [];      // [Σ lengths, 2·Hc] the caller's order, then packed in place into _packed
    private float[] _packed = [];       // [N, 2·Hc]

    public WordCharacterInput(ParameterSet parameters, int vocabularySize, int embeddingSize, int paddingId, float dropout,
        int characterVocabularySize, int characterEmbeddingSize, int characterHiddenSize, int maximumWordLength)
    {
        _embedding = new Embedding(parameters, "embedding.", vocabularySize, embeddingSize, paddingId);
        _characters = new CharacterEncoder(parameters, "char.", characterVocabularySize, characterEmbeddingSize, characterHiddenSize,
            maximumWordLength: maximumWordLength);
        _dropout = new Dropout(dropout);
    }

    public int OutputSize => _embedding.Dimension + _characters.OutputSize;

    public bool HasParameters => true;

    /// <summary>Threads of the character encoder's stack.</summary>
    public int Threads
    {
        get => _characters.Threads;
        set => _characters.Threads = value;
    }

    /// <summary>Frozen weights (inference copies): the encoder packs its weights once.</summary>
    public bool WeightsFrozen
    {
        get => _characters.WeightsFrozen;
        set => _characters.WeightsFrozen = value;
    }

    public void Initialize(SeededRandom random)
    {
        _embedding.Initialize(random);
        _characters.Initialize(random);
    }

    public void Forward(RaggedBatch batch, in SequenceData data, Span<float> x, SeededRandom? dropout)
    {
        int n = batch.TotalSteps, e = _embedding.Dimension, c = _characters.OutputSize, w = e + c;
        var words = Workspace.Ensure(ref _words, n * e);
        _embedding.Forward(batch, data.Tokens, words);
        var encoded = Workspace.Ensure(ref _encoded, n * c);
        _characters.Forward(data.Characters, data.CharacterLengths.Slice(0, n), encoded);
        var packed = Workspace.Ensure(ref _packed, n * c);
        batch.Pack(encoded, c, packed);
        // x[r] = [words[r] | packed[r]] for every packed row r.
        for (int r = 0; r < n; r++)
        {
            words.Slice(r * e, e).CopyTo(x.Slice(r * w, e));
            packed.Slice(r * c, c).CopyTo(x.Slice(r * w + e, c));
        }
        _dropout.Forward(x.Slice(0, n * w), x.Slice(0, n * w), dropout);
    }

    public void Backward(RaggedBatch batch, in SequenceData data, Span<float> dX)
    {
        int n = batch.TotalSteps, e = _embedding.Dimension, c = _characters.OutputSize, w = e + c;
        _dropout.Backward(dX.Slice(0, n * w), dX.Slice(0, n * w));
        var dWords = Workspace.Ensure(ref _words, n * e);
        var dPacked = Workspace.Ensure(ref _packed, n * c);
        for (int r = 0; r < n; r++)
        {
            dX.Slice(r * w, e).CopyTo(dWords.Slice(r * e, e));
            dX.Slice(r * w + e, c).CopyTo(dPacked.Slice(r * c, c));
        }
        _embedding.Backward(batch, data.Tokens, dWords);
        var dEncoded = Workspace.Ensure(ref _encoded, n * c);
        batch.Unpack(dPacked, c, dEncoded);
        _characters.Backward(data.Characters, data.CharacterLengths.Slice(0, n), dEncoded);
    }
}
