using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Kernels;
using Microsoft.ML.Recurrent.Layers.Cells;

namespace Microsoft.ML.Recurrent.Layers;

/// <summary>
/// One direction of one recurrent layer over a packed ragged batch (see <see cref="RaggedBatch"/>).
/// Parameters (PyTorch names and shapes, G = gate count): weight_ih [G·H, I], weight_hh [G·H, H], bias_ih [G·H], bias_hh [G·H].
/// <para>Forward: one GEMM projects every step's input at once (gates = X·W_ihᵀ, [N, G·H]); then, step by step,
/// one GEMM for the recurrent product of the rows still running and the cell's element-wise update, which adds b_ih
/// and b_hh as it reads each row.
/// The forward direction walks t = 0 … T−1, the reverse direction t = T−1 … 0; in both, the rows active at step t
/// are the prefix [0, b_t) of the sorted batch, and a row that has no previous state (its first step) sees zeros.
/// So padded steps never touch the state, and each sequence's reverse pass starts at its own last real token.</para>
/// <para>Backward is the forward read in reverse: the step loop produces the pre-activation gradients dG for every
/// row; then three large GEMMs give dW_ih, dW_hh and dX.</para>
/// Initial states are zero unless <see cref="SetInitialStates"/> gave others (stateful language-model training and
/// generation carry the last batch's final states over, detached: no gradient flows into them).
/// </summary>
internal sealed class RecurrentDirection
{
    private readonly ParameterSet _parameters;
    private readonly RecurrentCell _cell;
    private readonly Parameter _weightIh, _weightHh, _biasIh, _biasHh;

    // Activations kept from forward for backward, all packed [N, …].
    private float[] _gates = [];   // [N, G·H]
    private float[] _aux = [];     // [N, H] (LSTM c_t, GRU W_hn h + b_hn)
    // Scratch.
    private float[] _gh = [];      // [B, G·H] recurrent product of one step
    private float[] _dGx = [];     // [N, G·H]
    private float[] _dGh = [];     // [N, G·H] (GRU only; otherwise dGx is used)
    private float[] _hPrev = [];   // [N, H] h_prev per packed row, for dW_hh
    private float[] _dh = [];       // [B, H]
    private float[] _dAux = [];     // [B, H]
    private PackedMatrix? _packedHhT;  // op(B) = W_hhᵀ [H, G·H], packed for the per-step forward product
    private PackedMatrix? _packedHh;   // op(B) = W_hh [G·H, H], packed for the per-step backward product
    private PackedMatrix? _packedIhT;  // op(B) = W_ihᵀ [I, G·H], packed once when the weights are frozen
    private FrozenWeightPacks? _frozenPacks; // frozen weights: the packs shared with the other inference copies of the model
    private readonly float[] _zeros;   // [H]
    private float[] _h0 = [], _c0 = []; // [B, H] initial states in sorted batch order (c0: LSTM only), or empty for zeros
    private int _initialRows;          // rows of _h0 in use; 0 = zero initial states
    private readonly StepHalves _steps;  // the step loop split over two threads (see RunStepsInParallel)

    /// <summary>Input width I.</summary>
    public int InputSize { get; }

    /// <summary>Hidden width H.</summary>
    public int HiddenSize { get; }

    /// <summary>Whether this direction runs from the end of each sequence to its start.</summary>
    public bool Reverse { get; }

    /// <summary>Threads for the large GEMMs (input projection, weight and input gradients) and the per-step product. Results do not depend on it.</summary>
    public int GemmThreads { get; set; } = 1;

    /// <summary>
    /// Set for inference copies whose weights never change: the packed weights are then made once and reused by every
    /// forward pass instead of being repacked each time.
    /// </summary>
    public bool WeightsFrozen { get; set; }

    /// <summary>The cell.</summary>
    public RecurrentCell Cell => _cell;

    /// <summary>
    /// The packs of this direction's frozen weights, for the inference copies made from it to share (see
    /// <see cref="FrozenWeightPacks"/>). Only a direction whose weights never change may hand them out.
    /// </summary>
    public FrozenWeightPacks FrozenPacks
    {
        get
        {
            if (!WeightsFrozen) throw new InvalidOperationException("Only frozen weights have packs to share: these weights may still change.");
            return LazyInitializer.EnsureInitialized(ref _frozenPacks, () => new FrozenWeightPacks());
        }
    }

