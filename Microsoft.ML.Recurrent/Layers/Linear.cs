using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Kernels;

namespace Microsoft.ML.Recurrent.Layers;

/// <summary>y [B, O] = x [B, F] · Wᵀ + b, with weight [O, F] and bias [O] (PyTorch <c>nn.Linear</c>).</summary>
internal sealed class Linear
{
    private readonly ParameterSet _parameters;
    private readonly Parameter _weight, _bias;
    private readonly bool _tied;

    /// <summary>Input width F.</summary>
    public int InputSize { get; }

    /// <summary>Output width O.</summary>
    public int OutputSize { get; }

    /// <summary>Registers <c>{prefix}weight</c> [O, F] and <c>{prefix}bias</c> [O].</summary>
    public Linear(ParameterSet parameters, string prefix, int inputSize, int outputSize)
    {
        if (inputSize <= 0) throw new ArgumentOutOfRangeException(nameof(inputSize), inputSize, "The input size must be positive.");
        if (outputSize <= 0) throw new ArgumentOutOfRangeException(nameof(outputSize), outputSize, "The output size must be positive.");
        _parameters = parameters;
        InputSize = inputSize;
        OutputSize = outputSize;
        _weight = parameters.Register($"{prefix}weight", outputSize, inputSize);
        _bias = parameters.Register($"{prefix}bias", outputSize);
    }

    /// <summary>
    /// Weight tying (Press &amp; Wolf 2017; Inan et al. 2017): registers only <c>{prefix}bias</c> [O]; the weight is
    /// <paramref name="sharedWeight"/> [O, F], owned by another layer (an embedding [V, E] read as the output layer
    /// [V, E]). Its gradient here adds to that layer's gradient; <see cref="Initialize"/> leaves it to its owner.
    /// </summary>
    public Linear(ParameterSet parameters, string prefix, Parameter sharedWeight)
    {
        if (sharedWeight.Shape.Length != 2) throw new ArgumentException($"A tied weight must be a matrix; '{sharedWeight.Name}' has rank {sharedWeight.Shape.Length}.", nameof(sharedWeight));
        _parameters = parameters;
        OutputSize = sharedWeight.Shape[0];
        InputSize = sharedWeight.Shape[1];
        _weight = sharedWeight;
        _tied = true;
        _bias = parameters.Register($"{prefix}bias", OutputSize);
    }

    /// <summary>Whether the weight is another layer's (see the tying constructor).</summary>
    public bool Tied => _tied;

    /// <summary>The weight [O, F].</summary>
    public Parameter Weight => _weight;

    /// <summary>PyTorch's default: weight and bias U(−1/√F, 1/√F) (the bias only, when tied).</summary>
    public void Initialize(SeededRandom random)
    {
        float bound = 1f / MathF.Sqrt(InputSize);
        if (!_tied)
            random.FillUniform(_parameters.Value(_weight), -bound, bound);
        random.FillUniform(_parameters.Value(_bias), -bound, bound);
    }

    /// <summary>y [B, O] = x [B, F] · Wᵀ + b.</summary>
    public void Forward(int batchSize, ReadOnlySpan<float> x, Span<float> y)
    {
        Sgemm.Multiply(Transpose.No, Transpose.Yes, batchSize, OutputSize, InputSize, x, InputSize,
            _parameters.Value(_weight), InputSize, y, OutputSize, accumulate: false);
        var bias = _parameters.Value(_bias);
        for (int r = 0; r < batchSize; r++)
            System.Numerics.Tensors.TensorPrimitives.Add(y.Slice(r * OutputSize, OutputSize), bias, y.Slice(r * OutputSize, OutputSize));
    }

    /// <summary>y [O] = 0 · Wᵀ + b = b: the output for an all-zero input row.</summary>
    public void ForwardZero(Span<float> y) => _parameters.Value(_bias).CopyTo(y);

    /// <summary>dW += dyᵀ·x, db += Σ_rows dy, dx (+)= dy·W (dx skipped when empty; overwritten unless <paramref name="accumulate"/>).</summary>
    public void Backward(int batchSize, ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx, bool accumulate = false)
    {
        Sgemm.Multiply(Transpose.Yes, Transpose.No, OutputSize, InputSize, batchSize, dy, OutputSize, x, InputSize,
            _parameters.Gradient(_weight), InputSize, accumulate: true);
        var db = _parameters.Gradient(_bias);
        for (int r = 0; r < batchSize; r++)
            System.Numerics.Tensors.TensorPrimitives.Add(db, dy.Slice(r * OutputSize, OutputSize), db);
        if (!dx.IsEmpty)
            Sgemm.Multiply(Transpose.No, Transpose.No, batchSize, InputSize, OutputSize, dy, OutputSize,
                _parameters.Value(_weight), InputSize, dx, InputSize, accumulate);
    }
}
