using Microsoft.ML.Recurrent.Model;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// A Microsoft.ML.Tokenizers tokenizer together with the data it is built from, so that a model zip carries the
/// tokenizer's data and rebuilds the identical tokenizer when it is loaded elsewhere: the vocabulary and merges files
/// of BERT, WordPiece and BPE, and the ranks, pre-tokenization pattern and special tokens of a tiktoken encoding.
/// </summary>
public sealed class TokenizerData
{
    private enum Kind : byte { Bert = 1, WordPiece = 2, Bpe = 3, Tiktoken = 4 }

    // Upper bounds on fields read from a file, beyond the bytes left in the stream.
    private const int MaxNameBytes = 1024;
    private const int MaxPatternBytes = 1 << 16;
    private const int MaxSpecialTokenBytes = 1024;

    // Tokenized by the captured tiktoken tokenizer and by Microsoft.ML.Tokenizers' own when a TokenizerData is created:
    // words, contractions, numbers, whitespace runs, punctuation, code, accents, CJK, emoji and a special token.
    private const string TiktokenProbe =
        "Hello, World! It's 2024: we'll pay $1,234.56 — don't we?\n\n\tdef f(x):  return x**2  # ok\r\nnaïve café "
        + "東京タワー 北京 😀👍🏽 مرحبا Привет   <|endoftext|> trailing  ";

    private readonly Kind _kind;
    private readonly byte[] _first;   // vocab.txt (BERT, WordPiece), vocab.json (BPE), ranks in TiktokenRanks' compact form (tiktoken)
    private readonly byte[] _second;  // merges.txt (BPE), else empty
    private readonly string _name;    // tiktoken encoding name (a label), else empty
    private readonly bool _lowerCase; // BERT
    private readonly string _pattern; // tiktoken pre-tokenization regular expression, else empty
    private readonly KeyValuePair<string, int>[] _specialTokens; // tiktoken special tokens in the tokenizer's order, else empty

    /// <summary>The tokenizer.</summary>
    public Tokenizer Tokenizer { get; }

    /// <summary>Number of distinct ids the tokenizer produces (ids are in [0, VocabularySize)).</summary>
    public int VocabularySize { get; }

    /// <summary>A short description, e.g. "BERT WordPiece (30522 ids)" or "tiktoken cl100k_base (100277 ids)".</summary>
    public string Description { get; }

