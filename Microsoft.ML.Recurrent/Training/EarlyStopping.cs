using Microsoft.ML.Recurrent.Core;

namespace Microsoft.ML.Recurrent.Training;

/// <summary>
/// Early stopping on a validation loss (lower is better), shared by the training loops: keeps a copy of the weights of
/// the best epoch so far, counts the epochs since, and puts the best weights back at the end.
/// </summary>
internal sealed class EarlyStopping(ParameterSet parameters, int patience)
{
    private double _best = double.NaN;
    private float[]? _weights;
    private int _since;

    /// <summary>The epoch whose weights will be kept (the best validation epoch, or the last one without validation).</summary>
    public int Epoch { get; private set; }

    /// <summary>Whether the patience (when positive) has run out: that many epochs without a lower validation loss.</summary>
    public bool ShouldStop => patience > 0 && _since >= patience;

    /// <summary>Scores <paramref name="epoch"/> by its validation loss; when it is the best so far (the first always is), copies the weights. Returns whether it was.</summary>
    public bool Offer(int epoch, double validationLoss)
    {
        bool isBest = double.IsNaN(_best) || validationLoss < _best;
        if (!isBest)
        {
            _since++;
            return false;
        }
        _best = validationLoss;
        _weights ??= new float[parameters.Length];
        parameters.Values.CopyTo(_weights, 0);
        Epoch = epoch;
        _since = 0;
        return true;
    }

    /// <summary>An epoch without validation: it is the one kept (no copy is made; the weights stay where they are).</summary>
    public void Unvalidated(int epoch) => Epoch = epoch;

    /// <summary>Puts the best epoch's weights back (nothing to do when no validated epoch was offered).</summary>
    public void Restore() => _weights?.CopyTo(parameters.Values, 0);
}
