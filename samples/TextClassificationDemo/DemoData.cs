using System.Net;
using System.Text;

namespace TextClassificationDemo;

/// <summary>Command-line options of the demo.</summary>
internal sealed record Arguments(string Dataset, int Epochs, string DatasetsDirectory, string Output, int? Threads, bool Onnx)
{
    public static Arguments Parse(string[] args)
    {
        string dataset = "sample", output = Path.Combine(Path.GetTempPath(), "recurrent-demo");
        string datasets = Path.Combine(FindRepositoryRoot(), "..", "shared", "datasets");
        int? epochs = null, threads = null;
        bool onnx = false;
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--dataset": dataset = Next().ToLowerInvariant(); break;
                case "--epochs": epochs = int.Parse(Next()); break;
                case "--datasets": datasets = Next(); break;
                case "--out": output = Next(); break;
                case "--threads": threads = int.Parse(Next()); break;
                case "--onnx": onnx = true; break;
                default: throw new ArgumentException($"Unknown argument {args[i]}; see the comment at the top of Program.cs.");
            }
        }
        if (dataset is not ("sample" or "agnews" or "sst2" or "imdb"))
            throw new ArgumentException($"Unknown dataset '{dataset}': use sample, agnews, sst2 or imdb.");
        return new Arguments(dataset, epochs ?? (dataset == "imdb" ? 3 : 6), Path.GetFullPath(datasets), output, threads, onnx);
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Recurrent.sln")))
                return dir.FullName;
        return Directory.GetCurrentDirectory();
    }
}

/// <summary>Loads the shipped excerpt or one of the full data sets.</summary>
internal static class DemoData
{
    private static readonly string[] AgNewsClasses = ["World", "Sports", "Business", "Sci/Tech"];

    public static (List<TextRow> Train, List<TextRow> Test, string[] Examples) Load(Arguments arguments)
    {
        string Shared(string relative)
        {
            string path = Path.Combine(arguments.DatasetsDirectory, relative);
            if (!File.Exists(path))
                throw new FileNotFoundException($"{path} not found: the full data sets live in ../shared/datasets (or pass --datasets DIR).", path);
            return path;
        }
        string[] news = ["Stocks fell sharply after the central bank raised interest rates again.",
            "The striker scored twice as the home team won the cup final.",
            "A new chip from the company doubles battery life in laptops and phones.",
            "Rebels and government troops agreed to a ceasefire after weeks of fighting."];
        string[] reviews = ["An absolute delight from start to finish, with wonderful performances.",
            "A dull, lifeless film that wastes its talented cast.",
            "Not bad at all, actually quite charming.",
            "I wanted to like it, but the plot makes no sense."];
        switch (arguments.Dataset)
        {
            case "sample":
                string data = Path.Combine(AppContext.BaseDirectory, "data");
                return (ReadCsv(Path.Combine(data, "train.csv")).Select(r => Row(r[0], r[1])).ToList(),
                        ReadCsv(Path.Combine(data, "test.csv")).Select(r => Row(r[0], r[1])).ToList(), news);
            case "agnews":
                return (ReadCsv(Shared("ag_news/train_subset_10k.csv")).Select(r => Row(AgNewsClasses[int.Parse(r[0]) - 1], r[2])).ToList(),
                        ReadCsv(Shared("ag_news/test.csv")).Select(r => Row(AgNewsClasses[int.Parse(r[0]) - 1], r[2])).ToList(), news);
            case "sst2":
                return (ReadTsv(Shared("sst2/train.tsv")), ReadTsv(Shared("sst2/dev.tsv")), reviews);
            default:
                return (ReadImdb(Shared("imdb/imdb_train.csv")), ReadImdb(Shared("imdb/imdb_test.csv")), reviews);
        }
    }

    /// <summary>AG News escapes: " #39;" for an apostrophe, HTML entities, a backslash for a newline.</summary>
    private static TextRow Row(string label, string text) =>
        new() { Label = label, Text = WebUtility.HtmlDecode(text.Replace(" #39;", "'").Replace("#39;", "'").Replace(" #36;", " $").Replace("\\", " ")) };

    private static List<TextRow> ReadTsv(string path) =>
        File.ReadLines(path).Skip(1).Select(line => line.Split('\t')).Where(p => p.Length == 2)
            .Select(p => new TextRow { Text = p[0], Label = p[1].Trim() == "1" ? "positive" : "negative" }).ToList();

    private static List<TextRow> ReadImdb(string path) =>
        ReadCsv(path).Skip(1).Select(r => new TextRow { Label = r[1] == "1" ? "positive" : "negative", Text = r[3].Replace("<br />", " ") }).ToList();

    /// <summary>RFC 4180 CSV: quoted fields, doubled quotes, newlines inside quotes.</summary>
    internal static IEnumerable<string[]> ReadCsv(string path)
    {
        using var reader = new StreamReader(path, Encoding.UTF8);
        var fields = new List<string>();
        var field = new StringBuilder();
        bool quoted = false, any = false;
        int c;
        while ((c = reader.Read()) >= 0)
        {
            char ch = (char)c;
            any = true;
            if (quoted)
            {
                if (ch == '"')
                {
                    if (reader.Peek() == '"') { field.Append('"'); reader.Read(); }
                    else quoted = false;
                }
                else field.Append(ch);
            }
            else if (ch == '"') quoted = true;
            else if (ch == ',') { fields.Add(field.ToString()); field.Clear(); }
            else if (ch == '\n')
            {
                fields.Add(field.ToString().TrimEnd('\r'));
                field.Clear();
                yield return fields.ToArray();
                fields.Clear();
                any = false;
            }
            else field.Append(ch);
        }
        if (any)
        {
            fields.Add(field.ToString());
            yield return fields.ToArray();
        }
    }
}
