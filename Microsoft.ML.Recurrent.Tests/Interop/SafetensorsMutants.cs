using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Microsoft.ML.Recurrent.Tests.Interop;

/// <summary>How a safetensors mutant was made from a valid file.</summary>
public enum SafetensorsMutantKind
{
    /// <summary>1–4 bytes of the header flipped.</summary>
    HeaderByteFlip,
    /// <summary>1–4 bytes of the data flipped: undetectable by design (the format has no checksum), a different valid file.</summary>
    DataByteFlip,
    /// <summary>The file cut short.</summary>
    Truncation,
    /// <summary>Bytes appended after the data.</summary>
    Extension,
    /// <summary>The 8-byte header length replaced by a nearby or extreme value (up to 2^64 − 1).</summary>
    HeaderLength,
    /// <summary>A number of the header (a dimension or an offset) replaced by an extreme or nearby value; the header length fixed up.</summary>
    HostileNumber,
    /// <summary>A dtype replaced by another (F16, BF16, F64, I64, BOOL, an unknown one, …); the header length fixed up.</summary>
    HostileDType,
    /// <summary>A tensor renamed (to another tensor's name, to nothing, to 2,000 characters, to __metadata__); the header length fixed up.</summary>
    HostileName,
    /// <summary>A structural edit of the header: a tensor removed or repeated, a field added or removed, metadata made non-string.</summary>
    HostileStructure,
    /// <summary>The data_offsets of two tensors of the same size swapped: a different valid file.</summary>
    SwappedOffsets,
}

/// <summary>Seeded mutants of one valid safetensors file.</summary>
internal sealed class SafetensorsMutants
{
    private static readonly string[] DTypes = ["F16", "BF16", "F64", "I64", "I32", "U8", "BOOL", "F8_E4M3", "f32", "", "F32 ", "F3\u00002"];
    private static readonly string[] Numbers =
    [
        "-1", "0", "1", "3", "255", "2147483647", "2147483648", "4294967296", "9007199254740993", "9223372036854775807",
        "18446744073709551615", "99999999999999999999999", "1e308", "0.5", "-0", "1E2",
    ];

    private readonly byte[] _file;
    private readonly string _header;
    private readonly int _headerLength;

    public SafetensorsMutants(string name, byte[] file)
    {
        Name = name;
        _file = file;
        _headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        _header = Encoding.UTF8.GetString(file, 8, _headerLength);
    }

    public string Name { get; }