    private TokenizerData(Kind kind, byte[] first, byte[] second, string name, bool lowerCase,
        string pattern = "", KeyValuePair<string, int>[]? specialTokens = null)
    {
        _kind = kind;
        _first = first;
        _second = second;
        _name = name;
        _lowerCase = lowerCase;
        _pattern = pattern;
        _specialTokens = specialTokens ?? [];
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
                (Tokenizer, VocabularySize) = CreateTiktoken(first, pattern, _specialTokens);
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
    /// A tiktoken tokenizer by encoding name: <c>cl100k_base</c>, <c>o200k_base</c>, <c>o200k_harmony</c>,
    /// <c>p50k_base</c>, <c>p50k_edit</c> or <c>r50k_base</c> (any case). It tokenizes exactly like
    /// <c>TiktokenTokenizer.CreateForEncoding(encodingName)</c>.
    /// </summary>
    /// <remarks>
    /// The encoding's data package (Microsoft.ML.Tokenizers.Data.Cl100kBase, .O200kBase, .P50kBase or .R50kBase) must be
    /// referenced by the application that calls this method, and only there. The encoding's ranks, its pre-tokenization
    /// pattern and its special tokens are captured here and saved in the model zip (about 0.5 MB for cl100k_base,
    /// 1 MB for o200k_base, compressed), so a process that loads the model needs no data package, and a later
    /// Microsoft.ML.Tokenizers cannot change how a saved model tokenizes.
    /// </remarks>
    /// <param name="encodingName">The encoding name.</param>
    /// <exception cref="ArgumentException">The encoding name is not one of the above.</exception>
    /// <exception cref="InvalidOperationException">The encoding's data package is not referenced, or its data could
    /// not be captured.</exception>
    public static TokenizerData Tiktoken(string encodingName)
    {
        ArgumentException.ThrowIfNullOrEmpty(encodingName);
        var encoding = TiktokenEncodings.Find(encodingName) ?? throw new ArgumentException(
            $"Unknown tiktoken encoding '{Printable(encodingName)}'; the known encodings are {string.Join(", ", TiktokenEncodings.Names)}.", nameof(encodingName));
        // Microsoft.ML.Tokenizers' own tokenizer gives the special tokens and is the reference for the check below.
        // It throws, naming the package, when the data package is missing.
        var reference = TiktokenTokenizer.CreateForEncoding(encoding.Name);
        var data = new TokenizerData(Kind.Tiktoken, TiktokenEncodings.ReadRanks(encoding), [], encoding.Name, false,
            encoding.Pattern, reference.SpecialTokens?.ToArray());
        if (!data.Tokenizer.EncodeToIds(TiktokenProbe).SequenceEqual(reference.EncodeToIds(TiktokenProbe)))
            throw new InvalidOperationException(
                $"The tiktoken encoding '{encoding.Name}' captured from {encoding.PackageName} does not tokenize like Microsoft.ML.Tokenizers' own; this version of Microsoft.ML.Tokenizers is not supported.");
        return data;
    }

    /// <summary>
    /// A tiktoken tokenizer from a ranks file of your own, in the <c>.tiktoken</c> format (one <c>base64 rank</c> line
    /// per token, ranks 0 … N − 1), with its pre-tokenization pattern and special tokens. The file's contents are saved
    /// in the model zip.
    /// </summary>
    /// <param name="ranksFile">Path of the .tiktoken file.</param>
    /// <param name="preTokenizationPattern">The .NET regular expression that splits text into pieces before byte-pair
    /// encoding.</param>
    /// <param name="specialTokens">Special tokens and their ids, or null for none.</param>
    /// <exception cref="InvalidDataException">The ranks file is malformed.</exception>
    /// <exception cref="ArgumentException">The pattern is not a valid regular expression, or a special token is empty
    /// or has a negative id.</exception>
    public static TokenizerData Tiktoken(string ranksFile, string preTokenizationPattern, IReadOnlyDictionary<string, int>? specialTokens = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(ranksFile);
        ArgumentException.ThrowIfNullOrEmpty(preTokenizationPattern);
        _ = new Regex(preTokenizationPattern); // throws ArgumentException for an invalid pattern
        var specials = specialTokens?.ToArray() ?? [];
        foreach (var (token, id) in specials)
        {
            if (string.IsNullOrEmpty(token)) throw new ArgumentException("A special token is empty.", nameof(specialTokens));
            if (id is < 0 or int.MaxValue) throw new ArgumentException($"The special token '{Printable(token)}' has the invalid id {id}.", nameof(specialTokens));
        }
        byte[] ranks;
        using (var file = File.OpenRead(ranksFile))
            ranks = TiktokenRanks.FromTiktokenFile(file);
        return new TokenizerData(Kind.Tiktoken, ranks, [], Path.GetFileNameWithoutExtension(ranksFile), false, preTokenizationPattern, specials);
    }

    /// <summary>Builds a tiktoken tokenizer from captured or saved data; data errors are <see cref="InvalidDataException"/>s naming the field.</summary>
    private static (Tokenizer Tokenizer, int VocabularySize) CreateTiktoken(byte[] ranks, string pattern, KeyValuePair<string, int>[] specialTokens)
    {
        using var file = TiktokenRanks.ToTiktokenFile(ranks, out int rankCount);
        Regex regex;
        try
        {
            regex = TiktokenEncodings.CreateRegex(pattern);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException("Invalid tokenizer data: the pre-tokenization pattern is not a valid regular expression.", e);
        }
        // One dictionary, filled in the saved order, serves both the pre-tokenizer and the tokenizer, as in Microsoft.ML.Tokenizers.
        Dictionary<string, int>? specials = null;
        int maxId = rankCount - 1;
        if (specialTokens.Length > 0)
        {
            specials = new Dictionary<string, int>(specialTokens.Length, StringComparer.Ordinal);
            foreach (var (token, id) in specialTokens)
            {
                if (!specials.TryAdd(token, id))
                    throw new InvalidDataException($"Invalid tokenizer data: the special token '{Printable(token)}' is listed twice.");
                maxId = Math.Max(maxId, id);
            }
        }
        var tokenizer = TiktokenTokenizer.Create(file, new RegexPreTokenizer(regex, specials), normalizer: null, specials);
        return (tokenizer, maxId + 1);
    }

    private static int CountLines(byte[] text)
    {
        int lines = 0;
        foreach (var line in Encoding.UTF8.GetString(text).Split('\n'))
            if (line.TrimEnd('\r').Length > 0) lines++;
        return lines;
    }

    private static int MaxId(IReadOnlyDictionary<string, int>? ids) => ids is null || ids.Count == 0 ? -1 : ids.Values.Max();

    // *** Binary format *** (version 2; version 1 ends after the merges file and holds no tiktoken data)
    // byte: kind (1 Bert, 2 WordPiece, 3 BPE, 4 tiktoken)
    // bool: lower-case (Bert)
    // string: tiktoken encoding name (a label), else empty
    // int + bytes: first file: vocab.txt (Bert, WordPiece), vocab.json (BPE), ranks (tiktoken, see TiktokenRanks)
    // int + bytes: second file: merges.txt (BPE), else empty
    // tiktoken only:
    //   string: pre-tokenization pattern
    //   int: special token count S, then S × (string: token, int: id)
    internal void Write(BinaryWriter writer)
    {
        writer.Write((byte)_kind);
        writer.Write(_lowerCase);
        writer.Write(_name);
        writer.Write(_first.Length);
        writer.Write(_first);
        writer.Write(_second.Length);
        writer.Write(_second);
        if (_kind != Kind.Tiktoken) return;
        writer.Write(_pattern);
        writer.Write(_specialTokens.Length);
        foreach (var (token, id) in _specialTokens)
        {
            writer.Write(token);
            writer.Write(id);
        }
    }

    /// <summary>
    /// Reads what <see cref="Write"/> wrote. Version 1 (TokenizeToIds 0x00010001) named a tiktoken encoding only and
    /// needs its data package here; version 2 is self-contained. Every length is checked against the bytes left first.
    /// </summary>
    /// <exception cref="InvalidDataException">The data is truncated or invalid; the message names the field.</exception>
    internal static TokenizerData Read(BoundedReader reader, int version)
    {
        if (version is not (1 or 2))
            throw new InvalidDataException($"Invalid tokenizer data: unknown format version {version}.");
        byte kindByte = reader.ReadByte("tokenizer kind");
        var kind = (Kind)kindByte;
        if (!Enum.IsDefined(kind))
            throw reader.Error("tokenizer kind", $"is {kindByte}; expected 1 (BERT), 2 (WordPiece), 3 (BPE) or 4 (tiktoken).");
        bool lowerCase = reader.ReadBoolean("lower-case flag");
        if (lowerCase && kind != Kind.Bert)
            throw reader.Error("lower-case flag", $"is set for tokenizer kind {kindByte}.");
        string name = reader.ReadString("tiktoken encoding name", MaxNameBytes);
        if (name.Length > 0 && kind != Kind.Tiktoken)
            throw reader.Error("tiktoken encoding name", $"is set for tokenizer kind {kindByte}.");
        string firstField = kind == Kind.Tiktoken ? "tiktoken ranks" : "vocabulary file";
        byte[] first = reader.ReadBytes(firstField, reader.ReadCount(firstField + " length", 1, int.MaxValue));
        byte[] second = reader.ReadBytes("merges file", reader.ReadCount("merges file length", 1, int.MaxValue));
        if (second.Length > 0 && kind != Kind.Bpe)
            throw reader.Error("merges file", $"is set for tokenizer kind {kindByte}.");
        if (kind == Kind.Tiktoken && version == 1)
        {
            if (first.Length > 0)
                throw reader.Error("tiktoken ranks", "are present in version 1 data, which names the encoding only.");
            return ReadVersion1Tiktoken(name);
        }
        string pattern = "";
        KeyValuePair<string, int>[]? specials = null;
        if (kind == Kind.Tiktoken)
        {
            pattern = reader.ReadString("pre-tokenization pattern", MaxPatternBytes);
            if (pattern.Length == 0)
                throw reader.Error("pre-tokenization pattern", "is empty.");
            // Each special token takes at least 6 bytes: a 1-byte length, 1 byte of text and a 4-byte id.
            specials = new KeyValuePair<string, int>[reader.ReadCount("special token count", 6, int.MaxValue)];
            for (int i = 0; i < specials.Length; i++)
            {
                string token = reader.ReadString("special token", MaxSpecialTokenBytes);
                int id = reader.ReadInt32("special token id", 0, int.MaxValue - 1);
                if (token.Length == 0)
                    throw reader.Error("special token", $"{i} is empty.");
                specials[i] = new(token, id);
            }
        }
        if (first.Length == 0)
            throw reader.Error(firstField, "is empty.");
        if (kind == Kind.Bpe && second.Length == 0)
            throw reader.Error("merges file", "is empty.");
        try
        {
            return new TokenizerData(kind, first, second, name, lowerCase, pattern, specials);
        }
        catch (Exception e) when (e is not InvalidDataException)
        {
            throw new InvalidDataException($"{reader.Part}: the saved tokenizer data cannot be loaded: {Printable(e.Message, 200)}", e);
        }
    }

    private static TokenizerData ReadVersion1Tiktoken(string name)
    {
        var encoding = TiktokenEncodings.Find(name)
            ?? throw new InvalidDataException($"Invalid tokenizer data: unknown tiktoken encoding name '{Printable(name)}'.");
        if (!TiktokenEncodings.IsDataPackageAvailable(encoding))
            throw new InvalidDataException(
                $"This model's tokenizer is the tiktoken encoding '{encoding.Name}', saved by name only (TokenizeToIds version 1), and the package "
                + $"{encoding.PackageName} it needs is not referenced by this application. Reference {encoding.PackageName} to load it; "
                + "saving the model again with this version of Microsoft.ML.Recurrent stores the encoding in the zip.");
        try
        {
            return Tiktoken(encoding.Name);
        }
        catch (Exception e) when (e is not InvalidDataException)
        {
            throw new InvalidDataException($"The saved tiktoken encoding '{encoding.Name}' cannot be loaded: {Printable(e.Message, 200)}", e);
        }
    }

    private static string Printable(string text, int maxLength = 64) => BoundedReader.Printable(text, maxLength);
}
