using System.Diagnostics;
using System.Reflection;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Microsoft.ML.Recurrent.Tests.MLNet;

/// <summary>
/// The run-time ML.NET version check (Microsoft.ML.Recurrent/Properties/MlNetVersionCheck.cs): the recorded version, the
/// comparison, and a second process that loads a model zip next to an ML.NET whose version was altered.
/// </summary>
[TestClass]
public sealed partial class MlNetVersionCheckTests
{
    public TestContext TestContext { get; set; } = null!;

    private static Assembly Library => typeof(RecurrentTransformerBase).Assembly;

    /// <summary>The pin in Directory.Packages.props, e.g. "[5.0.1]" → "5.0.1".</summary>
    private static string PinnedMlNetVersion()
    {
        string props = File.ReadAllText(Path.Combine(Datasets.RepositoryRoot, "Directory.Packages.props"));
        var match = PinPattern().Match(props);
        Assert.IsTrue(match.Success, "Directory.Packages.props pins Microsoft.ML exactly, as [x.y.z]");
        return match.Groups[1].Value;
    }

    [GeneratedRegex("""<PackageVersion\s+Include="Microsoft\.ML"\s+Version="\[([^\]]+)\]"\s*/>""")]
    private static partial Regex PinPattern();

    [TestMethod]
    public void RecordsTheMlNetVersionCompiledAgainst()
    {
        string pinned = PinnedMlNetVersion();
        var required = MlNetVersionCheck.RequiredVersions(Library).Order().ToList();
        CollectionAssert.AreEqual(new[] { ("Microsoft.ML.Core", pinned), ("Microsoft.ML.Data", pinned) }, required);
    }

    [TestMethod]
    public void ThisProcessHasTheRequiredMlNet()
    {
        foreach (var (name, version) in MlNetVersionCheck.RequiredVersions(Library))
        {
            var loaded = AppDomain.CurrentDomain.GetAssemblies().Single(a => a.GetName().Name == name);
            string found = loaded.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion;
            Assert.IsNull(MlNetVersionCheck.Compare("test", name, version, found, loaded.Location), found);
        }
        MlNetVersionCheck.Initialize(); // already ran as the module initializer; running it again must pass too
    }

    [TestMethod]
    public void SameVersionPassesWhateverTheBuildMetadata()
    {
        Assert.IsNull(MlNetVersionCheck.Compare("0.1.0", "Microsoft.ML.Core", "5.0.1", "5.0.1+a4f730ec0c9106c2c9ef9e1fa34011374115fb98", "/x/Microsoft.ML.Core.dll"));
        Assert.IsNull(MlNetVersionCheck.Compare("0.1.0", "Microsoft.ML.Core", "5.0.1", "5.0.1", ""));
        Assert.AreEqual("5.0.1", MlNetVersionCheck.WithoutBuildMetadata("5.0.1+abc"));
        Assert.AreEqual("6.0.0-preview.1", MlNetVersionCheck.WithoutBuildMetadata("6.0.0-preview.1"));
    }

    [TestMethod]
    [DataRow("5.0.2+0123abcd")]
    [DataRow("5.0.0")]
    [DataRow("6.0.0-preview.25101.1+beef")]
    [DataRow("5.0.1-dev")]
    public void AnotherVersionFailsWithWhatWasFoundWhatIsRequiredAndWhatToDo(string found)
    {
        string? message = MlNetVersionCheck.Compare("0.1.0-preview.1", "Microsoft.ML.Core", "5.0.1", found, "/app/Microsoft.ML.Core.dll");
        Assert.IsNotNull(message);
        TestContext.WriteLine(message);
        StringAssert.Contains(message, "Microsoft.ML.Recurrent 0.1.0-preview.1");
        StringAssert.Contains(message, "version 5.0.1 exactly");
        StringAssert.Contains(message, $"loaded Microsoft.ML.Core {MlNetVersionCheck.WithoutBuildMetadata(found)} from /app/Microsoft.ML.Core.dll");
        StringAssert.Contains(message, "<PackageReference Include=\"Microsoft.ML\" Version=\"5.0.1\" />");
        StringAssert.Contains(message, MlNetVersionCheck.DisableSwitch);
        Assert.IsFalse(message.Contains('+'), "build metadata is left out of the message");
    }

    /// <summary>
    /// A copy of the Scorer (a separate process that loads a model zip with only Microsoft.ML.Recurrent referenced), next
    /// to a Microsoft.ML.Core.dll whose informational version says 5.0.9: loading the zip fails with the check's message,
    /// not with MissingMethodException; with the AppContext switch set in runtimeconfig.json it runs.
    /// </summary>
    [TestMethod]
    public void AProcessWithAnotherMlNetFailsEarlyWithTheMessage()
    {
        string pinned = PinnedMlNetVersion();
        string scorer = typeof(RoundTripTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "ScorerPath").Value!;
        Assert.IsTrue(File.Exists(scorer), $"Scorer not built at {scorer}");
        string dir = Path.Combine(Path.GetTempPath(), "rnn-mlnet-version-" + Guid.NewGuid().ToString("N"));
        try
        {
            CopyDirectory(Path.GetDirectoryName(scorer)!, dir);
            string core = Path.Combine(dir, "Microsoft.ML.Core.dll");
            byte[] bytes = File.ReadAllBytes(core);
            byte[] from = Encoding.UTF8.GetBytes(pinned + "+"), to = Encoding.UTF8.GetBytes("5.0.9+");
            Assert.AreEqual(from.Length, to.Length, "the test patches a version of the same length");
            int at = bytes.AsSpan().IndexOf(from);
            Assert.IsTrue(at >= 0, "informational version not found in Microsoft.ML.Core.dll");
            to.CopyTo(bytes, at);
            File.WriteAllBytes(core, bytes);

            string fixtures = Path.Combine(AppContext.BaseDirectory, "Fixtures", "compat", "v1");
            string zip = Path.Combine(fixtures, "multiclass.zip"), data = Path.Combine(fixtures, "multiclass.input.idv");
            string scores = Path.Combine(dir, "scores.txt");
            string copiedScorer = Path.Combine(dir, Path.GetFileName(scorer));

            var (exitCode, stdout, stderr) = Run(copiedScorer, zip, data, scores);
            TestContext.WriteLine(stderr);
            Assert.AreNotEqual(0, exitCode, "the scorer ran against an altered ML.NET: " + stdout);
            StringAssert.Contains(stderr, $"requires ML.NET (the Microsoft.ML package) version {pinned} exactly, but this process loaded Microsoft.ML.Core 5.0.9 from {core}");
            Assert.IsFalse(stderr.Contains("System.MissingMethodException"), stderr);
            Assert.IsFalse(File.Exists(scores));

            // The escape hatch: the same process with the switch set runs (the binary is otherwise ML.NET 5.0.1).
            string runtimeConfig = Path.ChangeExtension(copiedScorer, ".runtimeconfig.json");
            var json = JsonNode.Parse(File.ReadAllText(runtimeConfig))!;
            json["runtimeOptions"]!["configProperties"] = new JsonObject { [MlNetVersionCheck.DisableSwitch] = true };
            File.WriteAllText(runtimeConfig, json.ToJsonString());
            (exitCode, stdout, stderr) = Run(copiedScorer, zip, data, scores);
            Assert.AreEqual(0, exitCode, stderr);
            Assert.IsTrue(File.ReadAllText(scores).Length > 0);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    private static (int ExitCode, string Stdout, string Stderr) Run(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.IsTrue(process.WaitForExit(TimeSpan.FromMinutes(2)), "the process did not finish in 2 minutes");
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (string file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }
}
