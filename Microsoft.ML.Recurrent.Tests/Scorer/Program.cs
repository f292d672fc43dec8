// usage: Scorer <model.zip> <data.idv> <output.txt>
using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Recurrent.Tests.Scorer;

if (args.Length != 3)
{
    Console.Error.WriteLine("usage: Scorer <model.zip> <data.idv> <output.txt>");
    return 2;
}
var ml = new MLContext(seed: 0);
var watch = Stopwatch.StartNew();
var model = ml.Model.Load(args[0], out _);
long loadMilliseconds = watch.ElapsedMilliseconds;
var data = ml.Data.LoadFromBinary(args[1]);
File.WriteAllText(args[2], ScoreDump.Dump(model.Transform(data)) + ScoreDump.DumpGeneration(model));
Console.WriteLine($"loaded in {loadMilliseconds} ms, scored with {string.Join(", ", AppDomain.CurrentDomain.GetAssemblies().Select(a => a.GetName().Name).Where(n => n!.StartsWith("Microsoft.ML.Recurrent") || n.StartsWith("Microsoft.ML.Tokenizers")))}");
return 0;
