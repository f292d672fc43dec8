using System.Buffers.Binary;
using System.Text;
using Microsoft.ML.Recurrent.Interop;

namespace Microsoft.ML.Recurrent.Tests.Interop;

/// <summary>
/// The safetensors reader and writer on their own: the writer's layout (sorted, aligned, deterministic), the reader's
/// conversions of F16, BF16 and F64, and one hand-made file per rule the reader enforces, each refused with an
/// <see cref="InvalidDataException"/> whose message names the tensor or field.
/// </summary>
[TestClass]
public sealed class SafetensorsFormatTests
{
    private static SafetensorsTensor Tensor(string name, int[] shape, int seed)
    {
        var random = new Random(seed);
        int count = shape.Aggregate(1, (a, b) => a * b);
        return new SafetensorsTensor(name, shape, Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray());
    }

    private static byte[] Write(IEnumerable<SafetensorsTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var stream = new MemoryStream();
        SafetensorsWriter.Write(stream, tensors, metadata);
        return stream.ToArray();
    }

    /// <summary>A file from a header written by hand and the data bytes as given.</summary>
    internal static byte[] Raw(string header, byte[] data)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var file = new byte[8 + json.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)json.Length);
        json.CopyTo(file, 8);
        data.CopyTo(file, 8 + json.Length);
        return file;
    }

    private static SafetensorsFile Read(byte[] file) => SafetensorsReader.Read(new MemoryStream(file), "test.safetensors");

    private static void Refused(byte[] file, params string[] fragments)
    {
        var e = Assert.ThrowsExactly<InvalidDataException>(() => Read(file));
        StringAssert.StartsWith(e.Message, "Safetensors file 'test.safetensors'");
        foreach (var fragment in fragments)
            StringAssert.Contains(e.Message, fragment, $"message: {e.Message}");
    }

    [TestMethod]
    public void TheWriterSortsAlignsAndRoundTrips()
    {
        var tensors = new[] { Tensor("rnn.weight_ih_l0", [8, 3], 1), Tensor("embedding.weight", [5, 3], 2), Tensor("head.bias", [2], 3), Tensor("scalar", [], 4) };
        var metadata = new Dictionary<string, string> { ["z"] = "last", ["cell"] = "LSTM", ["quote\"and\\"] = "ünïcode ✓" };
        byte[] file = Write(tensors, metadata);
        byte[] again = Write(tensors.Reverse(), metadata.Reverse().ToDictionary());
        CollectionAssert.AreEqual(file, again, "the same tensors in another order give the same bytes");

        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(file);
        Assert.AreEqual(0UL, n % 8, "the header is padded to a multiple of 8 bytes");
        string header = Encoding.UTF8.GetString(file, 8, (int)n);
        Assert.IsTrue(header.StartsWith("{\"__metadata__\":{\"cell\":\"LSTM\"", StringComparison.Ordinal), header);
        Assert.IsTrue(header.IndexOf("\"embedding.weight\"", StringComparison.Ordinal) < header.IndexOf("\"head.bias\"", StringComparison.Ordinal));
        Assert.IsTrue(header.TrimEnd(' ').EndsWith('}') && header.Length - header.TrimEnd(' ').Length < 8, "padded with fewer than 8 spaces");
        StringAssert.Contains(header, "\"embedding.weight\":{\"dtype\":\"F32\",\"shape\":[5,3],\"data_offsets\":[0,60]}");
        Assert.AreEqual((long)file.Length, 8 + (long)n + tensors.Sum(t => t.Values.Length * 4L));

        var read = Read(file);
        Assert.AreEqual(tensors.Length, read.Tensors.Count);
        foreach (var t in tensors)
        {
            CollectionAssert.AreEqual(t.Shape, read.Tensors[t.Name].Shape, t.Name);
            CollectionAssert.AreEqual(t.Values, read.Tensors[t.Name].Values, t.Name);
        }
        CollectionAssert.AreEquivalent(metadata.ToList(), read.Metadata.ToList());
    }

    [TestMethod]
    public void AStreamThatCannotSeekAndAFileReadTheSame()
    {
        byte[] file = Write([Tensor("a", [3, 2], 5), Tensor("b", [4], 6)]);
        var fromStream = SafetensorsReader.Read(new ForwardOnlyStream(file), "stream");
        string path = Path.Combine(Path.GetTempPath(), $"st-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafetensorsWriter.Write(path, fromStream.Tensors.Values, null);
            CollectionAssert.AreEqual(file, File.ReadAllBytes(path));
            var fromFile = SafetensorsReader.Read(path);
            CollectionAssert.AreEqual(fromStream.Tensors["a"].Values, fromFile.Tensors["a"].Values);
            Assert.AreEqual(Path.GetFileName(path), fromFile.Source);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void HalfBFloat16AndDoubleAreConvertedZeroSizedTensorsAreRead()
    {
        float[] expected = [1.5f, -2.25f, 0.099975586f, 65504f];
        var data = new List<byte>();
        foreach (float v in expected) data.AddRange(BitConverter.GetBytes(BitConverter.HalfToUInt16Bits((Half)v)));   // F16 [0, 8)
        foreach (float v in expected) data.AddRange(BitConverter.GetBytes((ushort)(BitConverter.SingleToUInt32Bits(v) >> 16)));  // BF16 [8, 16)
        foreach (float v in expected) data.AddRange(BitConverter.GetBytes((double)v));  // F64 [16, 48)
        string header = """
            {"h":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[8,16]},
             "d":{"dtype":"F64","shape":[4],"data_offsets":[16,48]},"empty":{"dtype":"F32","shape":[0,3],"data_offsets":[48,48]}}
            """;
        var file = Read(Raw(header, [.. data]));
        CollectionAssert.AreEqual(expected, file.Tensors["h"].Values);
        CollectionAssert.AreEqual(expected.Select(v => BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(v) & 0xFFFF0000)).ToArray(), file.Tensors["b"].Values);
        CollectionAssert.AreEqual(expected, file.Tensors["d"].Values);
        Assert.AreEqual(0, file.Tensors["empty"].Values.Length);
        Assert.AreEqual("BF16", file.Tensors["b"].DType);
    }

    [TestMethod]
    public void EveryRuleOfTheFormatIsEnforcedWithAMessageNamingTheTensor()
    {
        var four = new byte[16];
        string Tensor4(string name = "w", string dtype = "F32", string shape = "[4]", string offsets = "[0,16]") =>
            $"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":{offsets}}}";

        Refused([1, 2, 3], "3 bytes long");
        var hugeHeader = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(hugeHeader, ulong.MaxValue);
        Refused(hugeHeader, "header length is 18446744073709551615", "expected 2 to");
        BinaryPrimitives.WriteUInt64LittleEndian(hugeHeader, 50_000_000);
        Refused(hugeHeader, "header length is 50000000", "only 8 bytes follow");
        Refused(Raw("[1, 2]", []), "does not begin with '{'");
        Refused(Raw("{\"w\": {\"dtype\": \"F32\", ", []), "not valid JSON");
        Refused(Raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[[[1]]],\"data_offsets\":[0,4]}}", new byte[4]), "not valid JSON of at most 3 levels");
        Refused(Raw("{" + Tensor4() + "," + Tensor4() + "}", four), "names 'w' twice");
        Refused(Raw("{" + Tensor4(dtype: "I64", offsets: "[0,32]") + "}", new byte[32]), "tensor 'w' has dtype I64", "only floating-point");
        Refused(Raw("{" + Tensor4(dtype: "Q4") + "}", four), "tensor 'w' has the unknown dtype 'Q4'");
        Refused(Raw("{" + Tensor4(shape: "[5]") + "}", four), "tensor 'w' has shape [5] of F32 (20 bytes), but data_offsets [0, 16] hold 16 bytes");
        Refused(Raw("{" + Tensor4(shape: "[-4]") + "}", four), "tensor 'w' has dimension 0 = -4");
        Refused(Raw("{" + Tensor4(shape: "[2.5]") + "}", four), "tensor 'w' has dimension 0 = 2.5");
        Refused(Raw("{" + Tensor4(shape: "[1,1,1,1,1,1,1,1,4]") + "}", four), "tensor 'w' has rank 9");
        Refused(Raw("{" + Tensor4(shape: "[65536,65536]") + "}", four), "tensor 'w' has shape [65536, 65536]…, more than", "elements");
        // 2^29 elements: its float32 values would not fit one span of bytes (found by a review: OverflowException before).
        Refused(Raw("{" + Tensor4(dtype: "F16", shape: "[536870912]", offsets: "[0,1073741824]") + "}", four), "tensor 'w' has shape [536870912]…, more than 536,870,911 elements");
        // Escaped lone surrogates read as text only when asked for (InvalidOperationException from System.Text.Json before).
        Refused(Raw("{\"w\\ud800\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", four), "not valid Unicode");
        Refused(Raw("{" + Tensor4() + ",\"__metadata__\":{\"k\":\"\\udc00\"}}", four), "not valid Unicode");
        Refused(Raw("{" + Tensor4(offsets: "[0,16,32]") + "}", four), "tensor 'w' has 3 data_offsets");
        Refused(Raw("{" + Tensor4(offsets: "[16,0]") + "}", four), "tensor 'w' has data_offsets [16, 0]");
        Refused(Raw("{" + Tensor4(offsets: "[-16,0]") + "}", four), "tensor 'w' has data_offsets [-16, 0]");
        Refused(Raw("{" + Tensor4(offsets: "[9223372036854775800,9223372036854775807]") + "}", four), "tensor 'w'", "ends at byte 9223372036854775807", "holds 16 bytes");
        Refused(Raw("{" + Tensor4(offsets: "[4,20]") + "}", new byte[20]), "bytes 0 to 4 of the data are unused before tensor 'w'");
        Refused(Raw("{" + Tensor4() + "," + Tensor4("v", offsets: "[8,24]") + "}", new byte[24]), "tensor 'v' (bytes 8 to 24) overlaps tensor 'w' (bytes 0 to 16)");
        Refused(Raw("{" + Tensor4() + "}", new byte[20]), "4 bytes after the last tensor are described by no tensor");
        Refused(Raw("{" + Tensor4(name: new string('n', 1025)) + "}", four), "a tensor name has 1025 characters");
        Refused(Raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16],\"extra\":1}}", four), "tensor 'w' has an unknown field 'extra'");
        Refused(Raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[4]}}", four), "tensor 'w' has no data_offsets array");
        Refused(Raw("{\"w\":[1,2]}", four), "tensor 'w' is described by a JSON Array");
        Refused(Raw("{\"__metadata__\":{\"cell\":4}," + Tensor4() + "}", four), "__metadata__ entry 'cell' is a JSON Number");
        Refused(Raw("{\"__metadata__\":[]," + Tensor4() + "}", four), "__metadata__ is a JSON Array");
        var invalidUtf8 = Raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", four);
        invalidUtf8[10] = 0xC3;   // the first byte of a two-byte sequence, followed by '"'
        Refused(invalidUtf8, "the header is not valid UTF-8 text");
        Refused(Raw("{\"w\\u0007\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,8]}}", four), "tensor 'w\\u0007'");

        // Valid edge cases: no tensors at all, trailing spaces, an empty metadata object.
        Assert.AreEqual(0, Read(Raw("{}", [])).Tensors.Count);
        Assert.AreEqual(1, Read(Raw("{\"__metadata__\":{}," + Tensor4() + "}      ", four)).Tensors.Count);
    }

    [TestMethod]
    public void TheWriterRefusesWhatTheReaderWouldRefuse()
    {
        Assert.ThrowsExactly<ArgumentException>(() => Write([new SafetensorsTensor("w", [2, 2], new float[3])]));
        Assert.ThrowsExactly<ArgumentException>(() => Write([new SafetensorsTensor("w", [1], new float[1]), new SafetensorsTensor("w", [1], new float[1])]));
        Assert.ThrowsExactly<ArgumentException>(() => Write([new SafetensorsTensor("__metadata__", [1], new float[1])]));
        Assert.ThrowsExactly<ArgumentException>(() => Write([new SafetensorsTensor("", [1], new float[1])]));
    }

    /// <summary>A read-only stream that cannot seek (as a network stream).</summary>
    private sealed class ForwardOnlyStream(byte[] data) : Stream
    {
        private readonly MemoryStream _inner = new(data);
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
