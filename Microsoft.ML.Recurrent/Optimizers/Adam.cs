using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Microsoft.ML.Recurrent.Optimizers;

/// <summary>
/// Adam (Kingma &amp; Ba) with PyTorch's semantics. With <c>decoupled</c> false, weight decay is L2 added to the
/// gradient (<c>torch.optim.Adam</c>); with true, it is AdamW's decoupled decay p ← p − lr·λ·p (<c>torch.optim.AdamW</c>).
/// <code>
///   m ← β1·m + (1−β1)·g      v ← β2·v + (1−β2)·g²
///   p ← p − lr · (m / (1−β1ᵗ)) / (√(v / (1−β2ᵗ)) + ε)
/// </code>
/// </summary>
internal sealed class Adam : Optimizer
{
    private readonly float[] _m, _v;

    /// <summary>β1.</summary>
    public float Beta1 { get; }
    /// <summary>β2.</summary>
    public float Beta2 { get; }
    /// <summary>ε.</summary>
    public float Epsilon { get; }
    /// <summary>Weight decay λ.</summary>
    public float WeightDecay { get; }
    /// <summary>Whether weight decay is decoupled (AdamW).</summary>
    public bool Decoupled { get; }

    /// <summary>Creates the optimizer for <paramref name="length"/> parameters.</summary>
    public Adam(int length, float learningRate, float beta1 = 0.9f, float beta2 = 0.999f, float epsilon = 1e-8f,
        float weightDecay = 0f, bool decoupled = false)
    {
        if (!(learningRate > 0)) throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "The learning rate must be positive.");
        if (!(beta1 >= 0 && beta1 < 1)) throw new ArgumentOutOfRangeException(nameof(beta1), beta1, "β1 must be in [0, 1).");
        if (!(beta2 >= 0 && beta2 < 1)) throw new ArgumentOutOfRangeException(nameof(beta2), beta2, "β2 must be in [0, 1).");
        if (!(weightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "Weight decay must not be negative.");
        _m = new float[length];
        _v = new float[length];
        LearningRate = learningRate;
        Beta1 = beta1;
        Beta2 = beta2;
        Epsilon = epsilon;
        WeightDecay = weightDecay;
        Decoupled = decoupled;
    }

    /// <inheritdoc/>
    public override void Step(Span<float> parameters, ReadOnlySpan<float> gradients)
    {
        StepCount++;
        float lr = LearningRate, b1 = Beta1, b2 = Beta2, eps = Epsilon, wd = WeightDecay;
        // Bias corrections in double, as PyTorch computes them from Python floats.
        float correction1 = (float)(1 - Math.Pow(b1, StepCount));
        float sqrtCorrection2 = (float)Math.Sqrt(1 - Math.Pow(b2, StepCount));
        float stepSize = lr / correction1;
        int i = 0;
        if (Vector512.IsHardwareAccelerated && parameters.Length >= 16)
        {
            // Same operations in the same order as the scalar loop below, 16 lanes at a time.
            ref float pRef = ref MemoryMarshal.GetReference(parameters);
            ref readonly float gRef = ref MemoryMarshal.GetReference(gradients);
            ref float mRef = ref MemoryMarshal.GetArrayDataReference(_m);
            ref float vRef = ref MemoryMarshal.GetArrayDataReference(_v);
            Vector512<float> b1v = Vector512.Create(b1), b2v = Vector512.Create(b2), c1 = Vector512.Create(1 - b1), c2 = Vector512.Create(1 - b2);
            Vector512<float> decay = Vector512.Create(1 - lr * wd), wdv = Vector512.Create(wd), stepv = Vector512.Create(stepSize);
            Vector512<float> sqrtC2 = Vector512.Create(sqrtCorrection2), epsv = Vector512.Create(eps);
            for (; i + 16 <= parameters.Length; i += 16)
            {
                nuint k = (nuint)i;
                var p = Vector512.LoadUnsafe(ref pRef, k);
                var g = Vector512.LoadUnsafe(in gRef, k);
                if (Decoupled) p *= decay;
                else g += wdv * p;
                var m = b1v * Vector512.LoadUnsafe(ref mRef, k) + c1 * g;
                var v = b2v * Vector512.LoadUnsafe(ref vRef, k) + c2 * g * g;
                m.StoreUnsafe(ref mRef, k);
                v.StoreUnsafe(ref vRef, k);
                (p - stepv * m / (Vector512.Sqrt(v) / sqrtC2 + epsv)).StoreUnsafe(ref pRef, k);
            }
        }
        for (; i < parameters.Length; i++)
        {
            float p = parameters[i], g = gradients[i];
            if (Decoupled) p *= 1 - lr * wd;
            else g += wd * p;
            float m = _m[i] = b1 * _m[i] + (1 - b1) * g;
            float v = _v[i] = b2 * _v[i] + (1 - b2) * g * g;
            parameters[i] = p - stepSize * m / (MathF.Sqrt(v) / sqrtCorrection2 + eps);
        }
    }
}
