namespace Microsoft.ML.Recurrent;

/// <summary>
/// The recurrent cell of a layer. Equations and gate order follow PyTorch so weights are interchangeable.
/// The numeric values are written to model files: never change or reuse them.
/// </summary>
public enum RecurrentCellKind
{
    /// <summary>Long short-term memory, gates i, f, g, o (PyTorch <c>nn.LSTM</c>).</summary>
    Lstm = 0,
    /// <summary>Gated recurrent unit, gates r, z, n with b_hn inside the reset product (PyTorch <c>nn.GRU</c>).</summary>
    Gru = 1,
    /// <summary>Elman RNN with tanh (PyTorch <c>nn.RNN</c>, nonlinearity 'tanh').</summary>
    RnnTanh = 2,
    /// <summary>Elman RNN with ReLU (PyTorch <c>nn.RNN</c>, nonlinearity 'relu').</summary>
    RnnRelu = 3,
}