    /// <summary>Scores with <paramref name="packs"/> (another copy's, over the same frozen weights) instead of packing its own.</summary>
    public void SharePacks(FrozenWeightPacks packs)
    {
        if (!WeightsFrozen) throw new InvalidOperationException("Only a copy with frozen weights can share packed weights.");
        _frozenPacks = packs;
    }

    /// <summary>Registers weight_ih{suffix}, weight_hh{suffix}, bias_ih{suffix}, bias_hh{suffix} under <paramref name="prefix"/>.</summary>
    public RecurrentDirection(ParameterSet parameters, string prefix, string suffix, RecurrentCellKind kind,
        int inputSize, int hiddenSize, bool reverse)
    {
        _parameters = parameters;
        _cell = RecurrentCell.Create(kind);
        InputSize = inputSize;
        HiddenSize = hiddenSize;
        Reverse = reverse;
        int gh = _cell.Gates * hiddenSize;
        _weightIh = parameters.Register($"{prefix}weight_ih{suffix}", gh, inputSize);
        _weightHh = parameters.Register($"{prefix}weight_hh{suffix}", gh, hiddenSize);
        _biasIh = parameters.Register($"{prefix}bias_ih{suffix}", gh);
        _biasHh = parameters.Register($"{prefix}bias_hh{suffix}", gh);
        _zeros = new float[hiddenSize];
        _steps = new StepHalves(this);
    }

    /// <summary>PyTorch's default initialization: every weight and bias U(−1/√H, 1/√H).</summary>
    public void Initialize(SeededRandom random)
    {
        float bound = 1f / MathF.Sqrt(HiddenSize);
        foreach (var p in new[] { _weightIh, _weightHh, _biasIh, _biasHh })
            random.FillUniform(_parameters.Value(p), -bound, bound);
    }

    /// <summary>
    /// Initial states h0 [B, H] and, for LSTM, c0 [B, H] (empty = zeros) in sorted batch order, used by the following
    /// forward and backward passes until <see cref="ClearInitialStates"/>: each sequence's first step (t = 0 forward,
    /// its last step in reverse) starts from its row. They are copied; no gradient is computed for them.
    /// </summary>
    public void SetInitialStates(ReadOnlySpan<float> h0, ReadOnlySpan<float> c0)
    {
        int h = HiddenSize;
        if (h0.Length % h != 0 || h0.Length == 0)
            throw new ArgumentException($"h0 holds {h0.Length} values; expected a positive multiple of the hidden size {h}.", nameof(h0));
        if (!c0.IsEmpty && c0.Length != h0.Length)
            throw new ArgumentException($"c0 holds {c0.Length} values but h0 {h0.Length}.", nameof(c0));
        if (!c0.IsEmpty && !_cell.UsesAux)
            throw new ArgumentException("Only an LSTM has a cell state.", nameof(c0));
        _initialRows = h0.Length / h;
        h0.CopyTo(Workspace.Ensure(ref _h0, h0.Length));
        var c = _cell.UsesAux ? Workspace.Ensure(ref _c0, h0.Length) : default;
        if (c0.IsEmpty) c.Clear(); else c0.CopyTo(c);
    }

    /// <summary>Back to zero initial states.</summary>
    public void ClearInitialStates() => _initialRows = 0;

    /// <summary>Initial hidden state of sorted row j (zeros without <see cref="SetInitialStates"/>).</summary>
    private ReadOnlySpan<float> InitialH(int j) => _initialRows == 0 ? _zeros : _h0.AsSpan(j * HiddenSize, HiddenSize);

    /// <summary>Initial cell state of sorted row j (LSTM), zeros otherwise.</summary>
    private ReadOnlySpan<float> InitialC(int j) => _initialRows == 0 || !_cell.UsesAux ? _zeros : _c0.AsSpan(j * HiddenSize, HiddenSize);

