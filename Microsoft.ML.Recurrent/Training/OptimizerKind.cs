namespace Microsoft.ML.Recurrent;

/// <summary>Which optimizer updates the weights.</summary>
public enum OptimizerKind
{
    /// <summary>Adam with L2 weight decay added to the gradient (<c>torch.optim.Adam</c>).</summary>
    Adam,
    /// <summary>Adam with decoupled weight decay (<c>torch.optim.AdamW</c>).</summary>
    AdamW,
    /// <summary>Stochastic gradient descent with momentum (<c>torch.optim.SGD</c>).</summary>
    Sgd,
}
