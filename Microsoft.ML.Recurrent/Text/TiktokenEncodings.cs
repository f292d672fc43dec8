using System.IO.Compression;
using System.Reflection;
using System.Text.RegularExpressions;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// The tiktoken encodings Microsoft.ML.Tokenizers 2.0.x knows by name, with what it takes to capture one: the
/// pre-tokenization pattern, which Microsoft.ML.Tokenizers does not expose, and where its data package keeps the ranks.
/// The patterns are those Microsoft.ML.Tokenizers 2.0.1 uses (OpenAI's tiktoken patterns, written with atomic groups
/// for .NET); TokenizerDataTests checks that a tokenizer rebuilt from them gives the ids of
/// <c>TiktokenTokenizer.CreateForEncoding</c> for every encoding whose data package the tests reference.
/// </summary>
/// <remarks>
/// This class reads the data packages only when a <see cref="TokenizerData"/> is created; a saved model carries the
/// ranks, the pattern and the special tokens itself and never comes here except to pick a precompiled pattern.
/// </remarks>
internal static partial class TiktokenEncodings
{
    private const string Cl100kBasePattern = @"'(?i:[sdmt]|ll|ve|re)|(?>[^\r\n\p{L}\p{N}]?)(?>\p{L}+)|(?>\p{N}{1,3})| ?(?>[^\s\p{L}\p{N}]+)(?>[\r\n]*)|(?>\s+)$|\s*[\r\n]|\s+(?!\S)|\s";
    private const string P50kBasePattern = @"'(?:[sdmt]|ll|ve|re)| ?(?>\p{L}+)| ?(?>\p{N}+)| ?(?>[^\s\p{L}\p{N}]+)|(?>\s+)$|\s+(?!\S)|\s";
    private const string O200kBasePattern = @"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    // Microsoft.ML.Tokenizers gives its pre-tokenization regexes a 30 s match timeout; ours do the same.
    private const int MatchTimeoutMilliseconds = 30_000;

    /// <summary>A known encoding.</summary>
    /// <param name="Name">The encoding name, as <c>TiktokenTokenizer.CreateForEncoding</c> takes it.</param>
    /// <param name="Pattern">The pre-tokenization regular expression.</param>
    /// <param name="PackageName">The NuGet package (and assembly) that carries the ranks.</param>
    /// <param name="ResourceName">The deflate-compressed .tiktoken file inside that assembly.</param>
    internal sealed record KnownEncoding(string Name, string Pattern, string PackageName, string ResourceName);

    private static readonly KnownEncoding[] Known =
    [
        new("cl100k_base", Cl100kBasePattern, "Microsoft.ML.Tokenizers.Data.Cl100kBase", "cl100k_base.tiktoken.deflate"),
        new("o200k_base", O200kBasePattern, "Microsoft.ML.Tokenizers.Data.O200kBase", "o200k_base.tiktoken.deflate"),
        new("o200k_harmony", O200kBasePattern, "Microsoft.ML.Tokenizers.Data.O200kBase", "o200k_base.tiktoken.deflate"),
        new("p50k_base", P50kBasePattern, "Microsoft.ML.Tokenizers.Data.P50kBase", "p50k_base.tiktoken.deflate"),
        new("p50k_edit", P50kBasePattern, "Microsoft.ML.Tokenizers.Data.P50kBase", "p50k_base.tiktoken.deflate"),
        new("r50k_base", P50kBasePattern, "Microsoft.ML.Tokenizers.Data.R50kBase", "r50k_base.tiktoken.deflate"),
    ];

    /// <summary>The known encoding names.</summary>
    internal static IEnumerable<string> Names => Known.Select(e => e.Name);

    /// <summary>The encoding of that name (ignoring case, as Microsoft.ML.Tokenizers does), or null.</summary>
    internal static KnownEncoding? Find(string name) =>
        Known.FirstOrDefault(e => string.Equals(e.Name, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>Whether the encoding's data package can be loaded in this process.</summary>
    internal static bool IsDataPackageAvailable(KnownEncoding encoding) => TryLoadDataAssembly(encoding) is not null;

    /// <summary>
    /// The encoding's ranks in <see cref="TiktokenRanks"/>' compact form, read from its data package.
    /// </summary>
    /// <exception cref="InvalidOperationException">The package is not referenced, or does not hold the file where
    /// Microsoft.ML.Tokenizers 2.0.x keeps it.</exception>
    internal static byte[] ReadRanks(KnownEncoding encoding)
    {
        var assembly = TryLoadDataAssembly(encoding)
            ?? throw new InvalidOperationException($"The tiktoken encoding '{encoding.Name}' needs the package {encoding.PackageName}; reference it where the TokenizerData is created.");
        using var compressed = assembly.GetManifestResourceStream(encoding.ResourceName)
            ?? throw new InvalidOperationException($"{encoding.PackageName} has no resource '{encoding.ResourceName}'; this version of the package is not supported.");
        using var file = new DeflateStream(compressed, CompressionMode.Decompress);
        return TiktokenRanks.FromTiktokenFile(file);
    }

    private static Assembly? TryLoadDataAssembly(KnownEncoding encoding)
    {
        try
        {
            return Assembly.Load(new AssemblyName(encoding.PackageName));
        }
        catch (Exception e) when (e is FileNotFoundException or FileLoadException or BadImageFormatException)
        {
            return null;
        }
    }

    /// <summary>
    /// The regex for a pre-tokenization pattern: a precompiled one for the known patterns (nothing to compile at load),
    /// else a compiled <see cref="Regex"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The pattern is not a valid .NET regular expression.</exception>
    internal static Regex CreateRegex(string pattern) => pattern switch
    {
        Cl100kBasePattern => Cl100kBaseRegex(),
        P50kBasePattern => P50kBaseRegex(),
        O200kBasePattern => O200kBaseRegex(),
        _ => new Regex(pattern, RegexOptions.Compiled, TimeSpan.FromMilliseconds(MatchTimeoutMilliseconds)),
    };

    [GeneratedRegex(Cl100kBasePattern, RegexOptions.None, MatchTimeoutMilliseconds)]
    private static partial Regex Cl100kBaseRegex();

    [GeneratedRegex(P50kBasePattern, RegexOptions.None, MatchTimeoutMilliseconds)]
    private static partial Regex P50kBaseRegex();

    [GeneratedRegex(O200kBasePattern, RegexOptions.None, MatchTimeoutMilliseconds)]
    private static partial Regex O200kBaseRegex();
}