    private void CheckInitialRows(RaggedBatch batch)
    {
        if (_initialRows != 0 && _initialRows != batch.BatchSize)
            throw new InvalidOperationException($"The initial states hold {_initialRows} rows but the batch has {batch.BatchSize} sequences.");
    }

    /// <summary>First packed row and count of the rows that have a previous state at step t, for this direction.</summary>
    private (int Offset, int Rows) Previous(RaggedBatch batch, int t)
    {
        if (Reverse)
            return t + 1 < batch.MaxLength ? (batch.StepOffsets[t + 1], batch.StepSizes[t + 1]) : (0, 0);
        return t > 0 ? (batch.StepOffsets[t - 1], batch.StepSizes[t]) : (0, 0);
    }

    /// <summary>
    /// x: [N, I] (row stride I). y: [N, ·] with row stride <paramref name="ldy"/>, this direction's H columns starting
    /// at element 0 of the span (slice the span by the column offset).
    /// </summary>
    public void Forward(RaggedBatch batch, ReadOnlySpan<float> x, Span<float> y, int ldy)
    {
        int n = batch.TotalSteps, h = HiddenSize, gw = _cell.Gates * h;
        CheckInitialRows(batch);
        var gates = Workspace.Ensure(ref _gates, n * gw);
        var aux = _cell.UsesAux ? Workspace.Ensure(ref _aux, n * h) : default;
        var gh = Workspace.Ensure(ref _gh, batch.BatchSize * gw);
        var wIh = _parameters.Value(_weightIh);
        var wHh = _parameters.Value(_weightHh);

        // The recurrent weights are used at every step: pack them once per pass (they change between training steps), or
        // once for good when they are frozen — shared with the model's other inference copies.
        if (WeightsFrozen)
        {
            var packs = FrozenPacks;
            _packedHhT = packs.Recurrent(wHh, h, gw);
            _packedIhT = packs.Input(wIh, InputSize, gw);
        }
        else if (_packedHhT is null) _packedHhT = Sgemm.PackB(Transpose.Yes, h, gw, wHh, h);
        else Sgemm.RepackB(_packedHhT, Transpose.Yes, wHh, h);

        // gates[N, G·H] = X[N, I] · W_ihᵀ (the cells add b_ih as they read each row: no pass of its own over the gates)
        if (WeightsFrozen)
        {
            Sgemm.Multiply(Transpose.No, n, x, InputSize, _packedIhT!, gates, gw, accumulate: false, GemmThreads);
        }
        else
        {
            Sgemm.Multiply(Transpose.No, Transpose.Yes, n, gw, InputSize, x, InputSize, wIh, InputSize, gates, gw, accumulate: false, GemmThreads);
        }

        int split = SplitPoint(batch);
        if (split > 0)
            RunStepsInParallel(batch, backward: false, y, ldy, default, split);
        else
            ForwardSteps(batch, y, ldy, 0, batch.BatchSize, GemmThreads);
    }

