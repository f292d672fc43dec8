using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.ML.Recurrent.Kernels;

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
    /// <remarks>
    /// Runs at the vector width of <see cref="FusedKernels.Current"/>, tail included, with the operations of
    /// <see cref="StepReference"/> in the same order: every path gives its bits exactly.
    /// </remarks>
    public override void Step(Span<float> parameters, ReadOnlySpan<float> gradients)
    {
        CheckLengths(parameters, gradients);
        StepCount++;
        switch (FusedKernels.Current())
        {
            case KernelPath.Avx512: Update<Simd512>(parameters, gradients); break;
            case KernelPath.Avx2: Update<Simd256>(parameters, gradients); break;
            default: Update<Simd128>(parameters, gradients); break;
        }
    }

    /// <summary>The length guard of every step, before any unchecked access: one moment pair per parameter, one gradient per parameter.</summary>
    private void CheckLengths(ReadOnlySpan<float> parameters, ReadOnlySpan<float> gradients)
    {
        if (parameters.Length != _m.Length)
            throw new ArgumentException($"parameters holds {parameters.Length} floats but this optimizer was created for {_m.Length}.", nameof(parameters));
        if (gradients.Length != parameters.Length)
            throw new ArgumentException($"gradients holds {gradients.Length} floats but parameters holds {parameters.Length}.", nameof(gradients));
    }

    /// <summary>Bias corrections of the current step: lr / (1 − β1ᵗ) and √(1 − β2ᵗ), in double as PyTorch computes them from Python floats.</summary>
    private (float StepSize, float SqrtCorrection2) Corrections()
    {
        float correction1 = (float)(1 - Math.Pow(Beta1, StepCount));
        float sqrtCorrection2 = (float)Math.Sqrt(1 - Math.Pow(Beta2, StepCount));
        return (LearningRate / correction1, sqrtCorrection2);
    }

    private void Update<TV>(Span<float> parameters, ReadOnlySpan<float> gradients) where TV : struct, ISimd<TV>
    {
        for (int g = 0; g < GroupCount; g++)
        {
            var (from, to, scale) = Group(g, parameters.Length);
            Update<TV>(parameters, gradients, from, to, scale);
        }
    }

    /// <summary>Parameters [from, to) at learning rate × <paramref name="scale"/>.</summary>
    private void Update<TV>(Span<float> parameters, ReadOnlySpan<float> gradients, int from, int n, float scale) where TV : struct, ISimd<TV>
    {
        var (stepSize, sqrtCorrection2) = Corrections();
        float lr = LearningRate, b1 = Beta1, b2 = Beta2, wd = WeightDecay;
        if (scale != 1f)
        {
            stepSize *= scale;
            lr *= scale;
        }
        bool decoupled = Decoupled;
        // from ≤ n ≤ parameters.Length, which CheckLengths checked against _m, _v and gradients
        ref float pRef = ref MemoryMarshal.GetReference(parameters);
        ref readonly float gRef = ref MemoryMarshal.GetReference(gradients);
        ref float mRef = ref MemoryMarshal.GetArrayDataReference(_m);
        ref float vRef = ref MemoryMarshal.GetArrayDataReference(_v);
        int i = from;
        for (; i + TV.Count <= n; i += TV.Count)
        {
            UpdateAt(ref pRef, in gRef, ref mRef, ref vRef, (nuint)i, decoupled,
                TV.Create(b1), TV.Create(1 - b1), TV.Create(b2), TV.Create(1 - b2), TV.Create(1 - lr * wd), TV.Create(wd),
                TV.Create(stepSize), TV.Create(sqrtCorrection2), TV.Create(Epsilon));
        }
        for (; i < n; i++)
        {
            UpdateAt(ref pRef, in gRef, ref mRef, ref vRef, (nuint)i, decoupled,
                Simd1.Create(b1), Simd1.Create(1 - b1), Simd1.Create(b2), Simd1.Create(1 - b2), Simd1.Create(1 - lr * wd), Simd1.Create(wd),
                Simd1.Create(stepSize), Simd1.Create(sqrtCorrection2), Simd1.Create(Epsilon));
        }
    }

    /// <summary>Parameters i … i + width − 1; the scalar loop of <see cref="StepReference"/>, lane-wise.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void UpdateAt<TV>(ref float pRef, ref readonly float gRef, ref float mRef, ref float vRef, nuint i, bool decoupled,
        TV b1, TV c1, TV b2, TV c2, TV decay, TV wd, TV stepSize, TV sqrtCorrection2, TV eps) where TV : struct, ISimd<TV>
    {
        TV p = TV.Load(in pRef, i);
        TV g = TV.Load(in gRef, i);
        if (decoupled) p *= decay;
        else g += wd * p;
        TV m = b1 * TV.Load(in mRef, i) + c1 * g;
        TV v = b2 * TV.Load(in vRef, i) + c2 * g * g;
        TV.Store(m, ref mRef, i);
        TV.Store(v, ref vRef, i);
        TV.Store(p - stepSize * m / (TV.Sqrt(v) / sqrtCorrection2 + eps), ref pRef, i);
    }

    /// <summary>
    /// The same step written plainly, one parameter at a time: the scalar reference the vector paths are tested against
    /// (bitwise, since nothing here is fused or transcendental). Not used in training.
    /// </summary>
    internal void StepReference(Span<float> parameters, ReadOnlySpan<float> gradients)
    {
        CheckLengths(parameters, gradients);
        StepCount++;
        var (baseStepSize, sqrtCorrection2) = Corrections();
        float b1 = Beta1, b2 = Beta2, eps = Epsilon, wd = WeightDecay;
        for (int group = 0; group < GroupCount; group++)
        {
            var (from, to, scale) = Group(group, parameters.Length);
            float stepSize = scale != 1f ? baseStepSize * scale : baseStepSize, lr = scale != 1f ? LearningRate * scale : LearningRate;
            for (int i = from; i < to; i++)
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
}
