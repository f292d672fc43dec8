using Microsoft.ML.Recurrent.Kernels;

namespace Microsoft.ML.Recurrent.Layers.Cells;

/// <summary>
/// The element-wise part of one recurrent cell for one sequence at one time step. The matrix products are done
/// elsewhere (one GEMM for the input projection of all steps, one per step for the recurrent product); a cell only
/// combines them. Forward and backward of each cell sit side by side in its file.
/// <para>Per row, with G = <see cref="Gates"/> and hidden size H:</para>
/// <list type="bullet">
/// <item><c>gates</c> [G·H]: on entry W_ih·x (the input projection without its bias; the cell adds b_ih, first), on
/// return whatever the backward pass needs (activated gates).</item>
/// <item><c>gh</c> [G·H]: W_hh·h_prev (no bias); zero for a sequence's first step.</item>
/// <item><c>aux</c> [H]: a second per-step state the backward pass needs — LSTM: c_t; GRU: W_hn·h_prev + b_hn; RNN: unused.</item>
/// </list>
/// </summary>
internal abstract class RecurrentCell
{
    /// <summary>Number of gate blocks G (LSTM 4, GRU 3, RNN 1).</summary>
    public abstract int Gates { get; }

    /// <summary>Whether <c>aux</c> is used (and must be stored per step).</summary>
    public abstract bool UsesAux { get; }

    /// <summary>Whether the gradient of h_prev has a term besides dGh·W_hh (GRU's z⊙h_prev); then backward leaves it in dh.</summary>
    public abstract bool HasDirectStateGradient { get; }

    /// <summary>Whether dGh differs from dGx (GRU: the n block is scaled by r); otherwise backward fills only dGx.</summary>
    public abstract bool SeparateRecurrentGradient { get; }

    /// <summary>
    /// One forward step for one row, fused into one pass over the hidden units at the vector width of
    /// <see cref="FusedKernels.Current"/>. H is <paramref name="h"/>'s length. <paramref name="hPrev"/>/<paramref name="auxPrev"/>
    /// are zeros at a sequence's first step. A buffer shorter than H (or G·H) throws an <see cref="ArgumentException"/>
    /// naming it, before anything is read or written.
    /// </summary>
    /// <remarks>Each pre-activation is ((W_ih·x + b_ih) + W_hh·h) + b_hh, rounded in that order — what adding b_ih to the
    /// projection in a pass of its own and then calling the cell gave, without that pass over the [N, G·H] gates.</remarks>
    public abstract void ForwardRow(Span<float> gates, ReadOnlySpan<float> biasIh, ReadOnlySpan<float> gh, ReadOnlySpan<float> biasHh,
        ReadOnlySpan<float> hPrev, ReadOnlySpan<float> auxPrev, Span<float> h, Span<float> aux);

    /// <summary>
    /// The same step written plainly, one hidden unit at a time with <see cref="MathF"/>: the scalar reference every
    /// vector path of <see cref="ForwardRow"/> is tested against. Not used by the layers.
    /// </summary>
    public abstract void ForwardRowReference(Span<float> gates, ReadOnlySpan<float> biasIh, ReadOnlySpan<float> gh, ReadOnlySpan<float> biasHh,
        ReadOnlySpan<float> hPrev, ReadOnlySpan<float> auxPrev, Span<float> h, Span<float> aux);

    /// <summary>
    /// One backward step for one row, at the same vector width as <see cref="ForwardRow"/> and with the same length guards.
    /// <paramref name="dh"/> holds dL/dh_t on entry and the direct part of dL/dh_prev on
    /// return (when <see cref="HasDirectStateGradient"/>); <paramref name="dAux"/> (LSTM: dL/dc_t) is replaced by dL/dc_prev.
    /// Writes the pre-activation gradients into <paramref name="dGx"/> (and <paramref name="dGh"/> when separate).
    /// </summary>
    public abstract void BackwardRow(ReadOnlySpan<float> gates, ReadOnlySpan<float> aux, ReadOnlySpan<float> hPrev,
        ReadOnlySpan<float> auxPrev, ReadOnlySpan<float> h, Span<float> dh, Span<float> dAux, Span<float> dGx, Span<float> dGh);

    /// <summary>The backward step written plainly, one hidden unit at a time: the scalar reference of <see cref="BackwardRow"/>. Not used by the layers.</summary>
    public abstract void BackwardRowReference(ReadOnlySpan<float> gates, ReadOnlySpan<float> aux, ReadOnlySpan<float> hPrev,
        ReadOnlySpan<float> auxPrev, ReadOnlySpan<float> h, Span<float> dh, Span<float> dAux, Span<float> dGx, Span<float> dGh);

    /// <summary>σ(x) = 1 / (1 + exp(−x)) with <see cref="MathF.Exp"/>, for the references.</summary>
    protected static float Sigmoid(float x) => 1f / (1f + MathF.Exp(-x));

    /// <summary>The cell for a kind.</summary>
    public static RecurrentCell Create(RecurrentCellKind kind) => kind switch
    {
        RecurrentCellKind.Lstm => LstmCell.Instance,
        RecurrentCellKind.Gru => GruCell.Instance,
        RecurrentCellKind.RnnTanh => RnnCell.Tanh,
        RecurrentCellKind.RnnRelu => RnnCell.Relu,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown recurrent cell kind."),
    };
}
