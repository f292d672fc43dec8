namespace Microsoft.ML.Recurrent.Tests;

/// <summary>Finds the shared data sets (<c>../shared/datasets</c> next to the repository).</summary>
internal static class Datasets
{
    /// <summary>The repository root (the folder with Recurrent.sln).</summary>
    public static string RepositoryRoot { get; } = FindRoot();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Recurrent.sln")))
                return dir.FullName;
        throw new InvalidOperationException("Cannot find the repository root (Recurrent.sln) above " + AppContext.BaseDirectory);
    }

    /// <summary>Path of a file under ../shared/datasets, or Assert.Inconclusive (the test is skipped) with a clear message.</summary>
    public static string Require(string relativePath)
    {
        string path = Path.GetFullPath(Path.Combine(RepositoryRoot, "..", "shared", "datasets", relativePath));
        if (!File.Exists(path))
            Assert.Inconclusive($"Data set file {path} is absent; this test needs ../shared/datasets (see its README).");
        return path;
    }
}
