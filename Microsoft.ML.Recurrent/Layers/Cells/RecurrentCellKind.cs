namespace Microsoft.ML.Recurrent.Layers;

/// <summary>The recurrent cell of a layer. Equations and gate order follow PyTorch so weights are interchangeable.</summary>
public enum RecurrentCellKind
{
    /// <summary>Long short-term memory, gates i, f, g, o (PyTorch <c>nn.LSTM</c>).</summary>
    Lstm,
    /// <summary>Gated recurrent unit, gates r, z, n with b_hn inside the reset product (PyTorch <c>nn.GRU</c>).</summary>
    Gru,
    /// <summary>Elman RNN with tanh (PyTorch <c>nn.RNN</c>, nonlinearity 'tanh').</summary>
    RnnTanh,
    /// <summary>Elman RNN with ReLU (PyTorch <c>nn.RNN</c>, nonlinearity 'relu').</summary>
    RnnRelu,
}
