// Publicizer: makes reference-only copies of assemblies in which non-public types and members are visible, so the
// library can compile against ML.NET's internal component model (ModelSaveContext, LoadableClass, IRowMapper, …).
// The copies are marked with [ReferenceAssembly] so the runtime refuses to execute them; at run time the real
// assemblies are used, and [IgnoresAccessChecksTo] in the library lets CoreCLR skip the access checks.
//
// usage: Publicizer <output directory> <assembly.dll>...
// Rules: internal and protected internal → public; private protected → protected; private stays private;
// compiler-generated types and members are left alone.
//
// Up to date: next to each copy, "<name>.dll.stamp" records the SHA-256 and MVID of the input, the MVID of this tool
// and the SHA-256 of the copy. A copy is rewritten when any of them differs — content, not timestamps, since files
// that NuGet extracts keep the dates the package was built with. Safe to run concurrently on the same output
// directory (two builds sharing obj/): each process writes to a temporary file of its own and renames it into place,
// which replaces the file atomically, and the stamp is written the same way after the copy.
using System.Security.Cryptography;
using Mono.Cecil;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: Publicizer <output directory> <assembly.dll>...");
    return 2;
}

string outputDirectory = args[0];
Directory.CreateDirectory(outputDirectory);
string toolIdentity = typeof(Program).Assembly.ManifestModule.ModuleVersionId.ToString();
foreach (string input in args.Skip(1))
{
    string output = Path.Combine(outputDirectory, Path.GetFileName(input));
    string stampPath = output + ".stamp";
    string inputStamp = $"tool-mvid {toolIdentity}\ninput-sha256 {Sha256(input)}\ninput-mvid {ReadMvid(input)}\n";
    if (IsUpToDate(output, stampPath, inputStamp))
        continue;

    var resolver = new DefaultAssemblyResolver();
    resolver.AddSearchDirectory(Path.GetDirectoryName(Path.GetFullPath(input))!);
    using var assembly = AssemblyDefinition.ReadAssembly(input, new ReaderParameters { AssemblyResolver = resolver, ReadWrite = false, InMemory = true });
    int changed = 0;
    foreach (var module in assembly.Modules)
        foreach (var type in module.GetTypes())
            changed += Publicize(type);
    MarkAsReferenceAssembly(assembly);

    string temporary = TemporaryName(output);
    try
    {
        assembly.Write(temporary);
        string stamp = inputStamp + $"output-sha256 {Sha256(temporary)}\n";
        File.Move(temporary, output, overwrite: true);
        WriteAtomically(stampPath, stamp);
    }
    finally
    {
        File.Delete(temporary); // no-op once moved
    }
    Console.WriteLine($"publicized {Path.GetFileName(input)}: {changed} types and members opened");
}
return 0;

// A name no other process uses: several builds may publicize into the same obj/ folder at once.
static string TemporaryName(string path) => $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";

static void WriteAtomically(string path, string text)
{
    string temporary = TemporaryName(path);
    try
    {
        File.WriteAllText(temporary, text);
        File.Move(temporary, path, overwrite: true);
    }
    finally
    {
        File.Delete(temporary);
    }
}

static bool IsUpToDate(string output, string stampPath, string inputStamp)
{
    try
    {
        if (!File.Exists(output) || !File.Exists(stampPath))
            return false;
        string stamp = File.ReadAllText(stampPath);
        return stamp == inputStamp + $"output-sha256 {Sha256(output)}\n";
    }
    catch (IOException)
    {
        return false; // being replaced by another process: publicize again, the result is the same
    }
}

static string Sha256(string path)
{
    using var stream = File.OpenRead(path);
    return Convert.ToHexStringLower(SHA256.HashData(stream));
}

static string ReadMvid(string path)
{
    using var module = ModuleDefinition.ReadModule(path);
    return module.Mvid.ToString();
}

static bool IsCompilerGenerated(ICustomAttributeProvider provider, string name) =>
    name.Contains('<') || provider.CustomAttributes.Any(a => a.AttributeType.FullName == "System.Runtime.CompilerServices.CompilerGeneratedAttribute");

static int Publicize(TypeDefinition type)
{
    int changed = 0;
    if (!IsCompilerGenerated(type, type.Name) && type.Name != "<Module>")
    {
        if (type.IsNested)
        {
            if (!type.IsNestedPublic && !type.IsNestedPrivate)
            {
                // NestedAssembly, NestedFamORAssem → public; NestedFamANDAssem → protected (NestedFamily).
                var newVisibility = type.IsNestedFamilyAndAssembly ? TypeAttributes.NestedFamily : TypeAttributes.NestedPublic;
                if (type.IsNestedFamily) newVisibility = TypeAttributes.NestedFamily;
                if ((type.Attributes & TypeAttributes.VisibilityMask) != newVisibility)
                {
                    type.Attributes = (type.Attributes & ~TypeAttributes.VisibilityMask) | newVisibility;
                    changed++;
                }
            }
        }
        else if (!type.IsPublic)
        {
            type.Attributes = (type.Attributes & ~TypeAttributes.VisibilityMask) | TypeAttributes.Public;
            changed++;
        }
    }
    foreach (var method in type.Methods)
    {
        if (IsCompilerGenerated(method, method.Name)) continue;
        int access = (int)(method.Attributes & MethodAttributes.MemberAccessMask), opened = OpenAccess(access);
        if (opened == access) continue;
        method.Attributes = (method.Attributes & ~MethodAttributes.MemberAccessMask) | (MethodAttributes)opened;
        changed++;
    }
    foreach (var field in type.Fields)
    {
        if (IsCompilerGenerated(field, field.Name)) continue;
        int access = (int)(field.Attributes & FieldAttributes.FieldAccessMask), opened = OpenAccess(access);
        if (opened == access) continue;
        field.Attributes = (field.Attributes & ~FieldAttributes.FieldAccessMask) | (FieldAttributes)opened;
        changed++;
    }
    return changed;
}

static void MarkAsReferenceAssembly(AssemblyDefinition assembly)
{
    const string ns = "System.Runtime.CompilerServices", name = "ReferenceAssemblyAttribute";
    if (assembly.CustomAttributes.Any(a => a.AttributeType.Namespace == ns && a.AttributeType.Name == name))
        return;
    var module = assembly.MainModule;
    var attributeType = new TypeReference(ns, name, module, module.TypeSystem.CoreLibrary);
    var constructor = new MethodReference(".ctor", module.TypeSystem.Void, attributeType) { HasThis = true };
    assembly.CustomAttributes.Add(new CustomAttribute(constructor));
}

// Methods and fields share ECMA-335's member-access encoding (FamANDAssem 2, Assembly 3, Family 4, FamORAssem 5,
// Public 6): internal and protected internal → public, private protected → protected, the rest unchanged.
static int OpenAccess(int access) => access switch
{
    3 or 5 => 6,
    2 => 4,
    _ => access,
};