    /// <summary>
    /// The forward step loop for the sequences [<paramref name="s0"/>, <paramref name="s1"/>) of the sorted batch (rows
    /// s0 … of every step): their recurrent products and cell updates. Sequences never meet in it, so any split of the
    /// batch gives the same values bit for bit (SGEMM computes a row the same way whichever rows come with it).
    /// </summary>
    private void ForwardSteps(RaggedBatch batch, Span<float> y, int ldy, int s0, int s1, int gemmThreads)
    {
        int n = batch.TotalSteps, h = HiddenSize, gw = _cell.Gates * h;
        var gates = _gates.AsSpan(0, n * gw);
        var aux = _cell.UsesAux ? _aux.AsSpan(0, n * h) : default;
        var gh = _gh.AsSpan(0, batch.BatchSize * gw);
        ReadOnlySpan<float> bIh = _parameters.Value(_biasIh), bHh = _parameters.Value(_biasHh);
        for (int s = 0; s < batch.MaxLength; s++)
        {
            int t = Reverse ? batch.MaxLength - 1 - s : s;
            int offset = batch.StepOffsets[t];
            var (prevOffset, previous) = Previous(batch, t);
            int rows = Math.Min(batch.StepSizes[t], s1), prevRows = Math.Min(previous, s1);
            if (rows <= s0)
                continue;
            // gh[0:prevRows, G·H] = Y[prev rows, H] · W_hhᵀ ; rows without a previous state see zeros.
            if (prevRows > s0)
                Sgemm.Multiply(Transpose.No, prevRows - s0, y.Slice((prevOffset + s0) * ldy), ldy, _packedHhT!, gh.Slice(s0 * gw), gw, accumulate: false, gemmThreads);
            // Rows starting here: W_hh · h0 with given initial states, else zeros.
            int starting = Math.Max(prevRows, s0);
            if (_initialRows > 0 && rows > starting)
                Sgemm.Multiply(Transpose.No, rows - starting, _h0.AsSpan(starting * h), h, _packedHhT!, gh.Slice(starting * gw), gw, accumulate: false, gemmThreads);
            else
                gh.Slice(starting * gw, (rows - starting) * gw).Clear();
            for (int j = s0; j < rows; j++)
            {
                int row = offset + j;
                bool hasPrev = j < prevRows;
                _cell.ForwardRow(
                    gates.Slice(row * gw, gw),
                    bIh,
                    gh.Slice(j * gw, gw),
                    bHh,
                    hasPrev ? y.Slice((prevOffset + j) * ldy, h) : InitialH(j),
                    hasPrev && _cell.UsesAux ? aux.Slice((prevOffset + j) * h, h) : InitialC(j),
                    y.Slice(row * ldy, h),
                    _cell.UsesAux ? aux.Slice(row * h, h) : default);
            }
        }
    }

    /// <summary>
    /// The backward step loop for the sequences [<paramref name="s0"/>, <paramref name="s1"/>) of the sorted batch: dh and
    /// dAux of those rows, dGx/dGh of their packed rows. Sequences never meet in it, so any split of the batch gives
    /// the same values bit for bit (SGEMM computes a row the same way whichever rows come with it).
    /// </summary>
    private void BackwardSteps(RaggedBatch batch, ReadOnlySpan<float> y, int ldy, ReadOnlySpan<float> dY, int s0, int s1, int gemmThreads)
    {
        int n = batch.TotalSteps, b = batch.BatchSize, h = HiddenSize, gw = _cell.Gates * h;
        var gates = _gates.AsSpan(0, n * gw);
        var aux = _cell.UsesAux ? _aux.AsSpan(0, n * h) : default;
        var dGx = _dGx.AsSpan(0, n * gw);
        var dGh = _cell.SeparateRecurrentGradient ? _dGh.AsSpan(0, n * gw) : dGx;
        var dh = _dh.AsSpan(0, b * h);
        var dAux = _dAux.AsSpan(0, b * h);
        for (int s = batch.MaxLength - 1; s >= 0; s--)
        {
            int t = Reverse ? batch.MaxLength - 1 - s : s;
            int offset = batch.StepOffsets[t];
            var (prevOffset, previous) = Previous(batch, t);
            int rows = Math.Min(batch.StepSizes[t], s1), prevRows = Math.Min(previous, s1);
            for (int j = s0; j < rows; j++)
            {
                int row = offset + j;
                var dhRow = dh.Slice(j * h, h);
                if (!dY.IsEmpty)
                    System.Numerics.Tensors.TensorPrimitives.Add(dhRow, dY.Slice(row * ldy, h), dhRow);
                bool hasPrev = j < prevRows;
                _cell.BackwardRow(
                    gates.Slice(row * gw, gw),
                    _cell.UsesAux ? aux.Slice(row * h, h) : default,
                    hasPrev ? y.Slice((prevOffset + j) * ldy, h) : InitialH(j),
                    hasPrev && _cell.UsesAux ? aux.Slice((prevOffset + j) * h, h) : InitialC(j),
                    y.Slice(row * ldy, h),
                    dhRow,
                    dAux.Slice(j * h, h),
                    dGx.Slice(row * gw, gw),
                    dGh.Slice(row * gw, gw));
            }
            // dh[0:prevRows, H] (+)= dGh[rows of step t, G·H] · W_hh[G·H, H]
            if (prevRows > s0)
                Sgemm.Multiply(Transpose.No, prevRows - s0, dGh.Slice((offset + s0) * gw), gw, _packedHh!, dh.Slice(s0 * h), h,
                    accumulate: _cell.HasDirectStateGradient, gemmThreads);
        }
    }

