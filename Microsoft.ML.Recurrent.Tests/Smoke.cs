namespace Microsoft.ML.Recurrent.Tests;

[TestClass]
public sealed class SmokeTests
{
    [TestMethod]
    public void TransposeEnumHasTwoValues() => Assert.AreEqual(2, Enum.GetValues<Microsoft.ML.Recurrent.Kernels.Transpose>().Length);
}
