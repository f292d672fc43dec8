using System.Reflection;
using System.Runtime.Loader;
using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Microsoft.ML.Recurrent.Tests;

/// <summary>
/// Every C# block of README.md and docs/usage.md is a complete program: each is compiled as a console program (with
/// the implicit usings of <c>dotnet new console</c> and references to this library and ML.NET, as a user's project
/// has them) and then run, in document order, in a folder that holds a small sample of the AG News excerpt the blocks
/// read (so training blocks take seconds); later blocks find the files earlier ones saved. A block that stops
/// compiling or throws fails the test.
/// </summary>
[TestClass]
public sealed class DocumentationTests
{
    public TestContext TestContext { get; set; } = null!;

    private static readonly string[] Documents = ["README.md", "docs/usage.md"];

    private const string ImplicitUsings = """
        global using System;
        global using System.Collections.Generic;
        global using System.IO;
        global using System.Linq;
        global using System.Net.Http;
        global using System.Threading;
        global using System.Threading.Tasks;
        """;

    /// <summary>The ```csharp blocks of a Markdown file, with the line each starts on.</summary>
    internal static List<(int Line, string Code)> CSharpBlocks(string markdown)
    {
        var blocks = new List<(int, string)>();
        var lines = markdown.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            if (lines[i].TrimEnd() != "```csharp") continue;
            int start = i + 1;
            int end = Array.FindIndex(lines, start, l => l.TrimEnd() == "```");
            Assert.IsTrue(end > 0, $"unterminated C# block at line {i + 1}");
            blocks.Add((start + 1, string.Join('\n', lines[start..end])));
            i = end;
        }
        return blocks;
    }

    private static readonly Lazy<List<MetadataReference>> References = new(() =>
    {
        // The framework (as the SDK's reference assemblies would give it) and everything the tests load: ML.NET,
        // Microsoft.ML.Tokenizers and its data package, this library.
        var paths = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Concat(Directory.GetFiles(AppContext.BaseDirectory, "Microsoft.ML*.dll"))
            .Concat(Directory.GetFiles(AppContext.BaseDirectory, "System.Numerics.Tensors.dll"))
            .Where(p => !Path.GetFileName(p).StartsWith("Microsoft.ML.Recurrent.Tests", StringComparison.Ordinal))
            .GroupBy(Path.GetFileName).Select(g => g.First());
        return paths.Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)).ToList();
    });

    /// <summary>Compiles one block as a console program; fails with the diagnostics and the block's location.</summary>
    private static byte[] Compile(string name, string code, string where)
    {
        var options = new CSharpParseOptions(LanguageVersion.Preview);
        var compilation = CSharpCompilation.Create(name,
            [CSharpSyntaxTree.ParseText(ImplicitUsings, options), CSharpSyntaxTree.ParseText(code, options, path: where)],
            References.Value,
            new CSharpCompilationOptions(OutputKind.ConsoleApplication, nullableContextOptions: NullableContextOptions.Enable));
        using var stream = new MemoryStream();
        var result = compilation.Emit(stream);
        var errors = result.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        Assert.IsTrue(result.Success, $"{where} does not compile:\n{string.Join("\n", errors.Take(10))}");
        return stream.ToArray();
    }

    [TestMethod]
    public void EveryCSharpBlockCompiles()
    {
        int count = 0;
        foreach (var document in Documents)
            foreach (var (line, code) in CSharpBlocks(File.ReadAllText(Path.Combine(Datasets.RepositoryRoot, document))))
            {
                Compile($"Snippet{count}", code, $"{document}:{line}");
                count++;
            }
        TestContext.WriteLine($"{count} C# blocks compile");
        Assert.IsTrue(count >= 9, $"only {count} C# blocks found");
    }

    [TestMethod]
    [DoNotParallelize] // the blocks use relative paths: the working directory is process-wide
    [Timeout(600_000)]
    public void EveryCSharpBlockRunsOnASample()
    {
        string folder = Path.Combine(Path.GetTempPath(), "rnn-docs-" + Guid.NewGuid().ToString("N"));
        string data = Path.Combine(folder, "samples", "TextClassificationDemo", "data");
        Directory.CreateDirectory(data);
        // A sample of the shipped excerpt: every class, few enough rows that each training block takes seconds.
        string excerpt = Path.Combine(Datasets.RepositoryRoot, "samples", "TextClassificationDemo", "data");
        File.WriteAllLines(Path.Combine(data, "train.csv"), File.ReadLines(Path.Combine(excerpt, "train.csv")).Take(240));
        File.WriteAllLines(Path.Combine(data, "test.csv"), File.ReadLines(Path.Combine(excerpt, "test.csv")).Take(80));
        string tagging = Path.Combine(folder, "samples", "TaggingDemo", "data");
        Directory.CreateDirectory(tagging);
        string taggingExcerpt = Path.Combine(Datasets.RepositoryRoot, "samples", "TaggingDemo", "data");
        File.WriteAllLines(Path.Combine(tagging, "train.tsv"), File.ReadLines(Path.Combine(taggingExcerpt, "train.tsv")).Take(150));
        File.WriteAllLines(Path.Combine(tagging, "test.tsv"), File.ReadLines(Path.Combine(taggingExcerpt, "test.tsv")).Take(50));
        string generation = Path.Combine(folder, "samples", "TextGenerationDemo", "data");
        Directory.CreateDirectory(generation);
        string generationExcerpt = Path.Combine(Datasets.RepositoryRoot, "samples", "TextGenerationDemo", "data", "shakespeare.txt");
        File.WriteAllText(Path.Combine(generation, "shakespeare.txt"), File.ReadAllText(generationExcerpt)[..6000]);
        string previous = Environment.CurrentDirectory;
        var output = Console.Out;
        try
        {
            Environment.CurrentDirectory = folder;
            int index = 0;
            foreach (var document in Documents)
                foreach (var (line, code) in CSharpBlocks(File.ReadAllText(Path.Combine(Datasets.RepositoryRoot, document))))
                {
                    string where = $"{document}:{line}";
                    var image = Compile($"Snippet{index++}", code, where);
                    var context = new AssemblyLoadContext(where, isCollectible: true);
                    var console = new StringWriter();
                    var clock = System.Diagnostics.Stopwatch.StartNew();
                    try
                    {
                        Console.SetOut(console);
                        var entry = context.LoadFromStream(new MemoryStream(image)).EntryPoint!;
                        entry.Invoke(null, entry.GetParameters().Length == 0 ? null : [Array.Empty<string>()]);
                    }
                    catch (TargetInvocationException e)
                    {
                        Assert.Fail($"{where} threw {e.InnerException}");
                    }
                    finally
                    {
                        Console.SetOut(output);
                        context.Unload();
                    }
                    TestContext.WriteLine($"{where}: ran in {clock.Elapsed.TotalSeconds:F1} s; printed: {console.ToString().Trim().Replace("\n", " | ")}");
                }
        }
        finally
        {
            Console.SetOut(output);
            Environment.CurrentDirectory = previous;
            Directory.Delete(folder, recursive: true);
        }
    }
}
