using System.Text;
using Microsoft.ML.Tokenizers;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// A Microsoft.ML.Tokenizers tokenizer together with the data it is built from, so that a model zip can carry the
/// tokenizer's files and rebuild the identical tokenizer when it is loaded elsewhere.
/// </summary>
public sealed class TokenizerData
{
    private enum Kind : byte { Bert = 1, WordPiece = 2, Bpe = 3, Tiktoken = 4 }

    private readonly Kind _kind;
    private readonly byte[] _first;   // vocab file (Bert, WordPiece, BPE vocab.json) — empty for tiktoken
    private readonly byte[] _second;  // BPE merges — empty otherwise
    private readonly string _name;    // tiktoken encoding name
    private readonly bool _lowerCase; // Bert

    /// <summary>The tokenizer.</summary>
    public Tokenizer Tokenizer { get; }

    /// <summary>Number of distinct ids the tokenizer produces (ids are in [0, VocabularySize)).</summary>
    public int VocabularySize { get; }

    /// <summary>A short description, e.g. "BERT (vocab.txt, 30522 ids)".</summary>
    public string Description { get; }

    private TokenizerData(Kind kind, byte[] first, byte[] second, string name, bool lowerCase)
    {
        _kind = kind;
        _first = first;
        _second = second;
        _name = name;
        _lowerCase = lowerCase;
        switch (kind)
        {
            case Kind.Bert:
                Tokenizer = BertTokenizer.Create(new MemoryStream(first), new BertOptions { LowerCaseBeforeTokenization = lowerCase });
                VocabularySize = Math.Max(CountLines(first), MaxId(((BertTokenizer)Tokenizer).SpecialTokens) + 1);
                Description = $"BERT WordPiece ({VocabularySize} ids)";
                break;
            case Kind.WordPiece:
                Tokenizer = WordPieceTokenizer.Create(new MemoryStream(first));
                VocabularySize = Math.Max(CountLines(first), MaxId(((WordPieceTokenizer)Tokenizer).SpecialTokens) + 1);
                Description = $"WordPiece ({VocabularySize} ids)";
                break;
            case Kind.Bpe:
                var bpe = BpeTokenizer.Create(new MemoryStream(first), new MemoryStream(second));
                Tokenizer = bpe;
                VocabularySize = Math.Max(MaxId(bpe.Vocabulary), MaxId(bpe.SpecialTokens)) + 1;
                Description = $"BPE ({VocabularySize} ids)";
                break;
            case Kind.Tiktoken:
                var tiktoken = TiktokenTokenizer.CreateForEncoding(name);
                Tokenizer = tiktoken;
                // A tiktoken encoding's special tokens follow its ranks, so the largest special id bounds every id.
                VocabularySize = MaxId(tiktoken.SpecialTokens) + 1;
                Description = $"tiktoken {name} ({VocabularySize} ids)";
                break;
            default:
                throw new InvalidDataException($"Unknown tokenizer kind {(byte)kind}.");
        }
        if (VocabularySize <= 0)
            throw new InvalidDataException("The tokenizer has an empty vocabulary.");
    }

    /// <summary>BERT's tokenizer (basic tokenization + WordPiece) from a <c>vocab.txt</c> file, one token per line.</summary>
    /// <param name="vocabularyFile">Path of vocab.txt.</param>
    /// <param name="lowerCase">Whether text is lower-cased first (true for "uncased" models).</param>
    public static TokenizerData Bert(string vocabularyFile, bool lowerCase = true) =>
        new(Kind.Bert, File.ReadAllBytes(vocabularyFile), [], "", lowerCase);

    /// <summary>A plain WordPiece tokenizer from a <c>vocab.txt</c> file.</summary>
    /// <param name="vocabularyFile">Path of vocab.txt.</param>
    public static TokenizerData WordPiece(string vocabularyFile) =>
        new(Kind.WordPiece, File.ReadAllBytes(vocabularyFile), [], "", false);

    /// <summary>A byte-pair-encoding tokenizer from <c>vocab.json</c> and <c>merges.txt</c>.</summary>
    /// <param name="vocabularyFile">Path of vocab.json (token → id).</param>
    /// <param name="mergesFile">Path of merges.txt.</param>
    public static TokenizerData Bpe(string vocabularyFile, string mergesFile) =>
        new(Kind.Bpe, File.ReadAllBytes(vocabularyFile), File.ReadAllBytes(mergesFile), "", false);

    /// <summary>
    /// A tiktoken tokenizer by encoding name (e.g. <c>cl100k_base</c>, <c>o200k_base</c>, <c>r50k_base</c>). The encoding's
    /// data package (e.g. Microsoft.ML.Tokenizers.Data.Cl100kBase) must be referenced by the application that trains and
    /// by the one that loads the model; the zip records only the name.
    /// </summary>
    /// <param name="encodingName">The encoding name.</param>
    public static TokenizerData Tiktoken(string encodingName) =>
        new(Kind.Tiktoken, [], [], encodingName ?? throw new ArgumentNullException(nameof(encodingName)), false);

    private static int CountLines(byte[] text)
    {
        int lines = 0;
        foreach (var line in Encoding.UTF8.GetString(text).Split('\n'))
            if (line.TrimEnd('\r').Length > 0) lines++;
        return lines;
    }

    private static int MaxId(IReadOnlyDictionary<string, int>? ids) => ids is null || ids.Count == 0 ? -1 : ids.Values.Max();

    // *** Binary format ***
    // byte: kind (1 Bert, 2 WordPiece, 3 BPE, 4 tiktoken)
    // bool: lower-case (Bert)
    // string: encoding name (tiktoken, else empty)
    // int + bytes: first file (vocab), int + bytes: second file (merges)
    internal void Write(BinaryWriter writer)
    {
        writer.Write((byte)_kind);
        writer.Write(_lowerCase);
        writer.Write(_name);
        writer.Write(_first.Length);
        writer.Write(_first);
        writer.Write(_second.Length);
        writer.Write(_second);
    }

    internal static TokenizerData Read(BinaryReader reader)
    {
        try
        {
            var kind = (Kind)reader.ReadByte();
            if (!Enum.IsDefined(kind)) throw new InvalidDataException($"Unknown tokenizer kind {(byte)kind}.");
            bool lowerCase = reader.ReadBoolean();
            string name = reader.ReadString();
            byte[] first = ReadBlock(reader), second = ReadBlock(reader);
            try
            {
                return new TokenizerData(kind, first, second, name, lowerCase);
            }
            catch (Exception e) when (e is not InvalidDataException)
            {
                throw new InvalidDataException($"The saved tokenizer data cannot be loaded: {e.Message}", e);
            }
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException("The saved tokenizer data is truncated.", e);
        }
    }

    private static byte[] ReadBlock(BinaryReader reader)
    {
        int length = reader.ReadInt32();
        long remaining = reader.BaseStream.CanSeek ? reader.BaseStream.Length - reader.BaseStream.Position : long.MaxValue;
        if (length < 0 || length > 1 << 30 || length > remaining)
            throw new InvalidDataException($"Invalid tokenizer data length {length}.");
        var bytes = reader.ReadBytes(length);
        if (bytes.Length != length) throw new EndOfStreamException();
        return bytes;
    }
}
