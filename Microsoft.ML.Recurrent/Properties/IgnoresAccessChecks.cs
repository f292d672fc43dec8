// ML.NET keeps its component model internal (ModelSaveContext, ModelLoadContext, VersionInfo, LoadableClass,
// IRowMapper, …). We compile against publicized reference copies (build/Publicizer) and ask CoreCLR to skip access
// checks into the real assemblies at run time. See docs/design/persistence.md.
[assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo("Microsoft.ML.Core")]
[assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo("Microsoft.ML.Data")]

namespace System.Runtime.CompilerServices
{
    /// <summary>
    /// Recognized by CoreCLR: the declaring assembly may access non-public types and members of the named assembly.
    /// Not part of the public framework surface, so every assembly that uses it declares it itself.
    /// </summary>
    [AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
    internal sealed class IgnoresAccessChecksToAttribute : Attribute
    {
        /// <summary>Names the assembly whose access checks are skipped.</summary>
        public IgnoresAccessChecksToAttribute(string assemblyName) => AssemblyName = assemblyName;

        /// <summary>The simple name of that assembly.</summary>
        public string AssemblyName { get; }
    }
}
