using Microsoft.ML.Recurrent;
using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Kernels;
using Microsoft.ML.Recurrent.Layers;
using Microsoft.ML.Recurrent.Optimizers;

namespace Recurrent.Bench;

/// <summary>Our side of each case. Buffers are allocated once; the timed bodies reuse them.</summary>
internal sealed class OursLstm
{
    private readonly Fixture _f;
    private readonly float[] _packedX, _packedDy;
    private readonly float[] _logits, _probs, _dLogits;
    private Adam? _adam;
    private readonly Microsoft.ML.Recurrent.Model.RecurrentNetwork _inference;

    /// <summary>Threads of the training network and of the inference copy.</summary>
    public int Threads
    {
        set
        {
            _f.Network.Threads = value;
            _inference.Threads = value;
        }
    }

    /// <summary>Top-layer output [B, T, D·H], batch-first (inference cases).</summary>
    public float[] Output { get; }
    public float LastLoss { get; private set; }
    public float[] Logits => _logits;

    public OursLstm(Fixture f)
    {
        _f = f;
        var s = f.Shape;
        _packedX = new float[s.B * s.T * s.E];
        _packedDy = new float[f.OutputGradient.Length];
        Output = new float[s.B * s.T * s.OutputWidth];
        _logits = new float[s.B * Fixture.Classes];
        _probs = new float[_logits.Length];
        _dLogits = new float[_logits.Length];
        // Scoring uses an inference copy (weights frozen, packed once), as the ML.NET transformer does.
        _inference = f.Network.CreateInferenceSibling();
    }

    /// <summary>Inference: pack [B,T,E] → stack forward → unpack the top layer's output to [B,T,D·H].</summary>
    public void Infer()
    {
        var s = _f.Shape;
        _f.Batch.PackPadded(_f.X, s.T, s.E, _packedX);
        var y = _inference.Stack.Forward(_f.Batch, _packedX, random: null);
        _f.Batch.UnpackPadded(y, s.T, s.OutputWidth, Output);
    }

    /// <summary>Forward + backward of the stack from the fixed upstream gradient (parameter gradients only, no dX).</summary>
    public void ForwardBackward()
    {
        var s = _f.Shape;
        var stack = _f.Network.Stack;
        _f.Network.Parameters.ZeroGradients();
        _f.Batch.PackPadded(_f.X, s.T, s.E, _packedX);
        stack.Forward(_f.Batch, _packedX, random: null);
        _f.Batch.PackPadded(_f.OutputGradient, s.T, s.OutputWidth, _packedDy);
        stack.Backward(_f.Batch, _packedX, _packedDy, default, default, default);
    }

    /// <summary>Forward, head, cross-entropy and backward of the whole classifier (gradients left in the parameter set).</summary>
    public void ClassifierForwardBackward()
    {
        var net = _f.Network;
        net.Parameters.ZeroGradients();
        net.Forward(_f.Batch, (ReadOnlySpan<float>)_f.X, _logits);
        LastLoss = SoftmaxCrossEntropy.Forward(_f.Shape.B, Fixture.Classes, _logits, _f.Labels, default, default, _probs, _dLogits);
        net.Backward(_f.Batch, default, _dLogits);
    }

    /// <summary>One Adam step (lr 1e-3, PyTorch defaults otherwise) on the current gradients.</summary>
    public void AdamStep()
    {
        var p = _f.Network.Parameters;
        _adam ??= new Adam(p.Length, learningRate: 1e-3f);
        _adam.Step(p.Values, p.Gradients);
    }

    /// <summary>A whole training step.</summary>
    public void TrainStep()
    {
        ClassifierForwardBackward();
        AdamStep();
    }
}

/// <summary>Our SGEMM on row-major square matrices.</summary>
internal sealed class OursGemm(int n, float[] a, float[] b)
{
    public float[] C { get; } = new float[n * n];

    public void Run(int threads) =>
        Sgemm.Multiply(Transpose.No, Transpose.No, n, n, n, a, n, b, n, C, n, accumulate: false, maxThreads: threads);
}
