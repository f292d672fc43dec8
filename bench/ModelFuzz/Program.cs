// Runs N seeded mutants of saved model zips (see Microsoft.ML.Recurrent.Tests/Fuzz) and prints the counts by kind and
// outcome, the largest allocation, the slowest mutant, example messages and every rule violation.
// usage: dotnet run -c Release --project bench/ModelFuzz -- [--mutants 10000] [--seed 20261130]
using Microsoft.ML.Recurrent.Tests.Fuzz;

int mutants = 10_000, seed = 20261130;
for (int i = 0; i + 1 < args.Length; i += 2)
{
    if (args[i] == "--mutants") mutants = int.Parse(args[i + 1]);
    else if (args[i] == "--seed") seed = int.Parse(args[i + 1]);
    else { Console.Error.WriteLine($"unknown option {args[i]}"); return 2; }
}
var clock = System.Diagnostics.Stopwatch.StartNew();
var results = ModelFuzzTests.Run(mutants, seed, Console.Error.WriteLine, mutateSchema: true);
Console.WriteLine($"{results.Count:N0} mutants (seed {seed}) in {clock.Elapsed.TotalSeconds:F1} s, {Environment.ProcessorCount} cores");
Console.WriteLine();
Console.WriteLine("| kind | rejected | identical | different | unclean | hang |");
Console.WriteLine("|---|---|---|---|---|---|");
foreach (var kind in Enum.GetValues<MutantKind>())
{
    var ofKind = results.Where(r => r.Result.Kind == kind).ToList();
    int Count(MutantOutcome o) => ofKind.Count(r => r.Result.Outcome == o);
    Console.WriteLine($"| {kind} | {Count(MutantOutcome.Rejected)} | {Count(MutantOutcome.Identical)} | {Count(MutantOutcome.Different)} | {Count(MutantOutcome.Unclean)} | {Count(MutantOutcome.Hang)} |");
}
Console.WriteLine();
Console.WriteLine("Different predictions by source (allowed only without the integrity envelope, or for resealed and ML.NET-entry mutants):");
foreach (var group in results.Where(r => r.Result.Outcome == MutantOutcome.Different).GroupBy(r => (r.Source, r.Result.Kind)))
    Console.WriteLine($"  {group.Key.Source}, {group.Key.Kind}: {group.Count()}");
var largest = results.MaxBy(r => r.Result.AllocatedBytes);
var slowest = results.MaxBy(r => r.Result.Elapsed);
Console.WriteLine($"largest allocation {largest.Result.AllocatedBytes / 1e6:F1} MB (#{largest.Result.Index}, {largest.Result.Kind}); slowest {slowest.Result.Elapsed.TotalMilliseconds:F0} ms (#{slowest.Result.Index})");
Console.WriteLine();
Console.WriteLine("Example messages:");
foreach (var group in results.Where(r => r.Result.Outcome == MutantOutcome.Rejected && r.Result.Message is not null)
             .GroupBy(r => r.Result.Message!.Split(':')[0] + (r.Result.Message.Contains("SHA-256") ? " SHA" : "")).Take(8))
{
    var r = group.First();
    Console.WriteLine($"  [{group.Count()}] #{r.Result.Index} {r.Source}, {r.Result.Kind} ({r.Result.Change}): {r.Result.Message!.Split('\n')[0]}");
}
Console.WriteLine();
Console.WriteLine("What a caller catches (outermost → innermost exception), rejected mutants:");
foreach (var group in results.Where(r => r.Result.Outcome == MutantOutcome.Rejected).GroupBy(r => r.Result.Chain).OrderByDescending(g => g.Count()))
    Console.WriteLine($"  {group.Count(),5}  {group.Key}");
var findings = results.Where(r => ModelFuzzTests.ForeignFinding(r.Result) is not null).ToList();
Console.WriteLine();
Console.WriteLine($"Findings in ML.NET's own entries (not judged): {findings.Count}");
foreach (var r in findings.Take(10))
    Console.WriteLine($"  #{r.Result.Index} {r.Source} {r.Result.Entry}: {r.Result.Change}: {ModelFuzzTests.ForeignFinding(r.Result)}: {r.Result.Message?.Split('\n')[0]}");
var violations = results.Where(r => ModelFuzzTests.Violation(r) is not null).ToList();
Console.WriteLine();
Console.WriteLine($"Rule violations: {violations.Count}");
foreach (var r in violations.Take(20))
    Console.WriteLine($"  #{r.Result.Index} {r.Source} {r.Result.Kind} {r.Result.Entry}: {r.Result.Change}: {ModelFuzzTests.Violation(r)}: {r.Result.Message}");
return violations.Count == 0 ? 0 : 1;
