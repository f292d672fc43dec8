using System.Buffers.Binary;
using System.Text;

namespace TorchParity;

/// <summary>
/// Works around libLibTorchSharp.so (TorchSharp-cpu 0.107.0) asking for a newer libstdc++ symbol version
/// (GLIBCXX_3.4.32) than older distributions ship (Debian 12: GLIBCXX_3.4.30).
/// <para>
/// The only symbol bound to that version is <c>_ZSt21ios_base_library_initv</c>, which GCC 13 emits as a
/// link-time anchor and which no relocation references. The dynamic loader refuses the library only because
/// the version requirement in <c>.gnu.version_r</c> is mandatory. This patcher sets VER_FLG_WEAK (0x2) on every
/// required version that (a) the system library does not define and (b) no dynamic relocation depends on.
/// If a missing version IS used by a relocation, it refuses and throws: weakening it would just defer the
/// failure to a symbol lookup error.
/// </para>
/// <para>
/// It rewrites a file in place via a temporary file + rename, so a hard link into the NuGet cache (if the
/// build ever created one) is broken rather than modified. Run it only on the copy in the build output.
/// </para>
/// </summary>
internal static class ElfVersionPatcher
{
    private const uint SHT_RELA = 4;
    private const uint SHT_DYNSYM = 11;
    private const uint SHT_GNU_verdef = 0x6ffffffd;
    private const uint SHT_GNU_verneed = 0x6ffffffe;
    private const uint SHT_GNU_versym = 0x6fffffff;
    private const ushort VER_FLG_WEAK = 0x2;

    private sealed record Section(int Index, uint Type, ulong Offset, ulong Size, uint Link, ulong EntSize);

    private sealed record VersionNeed(string File, string Version, ushort Other, int FlagsOffset, ushort Flags);

    /// <summary>Patches <paramref name="path"/> if needed. Returns human-readable notes about what it did.</summary>
    public static IReadOnlyList<string> PatchIfNeeded(string path, IReadOnlyList<string>? librarySearchDirs = null)
    {
        var notes = new List<string>();
        byte[] image = File.ReadAllBytes(path);
        var sections = ReadSections(image);
        Section verneed = sections.SingleOrDefault(s => s.Type == SHT_GNU_verneed)
            ?? throw new InvalidDataException($"{path}: no .gnu.version_r section");
        Section dynstr = sections[(int)verneed.Link];
        List<VersionNeed> needs = ReadVersionNeeds(image, verneed, dynstr);

        librarySearchDirs ??= DefaultLibraryDirs();
        var definedCache = new Dictionary<string, HashSet<string>?>();
        HashSet<ushort> usedByRelocations = VersionIndicesUsedByRelocations(image, sections);

        bool changed = false;
        foreach (VersionNeed need in needs)
        {
            if ((need.Flags & VER_FLG_WEAK) != 0)
            {
                continue;
            }

            if (!definedCache.TryGetValue(need.File, out HashSet<string>? defined))
            {
                string? lib = librarySearchDirs.Select(d => Path.Combine(d, need.File)).FirstOrDefault(File.Exists);
                defined = lib is null ? null : ReadDefinedVersions(File.ReadAllBytes(lib));
                definedCache[need.File] = defined;
            }

            if (defined is null || defined.Contains(need.Version))
            {
                continue; // Library not found on the usual paths (let the loader decide) or version present.
            }

            if (usedByRelocations.Contains(need.Other))
            {
                throw new InvalidOperationException(
                    $"{Path.GetFileName(path)} needs {need.File}:{need.Version}, which this system lacks, and a relocation "
                    + "uses a symbol of that version; weakening the requirement would not help. Install a newer "
                    + $"{need.File} (e.g. from a newer GCC runtime) instead.");
            }

            BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(need.FlagsOffset), (ushort)(need.Flags | VER_FLG_WEAK));
            notes.Add($"marked {need.File}:{need.Version} WEAK in {Path.GetFileName(path)} (not defined by the system library; no relocation uses it)");
            changed = true;
        }

        if (changed)
        {
            string tmp = path + ".patching";
            File.WriteAllBytes(tmp, image);
            File.Move(tmp, path, overwrite: true);
        }