    /// <summary>
    /// Where to split the batch's sequences between two threads for the step loops, or 0 to keep them on one: only a
    /// direction given GEMM threads (a unidirectional stack with <see cref="RecurrentStack.Threads"/> ≥ 2) and a batch of
    /// two or more. The first sequences (the longest, sorted) up to about half of all steps go to the calling thread.
    /// </summary>
    private int SplitPoint(RaggedBatch batch)
    {
        int b = batch.BatchSize;
        if (GemmThreads < 2 || b < 2)
            return 0;
        long total = batch.TotalSteps, prefix = 0;
        int split = 0;
        while (split < b - 1 && 2 * (prefix + batch.SortedLengths[split]) <= total)
            prefix += batch.SortedLengths[split++];
        return Math.Max(split, 1);
    }

    /// <summary>
    /// Runs the forward or backward step loop over the sequences [0, <paramref name="split"/>) on the calling thread and
    /// [split, B) on <see cref="PairRunner"/>'s worker — no synchronization per step, since sequences are independent
    /// there; the large GEMMs before and after share the threads as <c>Sgemm.ChooseSplit</c> decides. Results equal the
    /// one-thread loop bit for bit.
    /// </summary>
    private unsafe void RunStepsInParallel(RaggedBatch batch, bool backward, ReadOnlySpan<float> y, int ldy, ReadOnlySpan<float> dY, int split)
    {
        fixed (float* pY = y, pDY = dY)
        {
            _steps.Set(batch, backward, pY, y.Length, ldy, pDY, dY.Length, split);
            try
            {
                PairRunner.Run(_steps);
            }
            finally
            {
                _steps.Clear();
            }
        }
    }

    /// <summary>The two halves of a step loop, with the caller's spans held as pointers pinned for the duration of <see cref="PairRunner.Run"/>.</summary>
    private sealed unsafe class StepHalves(RecurrentDirection direction) : IPairWork
    {
        private RaggedBatch? _batch;
        private bool _backward;
        private float* _y, _dY;
        private int _yLength, _ldy, _dYLength, _split;

        public void Set(RaggedBatch batch, bool backward, float* y, int yLength, int ldy, float* dY, int dYLength, int split)
        {
            _batch = batch; _backward = backward; _y = y; _yLength = yLength; _ldy = ldy; _dY = dY; _dYLength = dYLength; _split = split;
        }

        public void Clear()
        {
            _batch = null; _y = null; _dY = null;
        }

        public void RunPart(int part)
        {
            int s0 = part == 0 ? 0 : _split, s1 = part == 0 ? _split : _batch!.BatchSize;
            if (_backward)
                direction.BackwardSteps(_batch!, new ReadOnlySpan<float>(_y, _yLength), _ldy, new ReadOnlySpan<float>(_dY, _dYLength), s0, s1, gemmThreads: 1);
            else
                direction.ForwardSteps(_batch!, new Span<float>(_y, _yLength), _ldy, s0, s1, gemmThreads: 1);
        }
    }

    /// <summary>
    /// Final states in sorted batch order: hN [B, H] from y, cN [B, H] (LSTM only; pass empty otherwise).
    /// The forward direction ends at each sequence's last real step, the reverse direction at step 0.
    /// </summary>
    public void FinalStates(RaggedBatch batch, ReadOnlySpan<float> y, int ldy, Span<float> hN, Span<float> cN)
    {
        int h = HiddenSize;
        for (int j = 0; j < batch.BatchSize; j++)
        {
            int row = Reverse ? j : batch.Row(batch.SortedLengths[j] - 1, j);
            y.Slice(row * ldy, h).CopyTo(hN.Slice(j * h, h));
            if (!cN.IsEmpty)
                _aux.AsSpan(row * h, h).CopyTo(cN.Slice(j * h, h));
        }
    }

