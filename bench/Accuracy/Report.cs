using System.Globalization;

namespace Accuracy;

/// <summary>Markdown tables from the JSON lines (every run, in file order within each data set).</summary>
internal static class Report
{
    public static void Print(List<RunResult> runs)
    {
        Console.WriteLine("| data set | model | limit | final acc % | best acc % (epoch) | per-epoch test acc % | s/epoch (incl. test eval) | train-only s/epoch | tokens/s | train s | peak MiB | load start → end | commit |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in runs.Where(r => r.Model != "defaults").OrderBy(r => Order(r.Dataset)).ThenBy(r => r.Limit ?? int.MaxValue).ThenBy(r => r.Model))
        {
            string perEpoch = string.Join(", ", r.Epochs.Select(e => F(e.TestAccuracy)));
            string seconds = string.Join(", ", r.Epochs.Select(e => e.Seconds.ToString("F1", CultureInfo.InvariantCulture)));
            string trainOnly = r.Epochs.All(e => double.IsNaN(e.TrainSeconds)) ? "" : string.Join(", ", r.Epochs.Select(e => e.TrainSeconds.ToString("F1", CultureInfo.InvariantCulture)));
            string tps = r.Epochs.Count == 0 ? "" : r.Epochs.Average(e => e.TokensPerSecond).ToString("F0", CultureInfo.InvariantCulture);
            Console.WriteLine($"| {r.Dataset} | {r.Model} | {r.Limit?.ToString() ?? "full"} | {F(r.FinalAccuracy)} | {(double.IsNaN(r.BestAccuracy) ? "" : $"{F(r.BestAccuracy)} ({r.BestEpoch})")} | {perEpoch} | {seconds} | {trainOnly} | {tps} | {r.TrainSeconds:F0} | {r.PeakMemoryMiB:F0} | {r.LoadStart} → {r.LoadEnd} | {r.Commit} |");
        }
        Console.WriteLine();
        Console.WriteLine("| config | agnews % | sst2 % | imdb % | epochs run (agnews/sst2/imdb) | train s (agnews/sst2/imdb) | tokens/s (agnews/sst2/imdb) | peak MiB (agnews/sst2/imdb) |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        // Every run of a config is listed (repeats separated by " / "); a training-row limit is shown as "(10k)".
        var defaults = runs.Where(r => r.Model == "defaults").ToList();
        foreach (var g in defaults.GroupBy(r => r.Config))
        {
            IEnumerable<RunResult> Of(string d) => g.Where(r => r.Dataset == d);
            string Lim(RunResult r) => r.Limit is int n ? $" ({n / 1000}k)" : "";
            string A(string d) => string.Join(" / ", Of(d).Select(r => F(r.FinalAccuracy) + Lim(r)));
            string E(string d) => Of(d).LastOrDefault() is { } r ? r.Epochs.Count.ToString(CultureInfo.InvariantCulture) : "-";
            string S(string d) => Of(d).LastOrDefault() is { } r ? r.TrainSeconds.ToString("F0", CultureInfo.InvariantCulture) : "-";
            string T(string d) => Of(d).LastOrDefault() is { Epochs.Count: > 0 } r ? r.Epochs.Average(e => e.TokensPerSecond).ToString("F0", CultureInfo.InvariantCulture) : "-";
            string M(string d) => Of(d).LastOrDefault() is { } r ? r.PeakMemoryMiB.ToString("F0", CultureInfo.InvariantCulture) : "-";
            Console.WriteLine($"| `{g.Key}` | {A("agnews")} | {A("sst2")} | {A("imdb")} | {E("agnews")}/{E("sst2")}/{E("imdb")} | {S("agnews")}/{S("sst2")}/{S("imdb")} | {T("agnews")}/{T("sst2")}/{T("imdb")} | {M("agnews")}/{M("sst2")}/{M("imdb")} |");
        }
    }

    private static int Order(string d) => d switch { "agnews" => 0, "sst2" => 1, _ => 2 };
    private static string F(double v) => double.IsNaN(v) ? "–" : v.ToString("F2", CultureInfo.InvariantCulture);
}
