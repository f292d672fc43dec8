using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TorchParity;

/// <summary>Optimizer and gradient-clipping fixtures with fixed, hand-written inputs.</summary>
internal static class Optim
{
    private static readonly float[] P0 = [0.5f, -0.3f, 1.2f, 0.0f, -1.5f, 0.25f, 2.0f, -0.8f, 0.1f, -0.05f];

    private static readonly float[][] Grads =
    [
        [0.1f, -0.2f, 0.3f, 0.05f, -0.5f, 1.0f, -0.01f, 0.0f, 2.5f, -0.3f],
        [-0.4f, 0.1f, 0.2f, -0.05f, 0.6f, -1.0f, 0.02f, 0.3f, -1.5f, 0.0f],
        [0.25f, 0.25f, -0.1f, 0.0f, 0.1f, 0.5f, -0.03f, -0.2f, 0.7f, 0.4f],
    ];

    public static JObj Fixture(string kind, long seed)
    {
        torch.manual_seed(seed); // unused (all inputs are fixed) but recorded for uniformity
        var p = new Parameter(tensor(P0));
        var hyper = new JObj();
        Func<OptimizerHelper> make;
        switch (kind)
        {
            case "adam":
                hyper.Add("lr", 0.01).Add("beta1", 0.9).Add("beta2", 0.999).Add("eps", 1e-8).Add("weight_decay", 0.1).Add("amsgrad", false).Add("maximize", false)
                    .Add("note", "torch.optim.Adam: L2 penalty added to the gradient (g += weight_decay * p)");
                make = () => optim.Adam([p], lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1);
                break;
            case "adamw":
                hyper.Add("lr", 0.01).Add("beta1", 0.9).Add("beta2", 0.999).Add("eps", 1e-8).Add("weight_decay", 0.1).Add("amsgrad", false).Add("maximize", false)
                    .Add("note", "torch.optim.AdamW: decoupled decay applied first (p *= 1 - lr * weight_decay)");
                make = () => optim.AdamW([p], lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1);
                break;
            case "sgd_momentum":
                hyper.Add("lr", 0.1).Add("momentum", 0.9).Add("dampening", 0.0).Add("nesterov", false).Add("weight_decay", 0.01).Add("maximize", false)
                    .Add("note", "torch.optim.SGD: g += weight_decay * p; buf = g at step 1, else momentum * buf + (1 - dampening) * g; p -= lr * buf");
                make = () => optim.SGD([p], 0.1, momentum: 0.9, dampening: 0, weight_decay: 0.01, nesterov: false);
                break;
            default:
                throw new ArgumentException(kind);
        }

        OptimizerHelper opt = make();
        var after = new List<JTensor>();
        for (int s = 0; s < Grads.Length; s++)
        {
            opt.zero_grad();
            (p * tensor(Grads[s])).sum().backward(); // d/dp Σ p·g = g exactly
            Check.That(Check.Same(p.grad!, tensor(Grads[s])), $"optim {kind}: step {s + 1} gradient is exactly g");
            opt.step();
            after.Add(JTensor.From(p));
            Check.Close(p, tensor(ReferenceAfter(kind, s + 1)).to_type(ScalarType.Float64), $"optim {kind}: step {s + 1} vs float64 reference", atol: 1e-6, rtol: 1e-6);
        }

        return new JObj()
            .Add("generator", Program.GeneratorName)
            .Add("seed", seed)
            .Add("optimizer", kind switch { "adam" => "Adam", "adamw" => "AdamW", _ => "SGD" })
            .Add("hyperparameters", hyper)
            .Add("p0", new JTensor([P0.Length], P0))
            .Add("grads", Grads.Select(g => new JTensor([g.Length], g)).ToList())
            .Add("params_after", after);
    }

    /// <summary>Float64 re-implementation of the PyTorch update rules, for a sanity check only.</summary>
    private static double[] ReferenceAfter(string kind, int steps)
    {
        int n = P0.Length;
        double[] p = P0.Select(x => (double)x).ToArray();
        double[] m = new double[n], v = new double[n];
        for (int t = 1; t <= steps; t++)
        {
            for (int i = 0; i < n; i++)
            {
                double g = Grads[t - 1][i];
                switch (kind)
                {
                    case "adam":
                    case "adamw":
                    {
                        const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1;
                        if (kind == "adam")
                        {
                            g += wd * p[i];
                        }
                        else
                        {
                            p[i] *= 1 - (lr * wd);
                        }

                        m[i] = (b1 * m[i]) + ((1 - b1) * g);
                        v[i] = (b2 * v[i]) + ((1 - b2) * g * g);
                        double bc1 = 1 - Math.Pow(b1, t), bc2 = 1 - Math.Pow(b2, t);
                        p[i] -= lr / bc1 * m[i] / ((Math.Sqrt(v[i]) / Math.Sqrt(bc2)) + eps);
                        break;
                    }

                    case "sgd_momentum":
                    {
                        const double lr = 0.1, mom = 0.9, wd = 0.01;
                        g += wd * p[i];
                        m[i] = t == 1 ? g : (mom * m[i]) + g;
                        p[i] -= lr * m[i];
                        break;
                    }
                }
            }
        }

        return p;
    }

    public static JObj ClipGradNorm(long seed)
    {
        const double maxNorm = 1.0;
        torch.manual_seed(seed);
        var a = new Parameter(randn(3, 4));
        var b = new Parameter(randn(5));
        Tensor ga = randn(3, 4), gb = randn(5);
        ((a * ga).sum() + (b * gb).sum()).backward();
        Check.That(Check.Same(a.grad!, ga) && Check.Same(b.grad!, gb), "clip: gradients set exactly");

        double expectedNorm = Math.Sqrt(ga.to_type(ScalarType.Float64).pow(2).sum().item<double>() + gb.to_type(ScalarType.Float64).pow(2).sum().item<double>());
        Check.That(expectedNorm > maxNorm, "clip: total norm exceeds max_norm so clipping is exercised");

        double total = nn.utils.clip_grad_norm_([a, b], maxNorm, 2.0);
        Check.That(Math.Abs(total - expectedNorm) <= 1e-5 * expectedNorm, $"clip: total norm {total} vs reference {expectedNorm}");
        double coef = maxNorm / (expectedNorm + 1e-6);
        Check.Close(a.grad!, ga.to_type(ScalarType.Float64) * coef, "clip: clipped grad a vs reference", atol: 1e-7, rtol: 1e-6);
        Check.Close(b.grad!, gb.to_type(ScalarType.Float64) * coef, "clip: clipped grad b vs reference", atol: 1e-7, rtol: 1e-6);

        return new JObj()
            .Add("generator", Program.GeneratorName)
            .Add("seed", seed)
            .Add("max_norm", maxNorm)
            .Add("norm_type", 2.0)
            .Add("note", "torch.nn.utils.clip_grad_norm_: total = ||concat(grads)||_2; if total > max_norm, grads *= max_norm / (total + 1e-6)")
            .Add("grads", new List<JTensor> { JTensor.From(ga), JTensor.From(gb) })
            .Add("total_norm", total)
            .Add("clipped_grads", new List<JTensor> { JTensor.From(a.grad!), JTensor.From(b.grad!) });
    }
}
