using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.Loader;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// Refuses to run against an ML.NET other than the one the library was compiled against. The library binds to ML.NET's
/// internals (docs/design/persistence.md), and ML.NET keeps its assembly version at 1.0.0.0 across releases, so another
/// ML.NET loads without complaint and fails much later with <see cref="MissingMethodException"/>,
/// <see cref="MissingFieldException"/> or <see cref="TypeLoadException"/> in the middle of training or loading.
/// </summary>
/// <remarks>
/// The check is a module initializer: the runtime runs it once per process, before any code of this assembly runs —
/// the catalog methods, the trainers, the loaders that <c>Model.Load</c> calls, the mappers behind
/// <c>PredictionEngine</c>. It only reads attributes; it uses no ML.NET API, so it cannot itself trip over a changed one.
/// The versions compiled against are recorded at build time from the NuGet packages that supplied the references
/// (<c>[assembly: AssemblyMetadata("MlNetCompiledAgainst:Microsoft.ML.Core", "5.0.1")]</c>, written by the project file)
/// and compared with the informational version of the assemblies the runtime binds for this assembly, build metadata
/// (<c>+commit</c>) ignored.
/// Where the runtime wraps an exception thrown here, it is a <see cref="TypeInitializationException"/> for
/// <c>&lt;Module&gt;</c> whose inner exception is the <see cref="InvalidOperationException"/> with the explanation.
/// </remarks>
internal static class MlNetVersionCheck
{
    /// <summary>AppContext switch that turns the check off (for trying another ML.NET at one's own risk).</summary>
    internal const string DisableSwitch = "Microsoft.ML.Recurrent.DisableMlNetVersionCheck";

    /// <summary>Key prefix of the assembly metadata that records, per ML.NET assembly, the version compiled against.</summary>
    internal const string MetadataPrefix = "MlNetCompiledAgainst:";

    [ModuleInitializer]
    [SuppressMessage("Usage", "CA2255:The 'ModuleInitializer' attribute should not be used in libraries",
        Justification = "Deliberate: the check must run before any code of the library, whichever entry point is used first.")]
    internal static void Initialize()
    {
        if (AppContext.TryGetSwitch(DisableSwitch, out bool disabled) && disabled)
            return;
        var self = typeof(MlNetVersionCheck).Assembly;
        var context = AssemblyLoadContext.GetLoadContext(self) ?? AssemblyLoadContext.Default;
        string library = LibraryVersion(self);
        foreach (var (assemblyName, required) in RequiredVersions(self))
        {
            string found, location;
            try
            {
                var loaded = context.LoadFromAssemblyName(new AssemblyName(assemblyName));
                found = InformationalVersion(loaded) ?? "an unknown version (no AssemblyInformationalVersion)";
                location = loaded.Location;
            }
            catch (Exception e) when (e is FileNotFoundException or FileLoadException or BadImageFormatException)
            {
                throw new InvalidOperationException(
                    $"Microsoft.ML.Recurrent {library} needs {assemblyName} from the Microsoft.ML package {required}, but it could not be loaded: {e.Message} " +
                    $"Reference Microsoft.ML {required} (<PackageReference Include=\"Microsoft.ML\" Version=\"{required}\" />).", e);
            }
            string? error = Compare(library, assemblyName, required, found, location);
            if (error is not null)
                throw new InvalidOperationException(error);
        }
    }

    /// <summary>The ML.NET assemblies and versions recorded at build time.</summary>
    internal static IReadOnlyList<(string Assembly, string Version)> RequiredVersions(Assembly library) =>
        library.GetCustomAttributes<AssemblyMetadataAttribute>()
            .Where(a => a.Key.StartsWith(MetadataPrefix, StringComparison.Ordinal) && !string.IsNullOrEmpty(a.Value))
            .Select(a => (a.Key[MetadataPrefix.Length..], a.Value!))
            .ToList();

    /// <summary>
    /// Null when <paramref name="found"/> is the <paramref name="required"/> version (build metadata after '+' ignored),
    /// otherwise the message to fail with: what was found and where, what is required, and what to do.
    /// </summary>
    internal static string? Compare(string library, string assemblyName, string required, string found, string location)
    {
        if (string.Equals(WithoutBuildMetadata(found), WithoutBuildMetadata(required), StringComparison.OrdinalIgnoreCase))
            return null;
        string where = string.IsNullOrEmpty(location) ? "" : $" from {location}";
        return
            $"Microsoft.ML.Recurrent {library} requires ML.NET (the Microsoft.ML package) version {required} exactly, but this process " +
            $"loaded {assemblyName} {WithoutBuildMetadata(found)}{where}. The library is compiled against ML.NET {required} and uses its " +
            $"internal APIs, which change between ML.NET releases, so it would fail later with MissingMethodException or similar. " +
            $"Reference Microsoft.ML {required} in the project that uses Microsoft.ML.Recurrent " +
            $"(<PackageReference Include=\"Microsoft.ML\" Version=\"{required}\" />; NuGet warns NU1608 when a project resolves another version), " +
            $"or use a Microsoft.ML.Recurrent release built for ML.NET {WithoutBuildMetadata(found)}. " +
            $"To run anyway at your own risk, set the AppContext switch {DisableSwitch} to true.";
    }

    internal static string WithoutBuildMetadata(string version)
    {
        int plus = version.IndexOf('+');
        return (plus < 0 ? version : version[..plus]).Trim();
    }

    private static string? InformationalVersion(Assembly assembly) =>
        assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;

    private static string LibraryVersion(Assembly library) =>
        WithoutBuildMetadata(InformationalVersion(library) ?? library.GetName().Version?.ToString() ?? "?");
}