        return notes;
    }

    private static string[] DefaultLibraryDirs() =>
    [
        "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
    ];

    private static List<Section> ReadSections(byte[] image)
    {
        ReadOnlySpan<byte> b = image;
        if (b.Length < 64 || b[0] != 0x7f || b[1] != (byte)'E' || b[2] != (byte)'L' || b[3] != (byte)'F')
        {
            throw new InvalidDataException("not an ELF file");
        }

        if (b[4] != 2 || b[5] != 1)
        {
            throw new InvalidDataException("only little-endian ELF64 is supported");
        }

        ulong shoff = BinaryPrimitives.ReadUInt64LittleEndian(b[0x28..]);
        ushort shentsize = BinaryPrimitives.ReadUInt16LittleEndian(b[0x3a..]);
        ushort shnum = BinaryPrimitives.ReadUInt16LittleEndian(b[0x3c..]);
        var list = new List<Section>(shnum);
        for (int i = 0; i < shnum; i++)
        {
            ReadOnlySpan<byte> sh = b.Slice(checked((int)shoff + (i * shentsize)), shentsize);
            list.Add(new Section(
                i,
                BinaryPrimitives.ReadUInt32LittleEndian(sh[4..]),
                BinaryPrimitives.ReadUInt64LittleEndian(sh[0x18..]),
                BinaryPrimitives.ReadUInt64LittleEndian(sh[0x20..]),
                BinaryPrimitives.ReadUInt32LittleEndian(sh[0x28..]),
                BinaryPrimitives.ReadUInt64LittleEndian(sh[0x38..])));
        }

        return list;
    }

    private static string ReadString(byte[] image, Section strtab, uint offset)
    {
        int start = checked((int)(strtab.Offset + offset));
        int end = Array.IndexOf(image, (byte)0, start);
        return Encoding.ASCII.GetString(image, start, end - start);
    }

    private static List<VersionNeed> ReadVersionNeeds(byte[] image, Section verneed, Section dynstr)
    {
        var result = new List<VersionNeed>();
        int pos = checked((int)verneed.Offset);
        while (true)
        {
            ReadOnlySpan<byte> vn = image.AsSpan(pos, 16);
            ushort cnt = BinaryPrimitives.ReadUInt16LittleEndian(vn[2..]);
            string file = ReadString(image, dynstr, BinaryPrimitives.ReadUInt32LittleEndian(vn[4..]));
            uint aux = BinaryPrimitives.ReadUInt32LittleEndian(vn[8..]);
            uint next = BinaryPrimitives.ReadUInt32LittleEndian(vn[12..]);
            int apos = pos + (int)aux;
            for (int i = 0; i < cnt; i++)
            {
                ReadOnlySpan<byte> va = image.AsSpan(apos, 16);
                ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(va[4..]);
                ushort other = BinaryPrimitives.ReadUInt16LittleEndian(va[6..]);
                string name = ReadString(image, dynstr, BinaryPrimitives.ReadUInt32LittleEndian(va[8..]));
                result.Add(new VersionNeed(file, name, other, apos + 4, flags));
                uint anext = BinaryPrimitives.ReadUInt32LittleEndian(va[12..]);
                if (anext == 0)
                {
                    break;
                }

                apos += (int)anext;
            }

            if (next == 0)
            {
                break;
            }

            pos += (int)next;
        }

        return result;
    }

    private static HashSet<string> ReadDefinedVersions(byte[] image)
    {
        var sections = ReadSections(image);
        var set = new HashSet<string>(StringComparer.Ordinal);
        Section? verdef = sections.SingleOrDefault(s => s.Type == SHT_GNU_verdef);
        if (verdef is null)
        {
            return set;
        }

        Section strtab = sections[(int)verdef.Link];
        int pos = checked((int)verdef.Offset);
        while (true)
        {
            ReadOnlySpan<byte> vd = image.AsSpan(pos, 20);
            ushort cnt = BinaryPrimitives.ReadUInt16LittleEndian(vd[6..]);
            uint aux = BinaryPrimitives.ReadUInt32LittleEndian(vd[12..]);
            uint next = BinaryPrimitives.ReadUInt32LittleEndian(vd[16..]);
            if (cnt > 0)
            {
                // The first Verdaux names the version itself; the rest name its predecessors.
                set.Add(ReadString(image, strtab, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(pos + (int)aux))));
            }

            if (next == 0)
            {
                break;
            }

            pos += (int)next;
        }

        return set;
    }

    /// <summary>Version indices (vna_other values) of all symbols referenced by any SHT_RELA section.</summary>
    private static HashSet<ushort> VersionIndicesUsedByRelocations(byte[] image, List<Section> sections)
    {
        var used = new HashSet<ushort>();
        Section? versym = sections.SingleOrDefault(s => s.Type == SHT_GNU_versym);
        if (versym is null)
        {
            return used;
        }

        foreach (Section rela in sections.Where(s => s.Type == SHT_RELA))
        {
            if (sections[(int)rela.Link].Type != SHT_DYNSYM)
            {
                continue;
            }

            ulong entSize = rela.EntSize == 0 ? 24 : rela.EntSize;
            for (ulong off = 0; off + entSize <= rela.Size; off += entSize)
            {
                ulong info = BinaryPrimitives.ReadUInt64LittleEndian(image.AsSpan(checked((int)(rela.Offset + off + 8))));
                ulong sym = info >> 32;
                if (sym == 0)
                {
                    continue;
                }

                ushort ver = BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(checked((int)(versym.Offset + (sym * 2)))));
                used.Add((ushort)(ver & 0x7fff));
            }
        }

        return used;
    }
}
