using Microsoft.ML.Recurrent.Core;

namespace Microsoft.ML.Recurrent.Layers;

/// <summary>
/// Attention pooling (Yang et al. 2016, "Hierarchical Attention Networks"): a learned, masked softmax-weighted mean of
/// the top layer's outputs. For sequence j with real steps t,
/// <code>
///   u_t = tanh(W·y_t + b)        W = attention.weight [A, W], b = attention.bias [A]
///   e_t = c · u_t                c = attention.context [A]
///   α_t = softmax_t(e_t)         over the sequence's real steps only
///   out_j = Σ_t α_t · y_t        [W]
/// </code>
/// Padding never enters: the packed batch holds real steps only. A = W (the top layer's width D·H).
/// Forward and backward work on the packed output Y [N, W] in sorted batch order.
/// </summary>
internal sealed class AttentionPooling
{
    private readonly ParameterSet _parameters;
    private readonly Linear _projection;
    private readonly Parameter _context;
    private float[] _y = [];      // [N, W] the forward pass's input, for the backward pass
    private float[] _u = [];      // [N, A] tanh(W·y + b)
    private float[] _alpha = [];  // [N] attention weights (per packed row)
    private float[] _dU = [];     // [N, A]
    private float[] _dAlpha = []; // [N]

    /// <summary>Width W of the pooled vector (and of each input row).</summary>
    public int InputSize { get; }

    /// <summary>Width A of the attention projection.</summary>
    public int AttentionSize { get; }

    /// <summary>Registers <c>attention.weight</c> [A, W], <c>attention.bias</c> [A] and <c>attention.context</c> [A].</summary>
    public AttentionPooling(ParameterSet parameters, int inputSize)
    {
        _parameters = parameters;
        InputSize = inputSize;
        AttentionSize = inputSize;
        _projection = new Linear(parameters, "attention.", inputSize, AttentionSize);
        _context = parameters.Register("attention.context", AttentionSize);
    }

    /// <summary>Number of parameters for input width W (A = W): W·A + 2A.</summary>
    public static long CountParameters(long inputSize) => inputSize * inputSize + 2 * inputSize;

    /// <summary>Projection as PyTorch's <c>nn.Linear</c>; context U(−1/√A, 1/√A).</summary>
    public void Initialize(SeededRandom random)
    {
        _projection.Initialize(random);
        float bound = 1f / MathF.Sqrt(AttentionSize);
        random.FillUniform(_parameters.Value(_context), -bound, bound);
    }

    /// <summary>pooled [B, W] (row stride <paramref name="stride"/>, starting at column <paramref name="column"/>) from y [N, W].</summary>
    public void Forward(RaggedBatch batch, ReadOnlySpan<float> y, Span<float> pooled, int stride, int column)
    {
        int n = batch.TotalSteps, w = InputSize, a = AttentionSize;
        var u = Workspace.Ensure(ref _u, n * a);
        var alpha = Workspace.Ensure(ref _alpha, n);
        y.Slice(0, n * w).CopyTo(Workspace.Ensure(ref _y, n * w));
        _projection.Forward(n, y, u);
        System.Numerics.Tensors.TensorPrimitives.Tanh(u, u);
        ReadOnlySpan<float> context = _parameters.Value(_context);
        for (int row = 0; row < n; row++)
            alpha[row] = System.Numerics.Tensors.TensorPrimitives.Dot(u.Slice(row * a, a), context);
        for (int j = 0; j < batch.BatchSize; j++)
        {
            int length = batch.SortedLengths[j];
            float max = float.NegativeInfinity;
            for (int t = 0; t < length; t++) max = MathF.Max(max, alpha[batch.Row(t, j)]);
            float sum = 0;
            for (int t = 0; t < length; t++)
            {
                int row = batch.Row(t, j);
                float e = MathF.Exp(alpha[row] - max);
                alpha[row] = e;
                sum += e;
            }
            var dst = pooled.Slice(j * stride + column, w);
            dst.Clear();
            float inverse = 1f / sum;
            for (int t = 0; t < length; t++)
            {
                int row = batch.Row(t, j);
                alpha[row] *= inverse;
                System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(y.Slice(row * w, w), alpha[row], dst, dst);
            }
        }
    }

    /// <summary>
    /// dY [N, W] += gradient given dPooled [B, W] (stride and column as in <see cref="Forward"/>); the parameters'
    /// gradients are added to. For the last <see cref="Forward"/>.
    /// </summary>
    public void Backward(RaggedBatch batch, ReadOnlySpan<float> dPooled, int stride, int column, Span<float> dY)
    {
        int n = batch.TotalSteps, w = InputSize, a = AttentionSize;
        ReadOnlySpan<float> y = _y.AsSpan(0, n * w);
        var u = _u.AsSpan(0, n * a);
        var alpha = _alpha.AsSpan(0, n);
        var dScore = Workspace.Ensure(ref _dAlpha, n);
        for (int j = 0; j < batch.BatchSize; j++)
        {
            var g = dPooled.Slice(j * stride + column, w);
            int length = batch.SortedLengths[j];
            // dα_t = g·y_t; dy_t += α_t g; de_t = α_t (dα_t − Σ_s α_s dα_s)
            float weighted = 0;
            for (int t = 0; t < length; t++)
            {
                int row = batch.Row(t, j);
                var yRow = y.Slice(row * w, w);
                float d = System.Numerics.Tensors.TensorPrimitives.Dot(g, yRow);
                dScore[row] = d;
                weighted += alpha[row] * d;
                var dyRow = dY.Slice(row * w, w);
                System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(g, alpha[row], dyRow, dyRow);
            }
            for (int t = 0; t < length; t++)
            {
                int row = batch.Row(t, j);
                dScore[row] = alpha[row] * (dScore[row] - weighted);
            }
        }
        // dc += Σ_rows de·u; du = de·c; dz = du ⊙ (1 − u²); then the projection's backward adds dW, db and dY += dz·W.
        var dContext = _parameters.Gradient(_context);
        ReadOnlySpan<float> context = _parameters.Value(_context);
        var dz = Workspace.Ensure(ref _dU, n * a);
        for (int row = 0; row < n; row++)
        {
            var uRow = u.Slice(row * a, a);
            System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(uRow, dScore[row], dContext, dContext);
            var dzRow = dz.Slice(row * a, a);
            for (int k = 0; k < a; k++)
                dzRow[k] = dScore[row] * context[k] * (1f - uRow[k] * uRow[k]);
        }
        _projection.Backward(n, y, dz, dY, accumulate: true);
    }
}
