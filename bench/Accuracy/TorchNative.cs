using static TorchSharp.torch;

namespace Accuracy;

/// <summary>Loads libtorch through TorchSharp-cpu (shared with bench/Tagging by a link).</summary>
internal static class TorchNative
{
    private static bool _loaded;

    /// <summary>
    /// Patches libLibTorchSharp.so's GLIBCXX requirement where needed (build/TorchParity/ElfVersionPatcher.cs), then
    /// sets float32 and one inter-op thread. Must run before anything touches TorchSharp.torch: its static
    /// constructor loads the native library.
    /// </summary>
    public static void Load()
    {
        // Once per process: libtorch aborts (uncatchably) when the inter-op threads are set after parallel work.
        if (_loaded) return;
        _loaded = true;
        string native = Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so");
        if (OperatingSystem.IsLinux() && File.Exists(native))
            foreach (string note in TorchParity.ElfVersionPatcher.PatchIfNeeded(native))
                Console.Error.WriteLine("elf-patch: " + note);
        set_default_dtype(float32);
        try { set_num_interop_threads(1); } catch (Exception) { /* only settable before first parallel work */ }
    }
}
