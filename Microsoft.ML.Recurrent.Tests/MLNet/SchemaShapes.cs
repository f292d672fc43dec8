using System.Reflection;
using Microsoft.ML;

namespace Microsoft.ML.Recurrent.Tests.MLNet;

/// <summary>
/// ML.NET keeps <c>SchemaShape.Create</c> and <c>SchemaShape.Column.IsCompatibleWith</c> internal; the tests reach
/// them by reflection to check that an estimator's predicted schema matches the fitted transformer's.
/// </summary>
internal static class SchemaShapes
{
    public static SchemaShape Create(DataViewSchema schema) =>
        (SchemaShape)typeof(SchemaShape).GetMethod("Create", BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic, [typeof(DataViewSchema)])!
            .Invoke(null, [schema])!;

    public static void AssertMatches(SchemaShape predicted, DataViewSchema actual)
    {
        var actualShape = Create(actual);
        var compatible = typeof(SchemaShape.Column).GetMethod("IsCompatibleWith", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)!;
        foreach (var column in predicted)
        {
            var match = actualShape.FirstOrDefault(c => c.Name == column.Name);
            Assert.AreEqual(column.Name, match.Name, $"column {column.Name} is missing after Fit");
            Assert.IsTrue((bool)compatible.Invoke(column, [match])!, $"column {column.Name}: predicted {column}, actual {match}");
            Assert.AreEqual(column.IsKey, match.IsKey, column.Name);
            Assert.AreEqual(column.Kind, match.Kind, column.Name);
            CollectionAssert.AreEquivalent(column.Annotations.Select(a => a.Name).ToList(), match.Annotations.Select(a => a.Name).ToList(), $"annotations of {column.Name}");
        }
    }
}