    /// <summary>The <paramref name="index"/>-th mutant of run <paramref name="seed"/>: its kind, what changed and the bytes.</summary>
    public (SafetensorsMutantKind Kind, string Change, byte[] File) Make(int seed, int index)
    {
        // A stable seed (HashCode.Combine differs from process to process): the same mutants in every run.
        int nameHash = Name.Aggregate(17, (h, c) => unchecked(h * 31 + c));
        var random = new Random(unchecked((seed * 1_000_003 + index) * 31 + nameHash));
        var kind = (SafetensorsMutantKind)random.Next(Enum.GetValues<SafetensorsMutantKind>().Length);
        switch (kind)
        {
            case SafetensorsMutantKind.HeaderByteFlip:
            case SafetensorsMutantKind.DataByteFlip:
            {
                var file = (byte[])_file.Clone();
                int flips = 1 + random.Next(4), start = kind == SafetensorsMutantKind.HeaderByteFlip ? 8 : 8 + _headerLength;
                int end = kind == SafetensorsMutantKind.HeaderByteFlip ? 8 + _headerLength : file.Length;
                var at = new List<int>();
                for (int i = 0; i < flips; i++)
                {
                    int position = random.Next(start, end);
                    file[position] ^= (byte)(1 + random.Next(255));
                    at.Add(position);
                }
                return (kind, $"flipped bytes at {string.Join(", ", at)}", file);
            }
            case SafetensorsMutantKind.Truncation:
            {
                int length = random.Next(_file.Length);
                return (kind, $"cut to {length} bytes", _file[..length]);
            }
            case SafetensorsMutantKind.Extension:
            {
                var extra = new byte[1 + random.Next(64)];
                random.NextBytes(extra);
                return (kind, $"{extra.Length} bytes appended", [.. _file, .. extra]);
            }
            case SafetensorsMutantKind.HeaderLength:
            {
                ulong[] choices =
                [
                    0, 1, 2, (ulong)_headerLength - 1, (ulong)_headerLength + 1, (ulong)_headerLength - 8, (ulong)_headerLength + 8,
                    (ulong)_file.Length - 8, (ulong)_file.Length, 100_000_000, 100_000_001, int.MaxValue, uint.MaxValue, long.MaxValue, ulong.MaxValue,
                    (ulong)random.NextInt64(),
                ];
                ulong value = choices[random.Next(choices.Length)];
                var file = (byte[])_file.Clone();
                BinaryPrimitives.WriteUInt64LittleEndian(file, value);
                return (kind, $"header length {value}", file);
            }
            case SafetensorsMutantKind.HostileNumber:
            {
                var numbers = Regex.Matches(_header, @"(?<=[\[,])-?\d+(?=[\],])");
                var match = numbers[random.Next(numbers.Count)];
                long original = long.Parse(match.Value);
                string value = random.Next(3) == 0 ? (original + random.Next(-8, 9)).ToString() : Numbers[random.Next(Numbers.Length)];
                return (kind, $"number {match.Value} at {match.Index} → {value}", WithHeader(_header[..match.Index] + value + _header[(match.Index + match.Length)..]));
            }
            case SafetensorsMutantKind.HostileDType:
            {
                var dtypes = Regex.Matches(_header, "\"dtype\":\"F32\"");
                var match = dtypes[random.Next(dtypes.Count)];
                string value = DTypes[random.Next(DTypes.Length)];
                string json = JsonValue.Create(value).ToJsonString();
                return (kind, $"dtype at {match.Index} → {json}", WithHeader(_header[..match.Index] + "\"dtype\":" + json + _header[(match.Index + match.Length)..]));
            }
            case SafetensorsMutantKind.HostileName:
            {
                var root = Root();
                var names = root.Select(p => p.Key).Where(n => n != "__metadata__").ToList();
                string victim = names[random.Next(names.Count)];
                string[] replacements = [names[random.Next(names.Count)], "", new string('x', 2_000), "__metadata__", victim + "\u0001", victim.ToUpperInvariant()];
                string replacement = replacements[random.Next(replacements.Length)];
                // Textual, so that a duplicate name really appears twice in the JSON.
                string key = JsonValue.Create(victim).ToJsonString() + ":";
                int position = _header.IndexOf(key, StringComparison.Ordinal);
                return (kind, $"'{victim}' renamed to a name of {replacement.Length} characters",
                    WithHeader(_header[..position] + JsonValue.Create(replacement).ToJsonString() + ":" + _header[(position + key.Length)..]));
            }
            case SafetensorsMutantKind.HostileStructure:
            {
                var root = Root();
                var names = root.Select(p => p.Key).Where(n => n != "__metadata__").ToList();
                string victim = names[random.Next(names.Count)];
                var entry = root[victim]!.AsObject();
                switch (random.Next(6))
                {
                    case 0:
                        root.Remove(victim);
                        return (kind, $"'{victim}' removed", WithHeader(root.ToJsonString()));
                    case 1:
                        entry.Remove("shape");
                        return (kind, $"'{victim}' without shape", WithHeader(root.ToJsonString()));
                    case 2:
                        entry["extra"] = 1;
                        return (kind, $"'{victim}' with an extra field", WithHeader(root.ToJsonString()));
                    case 3:
                        root["__metadata__"] = new JsonObject { ["cell"] = 4 };
                        return (kind, "metadata with a number", WithHeader(root.ToJsonString()));
                    case 4:
                        entry["shape"] = new JsonArray(new JsonArray(1));
                        return (kind, $"'{victim}' with a nested shape", WithHeader(root.ToJsonString()));
                    default:
                        // The entry repeated, textually.
                        string text = root.ToJsonString();
                        string repeated = JsonValue.Create(victim).ToJsonString() + ":" + entry.ToJsonString();
                        return (kind, $"'{victim}' twice", WithHeader(text[..^1] + "," + repeated + "}"));
                }
            }
            default:
            {
                // Two tensors of the same byte size trade their places in the data.
                var root = Root();
                var bySize = root.Where(p => p.Key != "__metadata__")
                    .GroupBy(p => p.Value!["data_offsets"]![1]!.GetValue<long>() - p.Value!["data_offsets"]![0]!.GetValue<long>())
                    .Where(g => g.Count() >= 2).ToList();
                var group = bySize[random.Next(bySize.Count)].ToList();
                var (a, b) = (group[0].Value!.AsObject(), group[1].Value!.AsObject());
                var offsets = a["data_offsets"]!.DeepClone();
                a["data_offsets"] = b["data_offsets"]!.DeepClone();
                b["data_offsets"] = offsets;
                return (SafetensorsMutantKind.SwappedOffsets, $"'{group[0].Key}' and '{group[1].Key}' swapped", WithHeader(root.ToJsonString()));
            }
        }
    }

    private JsonObject Root() => JsonNode.Parse(_header.TrimEnd(' '))!.AsObject();

    /// <summary>The file with <paramref name="header"/> in place of its header (and its length), the data unchanged.</summary>
    private byte[] WithHeader(string header)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var file = new byte[8 + json.Length + _file.Length - 8 - _headerLength];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)json.Length);
        json.CopyTo(file, 8);
        _file.AsSpan(8 + _headerLength).CopyTo(file.AsSpan(8 + json.Length));
        return file;
    }
}
