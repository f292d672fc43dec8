// usage: Scorer <model.zip> <data.idv> <output.txt>
using Microsoft.ML;
using Microsoft.ML.Recurrent.Tests.Scorer;

if (args.Length != 3)
{
    Console.Error.WriteLine("usage: Scorer <model.zip> <data.idv> <output.txt>");
    return 2;
}
var ml = new MLContext(seed: 0);
var model = ml.Model.Load(args[0], out _);
var data = ml.Data.LoadFromBinary(args[1]);
File.WriteAllText(args[2], ScoreDump.Dump(model.Transform(data)));
Console.WriteLine($"scored with {string.Join(", ", AppDomain.CurrentDomain.GetAssemblies().Select(a => a.GetName().Name).Where(n => n!.StartsWith("Microsoft.ML.Recurrent")))}");
return 0;
