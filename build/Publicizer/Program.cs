// Publicizer: makes reference-only copies of assemblies in which non-public types and members are visible, so the
// library can compile against ML.NET's internal component model (ModelSaveContext, LoadableClass, IRowMapper, …).
// The copies are marked with [ReferenceAssembly] so the runtime refuses to execute them; at run time the real
// assemblies are used, and [IgnoresAccessChecksTo] in the library lets CoreCLR skip the access checks.
//
// usage: Publicizer <output directory> <assembly.dll>...
// Rules: internal and protected internal → public; private protected → protected; private stays private;
// compiler-generated types and members are left alone. The output is rewritten only when an input is newer.
using Mono.Cecil;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: Publicizer <output directory> <assembly.dll>...");
    return 2;
}

string outputDirectory = args[0];
Directory.CreateDirectory(outputDirectory);
foreach (string input in args.Skip(1))
{
    string output = Path.Combine(outputDirectory, Path.GetFileName(input));
    if (File.Exists(output) && File.GetLastWriteTimeUtc(output) >= File.GetLastWriteTimeUtc(input))
        continue;
    var resolver = new DefaultAssemblyResolver();
    resolver.AddSearchDirectory(Path.GetDirectoryName(Path.GetFullPath(input))!);
    using var assembly = AssemblyDefinition.ReadAssembly(input, new ReaderParameters { AssemblyResolver = resolver, ReadWrite = false, InMemory = true });
    int changed = 0;
    foreach (var module in assembly.Modules)
        foreach (var type in module.GetTypes())
            changed += Publicize(type);
    MarkAsReferenceAssembly(assembly);
    string temporary = output + ".tmp";
    assembly.Write(temporary);
    File.Move(temporary, output, overwrite: true);
    Console.WriteLine($"publicized {Path.GetFileName(input)}: {changed} types and members opened");
}
return 0;

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
