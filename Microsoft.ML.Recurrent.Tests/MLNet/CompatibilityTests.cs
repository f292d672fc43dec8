using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.Recurrent.Tests.MLNet;

/// <summary>
/// Model zips saved by every released format version (Fixtures/compat/v&lt;N&gt;/, written by build/CompatFixtures)
/// must keep loading and reproduce the scores saved with them within 1e-6.
/// </summary>
[TestClass]
public sealed class CompatibilityTests
{
    public TestContext TestContext { get; set; } = null!;

    public static IEnumerable<object[]> Fixtures()
    {
        string root = Path.Combine(AppContext.BaseDirectory, "Fixtures", "compat");
        foreach (string zip in Directory.GetFiles(root, "*.zip", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            yield return [Path.GetRelativePath(root, zip)];
    }

    [TestMethod]
    [DynamicData(nameof(Fixtures))]
    public void SavedModelLoadsAndReproducesItsScores(string fixture)
    {
        string zip = Path.Combine(AppContext.BaseDirectory, "Fixtures", "compat", fixture);
        string stem = zip[..^".zip".Length];
        var ml = new MLContext(seed: 0);
        var model = ml.Model.Load(zip, out _);
        var input = ml.Data.LoadFromBinary(stem + ".input.idv");
        var expected = File.ReadAllLines(stem + ".scores.tsv");
        var header = expected[0].Split('\t');
        var scored = model.Transform(input);
        using var cursor = scored.GetRowCursor(header.Select(name => scored.Schema[name]));
        var readers = header.Select(name => Reader(cursor, scored.Schema[name])).ToArray();
        int row = 0;
        double maxDiff = 0;
        while (cursor.MoveNext())
        {
            var fields = expected[row + 1].Split('\t');
            for (int c = 0; c < header.Length; c++)
            {
                string actual = readers[c]();
                if (scored.Schema[header[c]].Type is TextDataViewType or BooleanDataViewType or VectorDataViewType { ItemType: TextDataViewType })
                {
                    Assert.AreEqual(fields[c], actual, $"{fixture}, row {row}, {header[c]}");
                    continue;
                }
                var want = fields[c].Split(',').Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray();
                var got = actual.Split(',').Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray();
                Assert.AreEqual(want.Length, got.Length, $"{fixture}, row {row}, {header[c]}");
                for (int i = 0; i < want.Length; i++)
                {
                    double diff = Math.Abs(want[i] - got[i]);
                    maxDiff = Math.Max(maxDiff, diff);
                    Assert.IsTrue(diff <= 1e-6, $"{fixture}, row {row}, {header[c]}[{i}]: {got[i]} vs saved {want[i]}");
                }
            }
            row++;
        }
        Assert.AreEqual(expected.Length - 1, row, "row count");
        TestContext.WriteLine($"{fixture}: {row} rows, max |diff| {maxDiff:G3}");
    }

    private static Func<string> Reader(DataViewRowCursor cursor, DataViewSchema.Column column)
    {
        var inv = CultureInfo.InvariantCulture;
        var type = column.Type;
        if (type == NumberDataViewType.Single)
        {
            var get = cursor.GetGetter<float>(column);
            return () => { float v = 0; get(ref v); return v.ToString("R", inv); };
        }
        if (type is VectorDataViewType { ItemType: TextDataViewType })
        {
            var get = cursor.GetGetter<VBuffer<ReadOnlyMemory<char>>>(column);
            return () => { VBuffer<ReadOnlyMemory<char>> v = default; get(ref v); return string.Join(' ', v.DenseValues()); };
        }
        if (type is VectorDataViewType)
        {
            var get = cursor.GetGetter<VBuffer<float>>(column);
            return () => { VBuffer<float> v = default; get(ref v); return string.Join(',', v.DenseValues().Select(x => x.ToString("R", inv))); };
        }
        if (type is BooleanDataViewType)
        {
            var get = cursor.GetGetter<bool>(column);
            return () => { bool v = false; get(ref v); return v ? "true" : "false"; };
        }
        var text = cursor.GetGetter<ReadOnlyMemory<char>>(column);
        return () => { ReadOnlyMemory<char> v = default; text(ref v); return v.ToString(); };
    }
}
