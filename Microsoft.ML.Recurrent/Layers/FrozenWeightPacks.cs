using Microsoft.ML.Recurrent.Kernels;

namespace Microsoft.ML.Recurrent.Layers;

/// <summary>
/// The packed weights of one recurrent direction whose weights never change (a trained, loaded model), shared by every
/// inference copy of that model: each cursor, cursor set and prediction engine scores with its own activations but the
/// same packed W_ihᵀ and W_hhᵀ, packed once on first use instead of once per copy (a copy per <c>Transform</c> cursor
/// otherwise packed — and held — the whole model again). Thread-safe: the first user packs under a lock; the packs are
/// read-only afterwards. Allocation-free once packed.
/// </summary>
internal sealed class FrozenWeightPacks
{
    private readonly object _gate = new();
    private PackedMatrix? _recurrentT, _inputT;

    /// <summary>W_hhᵀ [H, G·H] from <paramref name="weight"/> = W_hh [G·H, H], packed the first time.</summary>
    public PackedMatrix Recurrent(ReadOnlySpan<float> weight, int hiddenSize, int gateWidth) =>
        Volatile.Read(ref _recurrentT) ?? Pack(ref _recurrentT, weight, hiddenSize, gateWidth);

    /// <summary>W_ihᵀ [I, G·H] from <paramref name="weight"/> = W_ih [G·H, I], packed the first time.</summary>
    public PackedMatrix Input(ReadOnlySpan<float> weight, int inputSize, int gateWidth) =>
        Volatile.Read(ref _inputT) ?? Pack(ref _inputT, weight, inputSize, gateWidth);

    private PackedMatrix Pack(ref PackedMatrix? slot, ReadOnlySpan<float> weight, int k, int n)
    {
        lock (_gate)
        {
            var packed = slot ?? Sgemm.PackB(Transpose.Yes, k, n, weight, k);
            Volatile.Write(ref slot, packed);
            return packed;
        }
    }
}
