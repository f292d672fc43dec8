using System.Numerics;
using System.Runtime.InteropServices;
using Microsoft.ML.Recurrent.Core;

namespace Microsoft.ML.Recurrent.Layers;

/// <summary>
/// Pools the top layer's packed output Y [N, W] (W = D·H) into [B, P] in sorted batch order, P = (number of kinds)·W,
/// using real positions only.
/// </summary>
internal sealed class SequencePooling
{
    private int[] _argMax = []; // [B, W] packed row of each maximum

    /// <summary>Which pieces, concatenated in enum order.</summary>
    public PoolingKind Kinds { get; }

    /// <summary>Hidden width H per direction.</summary>
    public int HiddenSize { get; }

    /// <summary>Directions D.</summary>
    public int NumDirections { get; }

    /// <summary>Input width W = D·H.</summary>
    public int InputSize => HiddenSize * NumDirections;

    /// <summary>Output width P.</summary>
    public int OutputSize => System.Numerics.BitOperations.PopCount((uint)Kinds) * InputSize;

    /// <summary>Creates a pooling over outputs of D directions of width H.</summary>
    public SequencePooling(PoolingKind kinds, int hiddenSize, int numDirections)
    {
        if (kinds == 0 || (kinds & ~(PoolingKind.FinalState | PoolingKind.Mean | PoolingKind.Max)) != 0)
            throw new ArgumentOutOfRangeException(nameof(kinds), kinds, "Choose one or more of FinalState, Mean and Max (InputMean is handled by the network).");
        Kinds = kinds;
        HiddenSize = hiddenSize;
        NumDirections = numDirections;
    }

    /// <summary>
    /// pooled [B, P] from y [N, W]; with <paramref name="stride"/> and <paramref name="offset"/>, into columns
    /// [offset, offset + P) of rows <paramref name="stride"/> wide (a piece of a wider pooled vector).
    /// </summary>
    public void Forward(RaggedBatch batch, ReadOnlySpan<float> y, Span<float> pooled, int stride = 0, int offset = 0)
    {
        int w = InputSize, p = stride > 0 ? stride : OutputSize, h = HiddenSize;
        int column = offset;
        if ((Kinds & PoolingKind.FinalState) != 0)
        {
            for (int j = 0; j < batch.BatchSize; j++)
                for (int d = 0; d < NumDirections; d++)
                {
                    int row = d == 0 ? batch.Row(batch.SortedLengths[j] - 1, j) : j;
                    y.Slice(row * w + d * h, h).CopyTo(pooled.Slice(j * p + column + d * h, h));
                }
            column += w;
        }
        if ((Kinds & PoolingKind.Mean) != 0)
        {
            for (int j = 0; j < batch.BatchSize; j++)
            {
                var dst = pooled.Slice(j * p + column, w);
                dst.Clear();
                for (int t = 0; t < batch.SortedLengths[j]; t++)
                    System.Numerics.Tensors.TensorPrimitives.Add(dst, y.Slice(batch.Row(t, j) * w, w), dst);
                System.Numerics.Tensors.TensorPrimitives.Multiply(dst, 1f / batch.SortedLengths[j], dst);
            }
            column += w;
        }
        if ((Kinds & PoolingKind.Max) != 0)
        {
            var arg = Workspace.Ensure(ref _argMax, batch.BatchSize * w);
            for (int j = 0; j < batch.BatchSize; j++)
            {
                var dst = pooled.Slice(j * p + column, w);
                var argRow = arg.Slice(j * w, w);
                int first = batch.Row(0, j);
                y.Slice(first * w, w).CopyTo(dst);
                argRow.Fill(first);
                for (int t = 1; t < batch.SortedLengths[j]; t++)
                {
                    int row = batch.Row(t, j);
                    MaxInto(y.Slice(row * w, w), dst, argRow, row);
                }
            }
        }
    }

    /// <summary>
    /// Where src[k] &gt; max[k]: max[k] = src[k] and arg[k] = <paramref name="row"/> — strictly greater, so the first
    /// maximum keeps its row and a NaN never replaces nor is replaced, exactly as the scalar comparison; vectorized with a
    /// compare and two selects (the scalar loop's unpredictable branch cost ≈ 12 % of scoring the default network).
    /// </summary>
    private static void MaxInto(ReadOnlySpan<float> src, Span<float> max, Span<int> arg, int row)
    {
        int k = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var srcV = MemoryMarshal.Cast<float, Vector<float>>(src);
            var maxV = MemoryMarshal.Cast<float, Vector<float>>(max);
            var argV = MemoryMarshal.Cast<int, Vector<int>>(arg);
            var rowV = new Vector<int>(row);
            for (int v = 0; v < srcV.Length; v++)
            {
                var greater = Vector.GreaterThan(srcV[v], maxV[v]);
                maxV[v] = Vector.ConditionalSelect(greater, srcV[v], maxV[v]);
                argV[v] = Vector.ConditionalSelect(greater, rowV, argV[v]);
            }
            k = srcV.Length * Vector<float>.Count;
        }
        for (; k < src.Length; k++)
            if (src[k] > max[k]) { max[k] = src[k]; arg[k] = row; }
    }

    /// <summary>dY [N, W] += gradient of the pooling given dPooled [B, P] (stride and offset as in <see cref="Forward"/>).</summary>
    public void Backward(RaggedBatch batch, ReadOnlySpan<float> dPooled, Span<float> dY, int stride = 0, int offset = 0)
    {
        int w = InputSize, p = stride > 0 ? stride : OutputSize, h = HiddenSize;
        int column = offset;
        if ((Kinds & PoolingKind.FinalState) != 0)
        {
            for (int j = 0; j < batch.BatchSize; j++)
                for (int d = 0; d < NumDirections; d++)
                {
                    int row = d == 0 ? batch.Row(batch.SortedLengths[j] - 1, j) : j;
                    var dst = dY.Slice(row * w + d * h, h);
                    System.Numerics.Tensors.TensorPrimitives.Add(dst, dPooled.Slice(j * p + column + d * h, h), dst);
                }
            column += w;
        }
        if ((Kinds & PoolingKind.Mean) != 0)
        {
            for (int j = 0; j < batch.BatchSize; j++)
            {
                var src = dPooled.Slice(j * p + column, w);
                float scale = 1f / batch.SortedLengths[j];
                for (int t = 0; t < batch.SortedLengths[j]; t++)
                {
                    var dst = dY.Slice(batch.Row(t, j) * w, w);
                    System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(src, scale, dst, dst);
                }
            }
            column += w;
        }
        if ((Kinds & PoolingKind.Max) != 0)
        {
            for (int j = 0; j < batch.BatchSize; j++)
                for (int k = 0; k < w; k++)
                    dY[_argMax[j * w + k] * w + k] += dPooled[j * p + column + k];
        }
    }
}
