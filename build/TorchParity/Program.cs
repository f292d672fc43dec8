using System.Diagnostics;
using TorchSharp;

namespace TorchParity;

/// <summary>
/// Writes PyTorch (libtorch via TorchSharp) reference outputs and gradients as JSON fixtures.
/// Usage: dotnet run -c Release --project build/TorchParity -- [output-dir]
/// (default output dir: Microsoft.ML.Recurrent.Tests/Fixtures/torch, relative to the current directory), or
/// <c>-- --safetensors [output-dir]</c> for the safetensors fixtures (default Microsoft.ML.Recurrent.Tests/Fixtures/safetensors).
/// </summary>
internal static class Program
{
    public const string GeneratorName = "TorchSharp-cpu 0.107.0 / libtorch 2.10.0";

    private static int Main(string[] args)
    {
        bool safetensors = args.Length > 0 && args[0] == "--safetensors";
        if (safetensors) args = args[1..];
        if (args.Length > 1 || (args.Length == 1 && args[0] is "-h" or "--help"))
        {
            Console.Error.WriteLine("usage: TorchParity [output-dir]                  (default: Microsoft.ML.Recurrent.Tests/Fixtures/torch)");
            Console.Error.WriteLine("       TorchParity --safetensors [output-dir]    (default: Microsoft.ML.Recurrent.Tests/Fixtures/safetensors)");
            return 2;
        }

        string outDir = Path.GetFullPath(args.Length == 1 ? args[0] : Path.Combine("Microsoft.ML.Recurrent.Tests", "Fixtures", safetensors ? "safetensors" : "torch"));
        var sw = Stopwatch.StartNew();

        // Must run before anything touches TorchSharp.torch (its static constructor loads libLibTorchSharp.so).
        string native = Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so");
        if (OperatingSystem.IsLinux() && File.Exists(native))
        {
            foreach (string note in ElfVersionPatcher.PatchIfNeeded(native))
            {
                Console.WriteLine("elf-patch: " + note);
            }
        }

        Console.WriteLine($"libtorch {torch.__version__}; writing fixtures to {outDir}");
        if (!torch.__version__.StartsWith("2.10.0", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"expected libtorch 2.10.0, got {torch.__version__}");
        }

        torch.set_num_threads(1);
        torch.set_default_dtype(torch.float32);
        if (safetensors)
        {
            return WriteSafetensorsFixtures(outDir, sw);
        }

        var fixtures = new List<(string File, Func<JObj> Make)>();
        long seed = 1000;
        foreach (string cell in new[] { "lstm", "gru", "rnn_tanh" })
        {
            foreach (bool bi in new[] { false, true })
            {
                for (int layers = 1; layers <= 3; layers++)
                {
                    long s = seed++;
                    string c = cell;
                    bool b = bi;
                    int l = layers;
                    fixtures.Add(($"{cell}_{(bi ? "bi" : "uni")}_l{layers}.json", () => Recurrent.Fixture(c, b, l, s)));
                }
            }
        }

        fixtures.Add(("rnn_relu_uni_l2.json", () => Recurrent.Fixture("rnn_relu", false, 2, 1100)));

        // Hidden sizes that run the fused cell kernels' whole vectors and their tails at every width (16, 8 and 4
        // lanes): H = 16 (whole vectors only), 37 (tails of 5, 5 and 1) and 64. Each cell at each size, uni and bi,
        // one 2-layer stack per cell; I = 3 and five sequences keep every file well under 1 MB.
        int[] wideLengths = [4, 1, 7, 2, 5];
        (string Cell, bool Bi, int Layers, int H)[] wide =
        [
            ("lstm", true, 2, 16), ("lstm", false, 1, 37), ("lstm", false, 1, 64),
            ("gru", false, 2, 16), ("gru", true, 1, 37), ("gru", false, 1, 64),
            ("rnn_tanh", true, 1, 16), ("rnn_tanh", false, 2, 37), ("rnn_tanh", true, 1, 64),
        ];
        seed = 1200;
        foreach (var (cell, bi, layers, h) in wide)
        {
            long s = seed++;
            fixtures.Add(($"{cell}_{(bi ? "bi" : "uni")}_l{layers}_h{h}.json", () => Recurrent.Fixture(cell, bi, layers, s, 3, h, wideLengths)));
        }

        fixtures.Add(("model_bilstm_classifier.json", () => Models.BiLstmClassifier(2000)));
        fixtures.Add(("model_bigru_meanmax.json", () => Models.BiGruMeanMax(2001)));
        fixtures.Add(("optim_adam.json", () => Optim.Fixture("adam", 3000)));
        fixtures.Add(("optim_adamw.json", () => Optim.Fixture("adamw", 3001)));
        fixtures.Add(("optim_sgd_momentum.json", () => Optim.Fixture("sgd_momentum", 3002)));
        fixtures.Add(("clip_grad_norm.json", () => Optim.ClipGradNorm(3100)));
        fixtures.Add(("crf.json", () => Crf.Fixture(bio: false, 4000)));
        fixtures.Add(("crf_bio.json", () => Crf.Fixture(bio: true, 4001)));

        // One stateful truncated-BPTT language-model step (chunk 1's final states, detached, start chunk 2).
        fixtures.Add(("lm_lstm_tbptt.json", () => LanguageModel.Fixture("lstm", tied: false, vocab: 7, embed: 4, hidden: 5, 5000)));
        fixtures.Add(("lm_lstm_tied.json", () => LanguageModel.Fixture("lstm", tied: true, vocab: 9, embed: 6, hidden: 6, 5001)));
        fixtures.Add(("lm_gru_tbptt.json", () => LanguageModel.Fixture("gru", tied: false, vocab: 7, embed: 4, hidden: 5, 5002)));

        // Build everything (and pass every check) before writing anything.
        var outputs = new List<(string File, string Text)>();
        foreach (var (file, make) in fixtures)
        {
            using var scope = torch.NewDisposeScope();
            outputs.Add((file, Json.Serialize(make())));
        }

        Directory.CreateDirectory(outDir);
        long total = 0;
        foreach (var (file, text) in outputs)
        {
            string path = Path.Combine(outDir, file);
            File.WriteAllText(path, text);
            total += text.Length;
            Console.WriteLine($"  wrote {file,-30} {text.Length,8:N0} bytes");
        }

        var stale = Directory.GetFiles(outDir, "*.json").Select(Path.GetFileName).Except(outputs.Select(o => o.File)).ToList();
        foreach (string? f in stale)
        {
            Console.WriteLine($"  note: {f} in the output directory was not produced by this run");
        }

        Console.WriteLine($"{outputs.Count} fixtures, {total:N0} bytes, {Check.Count} sanity checks passed "
            + $"(max |packed - reference| {Check.MaxDiffSeen:G3}) in {sw.Elapsed.TotalSeconds:F1}s");
        return 0;
    }

