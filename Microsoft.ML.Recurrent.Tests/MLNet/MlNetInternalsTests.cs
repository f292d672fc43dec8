using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace Microsoft.ML.Recurrent.Tests.MLNet;

/// <summary>
/// The library binds to non-public ML.NET members (see docs/design/persistence.md). This test lists every such type,
/// member and override found in the compiled library and compares the list with
/// <c>docs/design/mlnet-internals.txt</c>, so that any change to that surface — above all an ML.NET upgrade — is a
/// deliberate, reviewed act: regenerate the file (the test prints the new list) and read what changed.
/// </summary>
[TestClass]
public sealed class MlNetInternalsTests
{
    private static readonly string[] MlNetAssemblies = ["Microsoft.ML.Core", "Microsoft.ML.Data"];

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void NonPublicMlNetSurfaceIsTheDocumentedOne()
    {
        var library = typeof(RecurrentTransformerBase).Assembly;
        var actual = Collect(library).Order(StringComparer.Ordinal).ToList();
        string listPath = Path.Combine(Datasets.RepositoryRoot, "docs", "design", "mlnet-internals.txt");
        var documented = File.Exists(listPath)
            ? File.ReadAllLines(listPath).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList()
            : [];
        TestContext.WriteLine(string.Join("\n", actual));
        var added = actual.Except(documented).ToList();
        var removed = documented.Except(actual).ToList();
        Assert.IsTrue(added.Count == 0 && removed.Count == 0,
            $"The non-public ML.NET surface used by the library changed. Review it and update {listPath}.\n" +
            $"New:\n  {string.Join("\n  ", added)}\nNo longer used:\n  {string.Join("\n  ", removed)}");
        Assert.IsTrue(actual.Count > 0, "the library is expected to use ML.NET's internal persistence API");
    }

    private static IEnumerable<string> Collect(Assembly library)
    {
        var found = new HashSet<string>(StringComparer.Ordinal);
        var assemblies = MlNetAssemblies.ToDictionary(n => n, n => Assembly.Load(n));
        using var stream = File.OpenRead(library.Location);
        using var pe = new PEReader(stream);
        var md = pe.GetMetadataReader();

        string? ScopeOf(EntityHandle handle)
        {
            if (handle.Kind == HandleKind.TypeReference)
            {
                var tr = md.GetTypeReference((TypeReferenceHandle)handle);
                if (tr.ResolutionScope.Kind == HandleKind.AssemblyReference)
                {
                    string name = md.GetString(md.GetAssemblyReference((AssemblyReferenceHandle)tr.ResolutionScope).Name);
                    return assemblies.ContainsKey(name) ? name : null;
                }
                if (tr.ResolutionScope.Kind == HandleKind.TypeReference)
                    return ScopeOf((TypeReferenceHandle)tr.ResolutionScope);
            }
            return null;
        }

        string FullName(TypeReferenceHandle handle)
        {
            var tr = md.GetTypeReference(handle);
            string name = md.GetString(tr.Name);
            if (tr.ResolutionScope.Kind == HandleKind.TypeReference)
                return FullName((TypeReferenceHandle)tr.ResolutionScope) + "+" + name;
            string ns = md.GetString(tr.Namespace);
            return ns.Length == 0 ? name : ns + "." + name;
        }

        Type? Resolve(EntityHandle handle)
        {
            if (handle.Kind == HandleKind.TypeSpecification)
            {
                // Generic instantiation: ELEMENT_TYPE_GENERICINST, CLASS|VALUETYPE, then the generic type's handle.
                var blob = md.GetBlobReader(md.GetTypeSpecification((TypeSpecificationHandle)handle).Signature);
                if (blob.ReadByte() != 0x15) return null;
                blob.ReadByte();
                handle = blob.ReadTypeHandle();
            }
            if (handle.Kind != HandleKind.TypeReference) return null;
            string? scope = ScopeOf(handle);
            return scope is null ? null : assemblies[scope].GetType(FullName((TypeReferenceHandle)handle), throwOnError: false);
        }

        foreach (var handle in md.TypeReferences)
        {
            var type = Resolve(handle);
            if (type is not null && !type.IsVisible)
                found.Add($"{type.Assembly.GetName().Name}: type {type.FullName}");
        }

        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        foreach (var handle in md.MemberReferences)
        {
            var member = md.GetMemberReference(handle);
            var type = Resolve(member.Parent);
            if (type is null) continue;
            string name = md.GetString(member.Name);
            var blob = md.GetBlobReader(member.Signature);
            var header = blob.ReadSignatureHeader();
            bool isField = header.Kind == SignatureKind.Field;
            int parameters = -1;
            if (!isField)
            {
                if (header.IsGeneric) blob.ReadCompressedInteger();
                parameters = blob.ReadCompressedInteger();
            }
            var candidates = isField
                ? type.GetFields(all).Where(f => f.Name == name).Select(f => (Public: f.IsPublic || f.IsFamily || f.IsFamilyOrAssembly, Kind: "field")).ToList()
                : type.GetMembers(all).OfType<MethodBase>().Where(m => m.Name == name && m.GetParameters().Length == parameters)
                    .Select(m => (Public: m.IsPublic || m.IsFamily || m.IsFamilyOrAssembly, Kind: "method")).ToList();
            if (candidates.Count > 0 && candidates.All(c => !c.Public))
                found.Add($"{type.Assembly.GetName().Name}: {candidates[0].Kind} {type.FullName}::{name}{(isField ? "" : $"/{parameters}")}");
            else if (candidates.Count > 0 && !type.IsVisible)
                continue; // the type itself is already listed
        }

        // Overrides of members that outside code may not override (internal or private protected in ML.NET).
        foreach (var type in library.GetTypes())
            foreach (var method in type.GetMethods(all))
            {
                var root = method.GetBaseDefinition();
                if (root == method || !assemblies.ContainsKey(root.DeclaringType!.Assembly.GetName().Name!)) continue;
                if (root.IsAssembly || root.IsFamilyAndAssembly || root.IsPrivate)
                    found.Add($"{root.DeclaringType.Assembly.GetName().Name}: override {root.DeclaringType.FullName}::{root.Name}");
            }
        return found;
    }
}