    /// <summary>
    /// Backward of the last <see cref="Forward"/>. Adds into the parameter gradients and into <paramref name="dX"/> [N, I]
    /// (skipped when empty). dY: gradient of y (same layout, may be empty); dhN/dcN [B, H] sorted order: gradients of
    /// the final states (may be empty).
    /// </summary>
    public void Backward(RaggedBatch batch, ReadOnlySpan<float> x, ReadOnlySpan<float> y, int ldy,
        ReadOnlySpan<float> dY, ReadOnlySpan<float> dhN, ReadOnlySpan<float> dcN, Span<float> dX)
    {
        int n = batch.TotalSteps, b = batch.BatchSize, h = HiddenSize, gw = _cell.Gates * h;
        CheckInitialRows(batch);
        var dGx = Workspace.Ensure(ref _dGx, n * gw);
        var dGh = _cell.SeparateRecurrentGradient ? Workspace.Ensure(ref _dGh, n * gw) : dGx;
        var dh = Workspace.Ensure(ref _dh, b * h);
        var dAux = Workspace.Ensure(ref _dAux, b * h);
        var wIh = _parameters.Value(_weightIh);
        var wHh = _parameters.Value(_weightHh);

        if (_packedHh is null) _packedHh = Sgemm.PackB(Transpose.No, gw, h, wHh, h);
        else Sgemm.RepackB(_packedHh, Transpose.No, wHh, h);

        if (dhN.IsEmpty) dh.Clear(); else dhN.Slice(0, b * h).CopyTo(dh);
        if (dcN.IsEmpty) dAux.Clear(); else dcN.Slice(0, b * h).CopyTo(dAux);

        int split = SplitPoint(batch);
        if (split > 0)
            RunStepsInParallel(batch, backward: true, y, ldy, dY, split);
        else
            BackwardSteps(batch, y, ldy, dY, 0, b, GemmThreads);

        // hPrev[N, H]: the state each packed row started from (h0 or zeros at a sequence's first step).
        var hPrev = Workspace.Ensure(ref _hPrev, n * h);
        for (int t = 0; t < batch.MaxLength; t++)
        {
            int rows = batch.StepSizes[t], offset = batch.StepOffsets[t];
            var (prevOffset, prevRows) = Previous(batch, t);
            for (int j = 0; j < prevRows; j++)
                y.Slice((prevOffset + j) * ldy, h).CopyTo(hPrev.Slice((offset + j) * h, h));
            if (_initialRows > 0)
                _h0.AsSpan(prevRows * h, (rows - prevRows) * h).CopyTo(hPrev.Slice((offset + prevRows) * h));
            else
                hPrev.Slice((offset + prevRows) * h, (rows - prevRows) * h).Clear();
        }

        // dW_ih[G·H, I] += dGxᵀ · X ; dW_hh[G·H, H] += dGhᵀ · hPrev ; dX[N, I] += dGx · W_ih
        Sgemm.Multiply(Transpose.Yes, Transpose.No, gw, InputSize, n, dGx, gw, x, InputSize, _parameters.Gradient(_weightIh), InputSize, accumulate: true, GemmThreads);
        Sgemm.Multiply(Transpose.Yes, Transpose.No, gw, h, n, dGh, gw, hPrev, h, _parameters.Gradient(_weightHh), h, accumulate: true, GemmThreads);
        AddColumnSums(dGx, n, gw, _parameters.Gradient(_biasIh));
        AddColumnSums(dGh, n, gw, _parameters.Gradient(_biasHh));
        if (!dX.IsEmpty)
            Sgemm.Multiply(Transpose.No, Transpose.No, n, InputSize, gw, dGx, gw, wIh, InputSize, dX, InputSize, accumulate: true, GemmThreads);
    }

    /// <summary>sums[c] += Σ_r m[r, c] for m [rows, cols].</summary>
    private static void AddColumnSums(ReadOnlySpan<float> m, int rows, int cols, Span<float> sums)
    {
        for (int r = 0; r < rows; r++)
            System.Numerics.Tensors.TensorPrimitives.Add(sums, m.Slice(r * cols, cols), sums);
    }
}