    /// <summary>
    /// The safetensors fixtures (see <see cref="Safetensors"/>): the .safetensors files of both directions and one JSON
    /// record per case. The files are written to a temporary directory and moved into place only when every case passed.
    /// </summary>
    private static int WriteSafetensorsFixtures(string outDir, Stopwatch sw)
    {
        string staging = Path.Combine(Path.GetTempPath(), "torchparity-safetensors-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(staging);
        try
        {
            long seed = 6000;
            foreach (var (tag, cell, bi, layers, pooling) in Safetensors.Cases())
            {
                using var scope = torch.NewDisposeScope();
                File.WriteAllText(Path.Combine(staging, $"safetensors_{tag}.json"), Json.Serialize(Safetensors.Fixture(tag, cell, bi, layers, pooling, seed++, staging)));
            }

            Directory.CreateDirectory(outDir);
            long total = 0;
            foreach (string file in Directory.GetFiles(staging).Order(StringComparer.Ordinal))
            {
                string target = Path.Combine(outDir, Path.GetFileName(file));
                File.Copy(file, target, overwrite: true);
                total += new FileInfo(target).Length;
                Console.WriteLine($"  wrote {Path.GetFileName(file),-36} {new FileInfo(target).Length,8:N0} bytes");
            }

            Console.WriteLine($"{Directory.GetFiles(staging).Length} files, {total:N0} bytes, {Check.Count} checks passed; max |ours - libtorch| on logits: "
                + $"libtorch's file read by us {Safetensors.MaxDiffTorchToOurs:G3}, our file read by libtorch {Safetensors.MaxDiffOursToTorch:G3}; {sw.Elapsed.TotalSeconds:F1}s");
            return 0;
        }
        finally
        {
            Directory.Delete(staging, recursive: true);
        }
    }
}
