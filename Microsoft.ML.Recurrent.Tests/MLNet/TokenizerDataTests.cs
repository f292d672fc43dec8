using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Tokenizers;

namespace Microsoft.ML.Recurrent.Tests.MLNet;

/// <summary>
/// <see cref="TokenizerData"/>: a tiktoken tokenizer rebuilt from the data saved in a zip tokenizes exactly like
/// Microsoft.ML.Tokenizers' own; version-1 data still loads; damaged data fails fast with an
/// <see cref="InvalidDataException"/> that names the field.
/// </summary>
[TestClass]
public sealed class TokenizerDataTests
{
    public TestContext TestContext { get; set; } = null!;

    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", name);

    private static byte[] Save(TokenizerData data)
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
            data.Write(writer);
        return stream.ToArray();
    }

    private static TokenizerData Load(byte[] bytes, int version = 2) =>
        TokenizerData.Read(new Model.BoundedReader(bytes, 0, bytes.Length, "tokenizer data"), version);

    private static TokenizerData Load(Stream stream, int version = 2)
    {
        using var memory = new MemoryStream();
        stream.CopyTo(memory);
        var bytes = memory.ToArray();
        return TokenizerData.Read(new Model.BoundedReader(bytes, 0, bytes.Length, "tokenizer data"), version);
    }

    /// <summary>Text that exercises every branch of the tiktoken pre-tokenization patterns, and a few special tokens.</summary>
    internal static List<string> Corpus()
    {
        var texts = new List<string>
        {
            "", " ", "Hello world", "Hello, World!", "It's a test. We'll see; they've done it, I'd say you're right, I'm sure.",
            "IT'S WE'LL THEY'VE I'D YOU'RE I'M DON'T 'S 'T 'Re", "ſ K ﬁ İstanbul ı", "don't'll've're's",
            "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
            "for (int i = 0; i < 10; i++) { x[i] = y[i] * 2; }\r\n", "<div class=\"a\">&nbsp;</div>", "{\"key\": [1, 2.5, null, true]}",
            "    indented\n\t\ttabs\n", "path/to/file.txt C:\\Windows\\System32 https://example.com/a?b=c#d",
            "1234567890", "3.14159265358979", "1,000,000.00", "2024-01-01T12:00:00Z", "0x1F 1e-9 -42 +7 ½ ² ٣ ४",
            "a    b", "   leading", "trailing   ", "\n\n\n", "\t\t x", "\r\n\r\n", " \n \n ", "x  \n  y", "a\u00a0b\u2003c\u3000d",
            "!!!???...", "«quotes» „German“ ‘single’ “double”", "...---...", "@#$%^&*()_+{}|:\"<>?~`", "—–-‐", "a/b/c//d\n/e",
            "😀😃😄", "👨‍👩‍👧‍👦 family", "🏳️‍🌈", "👍🏽👍🏿", "I ❤️ NY ☕",
            "東京は日本の首都です。", "北京欢迎你", "한국어 텍스트입니다", "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３", "カタカナとひらがな",
            "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก", "Привет, мир!", "Γειά σου Κόσμε", "Ünïcödé naïve café résumé",
            "e\u0301 a\u0308 Z\u0351\u0352\u0353algo", "\u0000\u0001\u001f\u007f", "lone \ud800 surrogate \udc00 here",
            "<|endoftext|>", "Hello<|endoftext|>world", "<|fim_prefix|>a<|fim_middle|>b<|fim_suffix|>c<|endofprompt|>",
            "<|im_start|>user<|im_end|>", "<|endoftext|", "|endoftext|>", "<|startoftext|><|reserved_200000|><|return|>",
            "<|endoftext|><|endoftext|> <|endoftext|>\n",
        };

        // Random strings of code points from many scripts and categories, including astral ones.
        var random = new Random(7);
        int[][] ranges = [[0x20, 0x7E], [0x09, 0x0D], [0xA0, 0x24F], [0x300, 0x36F], [0x370, 0x52F], [0x590, 0x6FF], [0x900, 0x97F],
            [0xE00, 0xE7F], [0x2000, 0x206F], [0x3000, 0x30FF], [0x4E00, 0x4FFF], [0xAC00, 0xAD00], [0xFF00, 0xFFEF], [0x1F300, 0x1F6FF]];
        for (int i = 0; i < 300; i++)
        {
            var text = new StringBuilder();
            for (int length = 1 + random.Next(60); text.Length < length;)
            {
                var range = ranges[random.Next(ranges.Length)];
                text.Append(char.ConvertFromUtf32(random.Next(range[0], range[1] + 1)));
                if (random.Next(4) == 0) text.Append(' ', 1 + random.Next(3));
            }
            texts.Add(text.ToString());
        }

        // A long text: everything above, shuffled and joined, about 60,000 characters.
        var pieces = texts.ToArray();
        var longText = new StringBuilder();
        while (longText.Length < 60_000)
            longText.Append(pieces[random.Next(pieces.Length)]).Append(random.Next(3) switch { 0 => " ", 1 => "\n", _ => "" });
        texts.Add(longText.ToString());
        return texts;
    }

    private void AssertSameIds(Tokenizer expected, Tokenizer actual, string what)
    {
        int count = 0, ids = 0;
        foreach (var text in Corpus())
        {
            var want = expected.EncodeToIds(text);
            var got = actual.EncodeToIds(text);
            CollectionAssert.AreEqual(want.ToArray(), got.ToArray(), $"{what}: ids differ for \"{Model.BoundedReader.Printable(text, 80)}\"");
            count++;
            ids += want.Count;
        }
        TestContext.WriteLine($"{what}: identical ids on {count} texts ({ids:N0} ids)");
    }

    [TestMethod]
    [DataRow("cl100k_base", 100_277)]
    [DataRow("o200k_base", 200_019)]
    [DataRow("o200k_harmony", 200_019)]
    [DataRow("r50k_base", 50_257)]
    public void TiktokenRebuiltFromSavedDataTokenizesLikeMicrosoftMLTokenizers(string encoding, int vocabularySize)
    {
        var reference = TiktokenTokenizer.CreateForEncoding(encoding);
        var created = TokenizerData.Tiktoken(encoding.ToUpperInvariant());
        byte[] saved = Save(created);
        var watch = Stopwatch.StartNew();
        var loaded = Load(saved);
        TestContext.WriteLine($"{encoding}: {saved.Length:N0} bytes saved, rebuilt in {watch.ElapsedMilliseconds} ms; {loaded.Description}");

        Assert.AreEqual(vocabularySize, created.VocabularySize);
        Assert.AreEqual(vocabularySize, loaded.VocabularySize);
        Assert.AreEqual(created.Description, loaded.Description);
        CollectionAssert.AreEqual(reference.SpecialTokens!.ToArray(), ((TiktokenTokenizer)loaded.Tokenizer).SpecialTokens!.ToArray());
        AssertSameIds(reference, loaded.Tokenizer, encoding);
        CollectionAssert.AreEqual(saved, Save(loaded), "saving a loaded tokenizer again changes its bytes");
    }

    [TestMethod]
    public void TiktokenFromARanksFileOfYourOwn()
    {
        // r50k_base's ranks written as OpenAI publishes them ("base64 rank" lines), shuffled; its pattern with an
        // alternative that never matches, so that the pattern is compiled rather than one of the precompiled ones.
        var encoding = TiktokenEncodings.Find("r50k_base")!;
        string path = Path.Combine(Path.GetTempPath(), $"ranks-{Guid.NewGuid():N}.tiktoken");
        try
        {
            using (var file = TiktokenRanks.ToTiktokenFile(TiktokenEncodings.ReadRanks(encoding), out _))
            {
                var lines = Encoding.ASCII.GetString(file.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
                new Random(3).Shuffle(lines);
                File.WriteAllLines(path, lines);
            }
            var reference = TiktokenTokenizer.CreateForEncoding("r50k_base");
            var data = TokenizerData.Tiktoken(path, encoding.Pattern + "|(?!)", reference.SpecialTokens);
            var loaded = Load(Save(data));
            Assert.AreEqual(50_257, loaded.VocabularySize);
            AssertSameIds(reference, loaded.Tokenizer, "r50k_base from a .tiktoken file");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void UnknownTiktokenEncodingNamesTheKnownOnes()
    {
        var e = Assert.ThrowsExactly<ArgumentException>(() => TokenizerData.Tiktoken("gpt5_base"));
        StringAssert.Contains(e.Message, "cl100k_base");
        StringAssert.Contains(e.Message, "o200k_base");
    }

    private static byte[] Version1Tiktoken(string name)
    {
        // The version-1 layout: kind 4, lower-case false, the encoding name, then two empty files.
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write((byte)4);
            writer.Write(false);
            writer.Write(name);
            writer.Write(0);
            writer.Write(0);
        }
        return stream.ToArray();
    }

    [TestMethod]
    public void Version1TiktokenLoadsWhereItsDataPackageIsReferenced()
    {
        var loaded = Load(Version1Tiktoken("cl100k_base"), version: 1);
        Assert.AreEqual(100_277, loaded.VocabularySize);
        AssertSameIds(TiktokenTokenizer.CreateForEncoding("cl100k_base"), loaded.Tokenizer, "cl100k_base from version 1");
        // Saved again, it is version 2 and carries the encoding.
        var again = Save(loaded);
        Assert.IsTrue(again.Length > 500_000, $"{again.Length} bytes");
        AssertSameIds(loaded.Tokenizer, Load(again).Tokenizer, "cl100k_base from version 1, saved again");
    }

    [TestMethod]
    public void Version1TiktokenWithoutItsDataPackageNamesThePackage()
    {
        // The tests do not reference Microsoft.ML.Tokenizers.Data.P50kBase.
        var e = Assert.ThrowsExactly<InvalidDataException>(() => Load(Version1Tiktoken("p50k_base"), version: 1));
        TestContext.WriteLine(e.Message);
        StringAssert.Contains(e.Message, "Microsoft.ML.Tokenizers.Data.P50kBase");
        StringAssert.Contains(e.Message, "p50k_base");
    }

    /// <summary>Scores a committed fixture in this process and compares with its recorded scores.</summary>
    private void AssertFixtureScores(string zip, string input, string scores)
    {
        var ml = new MLContext(seed: 0);
        var model = ml.Model.Load(zip, out _);
        var scored = model.Transform(ml.Data.LoadFromBinary(input));
        var expected = File.ReadAllLines(scores);
        Assert.AreEqual("Score\tPredictedLabel", expected[0]);
        using var cursor = scored.GetRowCursor([scored.Schema["Score"], scored.Schema["PredictedLabel"]]);
        var getScore = cursor.GetGetter<VBuffer<float>>(scored.Schema["Score"]);
        var getLabel = cursor.GetGetter<ReadOnlyMemory<char>>(scored.Schema["PredictedLabel"]);
        VBuffer<float> score = default;
        ReadOnlyMemory<char> label = default;
        int row = 0;
        double maxDiff = 0;
        while (cursor.MoveNext())
        {
            var fields = expected[++row].Split('\t');
            getScore(ref score);
            getLabel(ref label);
            var want = fields[0].Split(',').Select(s => float.Parse(s, CultureInfo.InvariantCulture)).ToArray();
            var got = score.DenseValues().ToArray();
            Assert.AreEqual(want.Length, got.Length, $"row {row}");
            for (int i = 0; i < want.Length; i++)
            {
                maxDiff = Math.Max(maxDiff, Math.Abs(want[i] - got[i]));
                Assert.AreEqual(want[i], got[i], 1e-6, $"row {row}, score {i}");
            }
            Assert.AreEqual(fields[1], label.ToString(), $"row {row}");
        }
        Assert.AreEqual(expected.Length - 1, row, "row count");
        TestContext.WriteLine($"{Path.GetFileName(zip)}: {row} rows, max score difference {maxDiff:G3}");
    }

    [TestMethod]
    public void Version1BertFixtureStillScores() =>
        AssertFixtureScores(Fixture("compat/v1/tokenizetoids.zip"), Fixture("compat/v1/tokenizetoids.input.idv"), Fixture("compat/v1/tokenizetoids.scores.tsv"));

    [TestMethod]
    public void Version1TiktokenFixtureStillScores() =>
        AssertFixtureScores(Fixture("tokenizer/v1-tiktoken-cl100k.zip"), Fixture("tokenizer/v1-tiktoken-cl100k.input.idv"), Fixture("tokenizer/v1-tiktoken-cl100k.scores.tsv"));

    private static TokenizerData SmallBert()
    {
        string path = Path.Combine(Path.GetTempPath(), $"vocab-{Guid.NewGuid():N}.txt");
        try
        {
            File.WriteAllLines(path, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "goal", "##s"]);
            return TokenizerData.Bert(path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static readonly Lazy<byte[]> Cl100kSaved = new(() => Save(TokenizerData.Tiktoken("cl100k_base")));

    /// <summary>Reads damaged data and asserts an <see cref="InvalidDataException"/> with a printable message, returned.</summary>
    private static string AssertInvalid(Stream stream, int version = 2)
    {
        var e = Assert.ThrowsExactly<InvalidDataException>(() => Load(stream, version));
        Assert.IsFalse(e.Message.Any(c => char.IsControl(c) || c == '\uFFFD' || char.IsSurrogate(c)), $"unprintable message: {e.Message}");
        return e.Message;
    }

    private static string AssertInvalid(byte[] bytes, int version = 2)
    {
        var e = Assert.ThrowsExactly<InvalidDataException>(() => Load(bytes, version));
        Assert.IsFalse(e.Message.Any(c => char.IsControl(c) || c == '\uFFFD' || char.IsSurrogate(c)), $"unprintable message: {e.Message}");
        return e.Message;
    }

    [TestMethod]
    public void TruncatedTokenizerDataFailsCheaply()
    {
        var bert = Save(SmallBert());
        var tiktoken = Cl100kSaved.Value;
        var cuts = new List<(byte[] Data, int Length)>();
        for (int length = 0; length < bert.Length; length++) cuts.Add((bert, length));
        // tiktoken: every cut in the header, a few inside the ranks, every cut in the pattern and special tokens.
        int tail = tiktoken.Length - 400;
        for (int length = 0; length < 64; length++) cuts.Add((tiktoken, length));
        for (int length = 64; length < tail; length += 99_991) cuts.Add((tiktoken, length));
        for (int length = tail; length < tiktoken.Length; length++) cuts.Add((tiktoken, length));

        var watch = Stopwatch.StartNew();
        long allocated = GC.GetAllocatedBytesForCurrentThread(), worst = 0;
        foreach (var (data, length) in cuts)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            string message = AssertInvalid(data[..length]);
            Assert.IsTrue(message.Contains("truncated") || message.Contains("bytes left"), $"cut at {length}: {message}");
            worst = Math.Max(worst, GC.GetAllocatedBytesForCurrentThread() - before - length);
        }
        TestContext.WriteLine($"{cuts.Count} truncations rejected in {watch.ElapsedMilliseconds} ms; "
            + $"{(GC.GetAllocatedBytesForCurrentThread() - allocated) / cuts.Count:N0} bytes allocated each on average, at most {worst:N0} beyond the input copy");
        // A cut inside the tail has read the ranks (0.75 MB) already; nothing allocates more than what the stream held.
        Assert.IsTrue(worst < 3 * tiktoken.Length, $"{worst} bytes allocated");
        Assert.IsTrue(watch.Elapsed < TimeSpan.FromSeconds(10), $"{watch.Elapsed}");
    }

    /// <summary>A stream that cannot seek, as a zip entry's can be, so the reader cannot know how many bytes are left.</summary>
    private sealed class ForwardOnlyStream(byte[] bytes) : Stream
    {
        private readonly MemoryStream _inner = new(bytes);
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    /// <summary>Version-2 tiktoken data written field by field, so that each field can be set to anything.</summary>
    private static byte[] Tiktoken(Action<BinaryWriter>? name = null, Action<BinaryWriter>? ranks = null,
        Action<BinaryWriter>? pattern = null, Action<BinaryWriter>? specials = null)
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write((byte)4);
            writer.Write(false);
            (name ?? (w => w.Write("test")))(writer);
            (ranks ?? (w => { w.Write(4); w.Write([1, (byte)'a', 1, (byte)'b']); }))(writer);
            writer.Write(0);
            (pattern ?? (w => w.Write(@"\w+|\s+")))(writer);
            (specials ?? (w => { w.Write(1); w.Write("<|end|>"); w.Write(2); }))(writer);
        }
        return stream.ToArray();
    }

    [TestMethod]
    public void HandWrittenTiktokenDataLoads()
    {
        var data = Load(Tiktoken());
        Assert.AreEqual(3, data.VocabularySize);
        CollectionAssert.AreEqual(new[] { 0, 1, 1, 0, 2 }, data.Tokenizer.EncodeToIds("abba<|end|>").ToArray());
    }

    [TestMethod]
    public void OversizedLengthsFailWithoutAllocating()
    {
        static void Int(BinaryWriter w, int value) => w.Write(value);
        var cases = new (string Field, byte[] Data)[]
        {
            ("tiktoken ranks", Tiktoken(ranks: w => Int(w, int.MaxValue))),
            ("tiktoken ranks", Tiktoken(ranks: w => Int(w, 0x7FFFFFF0))),
            ("tiktoken ranks", Tiktoken(ranks: w => Int(w, -1))),
            ("encoding name", Tiktoken(name: w => w.Write7BitEncodedInt(int.MaxValue))),
            ("encoding name", Tiktoken(name: w => w.Write([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]))),
            ("pre-tokenization pattern", Tiktoken(pattern: w => w.Write7BitEncodedInt(1 << 30))),
            ("special token", Tiktoken(specials: w => Int(w, int.MaxValue))),
            ("special token count", Tiktoken(specials: w => Int(w, -5))),
            ("special token", Tiktoken(specials: w => { Int(w, 1); w.Write7BitEncodedInt(int.MaxValue); })),
            ("token 1", Tiktoken(ranks: w => { Int(w, 4); w.Write([1, (byte)'a', 0x7F, (byte)'b']); })),
            ("token 0", Tiktoken(ranks: w => { Int(w, 4); w.Write([0xFF, 0xFF, 0xFF, 0x7F]); })),
            ("token 0", Tiktoken(ranks: w => { Int(w, 2); w.Write([0, 0]); })),
        };
        foreach (var (field, data) in cases)
        {
            foreach (var stream in new Stream[] { new MemoryStream(data), new ForwardOnlyStream(data) })
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                var watch = Stopwatch.StartNew();
                string message = AssertInvalid(stream);
                long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                TestContext.WriteLine($"{(stream.CanSeek ? "seekable" : "forward-only")}, {allocated:N0} bytes, {watch.Elapsed.TotalMilliseconds:F1} ms: {message}");
                StringAssert.Contains(message, field);
                // The forward-only stream may read up to 1 MB in one go before it finds the data short.
                Assert.IsTrue(allocated < 4 << 20, $"{field}: {allocated:N0} bytes allocated");
            }
        }
    }

    [TestMethod]
    public void InvalidFieldsAreNamedAndMessagesStayPrintable()
    {
        var bert = Save(SmallBert());
        var cases = new (string Fragment, byte[] Data, int Version)[]
        {
            ("tokenizer kind is 9", [9, .. bert[1..]], 2),
            ("lower-case flag", [bert[0], 7, .. bert[2..]], 2),
            ("format version 3", bert, 3),
            ("not valid UTF-8", Tiktoken(name: w => w.Write([3, 0xC3, 0x28, 0xFF])), 2),
            ("unknown tiktoken encoding name '\\u0001\\u0002bin", Version1Tiktoken("\u0001\u0002bin\u00ff"), 1),
            ("pre-tokenization pattern is not a valid regular expression", Tiktoken(pattern: w => w.Write("(unclosed")), 2),
            ("pre-tokenization pattern is empty", Tiktoken(pattern: w => w.Write("")), 2),
            ("special token '<|end|>' is listed twice", Tiktoken(specials: w => { w.Write(2); w.Write("<|end|>"); w.Write(2); w.Write("<|end|>"); w.Write(3); }), 2),
            ("special token id is -1", Tiktoken(specials: w => { w.Write(1); w.Write("<|x\u0007|>"); w.Write(-1); }), 2),
            ("tiktoken ranks is empty", Tiktoken(ranks: w => w.Write(0)), 2),
            ("tiktoken ranks are present in version 1 data", Tiktoken(specials: w => { }), 1),
        };
        foreach (var (fragment, data, version) in cases)
        {
            string message = AssertInvalid(data, version);
            TestContext.WriteLine(message);
            StringAssert.Contains(message, fragment);
        }
    }
}
