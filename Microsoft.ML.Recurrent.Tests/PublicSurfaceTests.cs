using System.Reflection;
using System.Text.RegularExpressions;

namespace Microsoft.ML.Recurrent.Tests;

/// <summary>
/// The layout rules that keep the library usable and layered: everything a user types is reachable from
/// <c>Microsoft.ML</c> (the catalog extensions) and <c>Microsoft.ML.Recurrent</c>; test-only code stays out of the
/// shipped assembly; and the numerics core refers to no ML.NET type.
/// </summary>
[TestClass]
public sealed class PublicSurfaceTests
{
    private static readonly Assembly Library = typeof(RecurrentTransformerBase).Assembly;
    private static readonly string[] CoreFolders = ["Kernels", "Core", "Layers", "Model", "Optimizers", "Training", "Interop"];

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void EveryPublicTypeIsInMicrosoftMLOrMicrosoftMLRecurrent()
    {
        var types = Library.GetExportedTypes();
        foreach (var type in types)
            TestContext.WriteLine($"{type.Namespace}: {type.FullName}");
        var stray = types.Where(t => t.Namespace is not ("Microsoft.ML" or "Microsoft.ML.Recurrent")).Select(t => t.FullName).ToList();
        Assert.AreEqual(0, stray.Count, "public types outside the two user namespaces: " + string.Join(", ", stray));
        // The catalog extensions live next to ML.NET's own; everything else in Microsoft.ML.Recurrent.
        CollectionAssert.AreEquivalent(new[] { "RecurrentCatalog", "TokenizerCatalog" },
            types.Where(t => t.Namespace == "Microsoft.ML").Select(t => t.Name).ToArray());
    }

    [TestMethod]
    public void NoTestOnlyTypesShip()
    {
        var suspicious = Library.GetTypes().Where(t => Regex.IsMatch(t.Name, "(Reference|Tests?|Fake|Mock|Stub)$") && !t.Name.StartsWith('<')).Select(t => t.FullName).ToList();
        Assert.AreEqual(0, suspicious.Count, "test-only types in the shipped assembly: " + string.Join(", ", suspicious));
    }

    [TestMethod]
    public void TheNumericsCoreRefersToNoMLNetType()
    {
        // Signatures: base types, interfaces, fields, properties, parameters and return types of every core type.
        static bool FromMlNet(Type t) => t.Assembly.GetName().Name!.StartsWith("Microsoft.ML", StringComparison.Ordinal)
            && t.Assembly != Library && !t.Assembly.GetName().Name!.StartsWith("Microsoft.ML.Tokenizers", StringComparison.Ordinal);
        static IEnumerable<Type> Expand(Type t) => t.IsGenericType ? t.GetGenericArguments().SelectMany(Expand).Prepend(t) :
            t.HasElementType ? Expand(t.GetElementType()!) : [t];
        var core = Library.GetTypes().Where(t => CoreFolders.Any(f => t.Namespace == $"Microsoft.ML.Recurrent.{f}")).ToList();
        Assert.IsTrue(core.Count > 20, "core types not found");
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        var offending = new List<string>();
        foreach (var type in core)
        {
            var used = new List<Type>();
            if (type.BaseType is { } b) used.Add(b);
            used.AddRange(type.GetInterfaces());
            used.AddRange(type.GetFields(all).Select(f => f.FieldType));
            used.AddRange(type.GetProperties(all).Select(p => p.PropertyType));
            foreach (var m in type.GetMethods(all).Cast<MethodBase>().Concat(type.GetConstructors(all)))
            {
                used.AddRange(m.GetParameters().Select(p => p.ParameterType));
                if (m is MethodInfo mi) used.Add(mi.ReturnType);
            }
            offending.AddRange(used.SelectMany(Expand).Where(FromMlNet).Select(t => $"{type.FullName} uses {t.FullName}"));
        }
        // Sources: no ML.NET namespace imported and no ML.NET type named in the core folders' code.
        string root = Path.Combine(Datasets.RepositoryRoot, "Microsoft.ML.Recurrent");
        var mlnetNames = new Regex(@"\b(using Microsoft\.ML(\.Data|\.Runtime|\.Transforms)?;|IDataView|DataViewSchema|DataViewRow|VBuffer|MLContext|IHost\b|IChannel|ModelLoadContext|ModelSaveContext)");
        foreach (var folder in CoreFolders)
            foreach (var file in Directory.GetFiles(Path.Combine(root, folder), "*.cs", SearchOption.AllDirectories))
                foreach (var (line, number) in File.ReadLines(file).Select((l, i) => (l, i + 1)))
                    if (!line.TrimStart().StartsWith("//") && mlnetNames.Match(line) is { Success: true } match)
                        offending.Add($"{Path.GetRelativePath(root, file)}:{number} names {match.Value}");
        Assert.AreEqual(0, offending.Count, string.Join("\n", offending.Distinct()));
    }
}
