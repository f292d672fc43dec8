using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using PackedSequence = TorchSharp.torch.nn.utils.rnn.PackedSequence;

namespace TorchParity;

/// <summary>Recurrent-layer fixtures: one torch.nn.LSTM/GRU/RNN on a ragged, unsorted packed batch.</summary>
internal static class Recurrent
{
    public const int InputSize = 5;
    public const int HiddenSize = 4;
    public static readonly int[] Lengths = [3, 6, 1, 4];

    /// <summary>A module plus a uniform way to call it on a packed batch with zero initial state.</summary>
    public sealed record Rnn(nn.Module Module, Func<PackedSequence, (PackedSequence Output, Tensor HN, Tensor? CN)> Run);

    public static Rnn Create(string cell, int inputSize, int hiddenSize, int layers, bool bidirectional)
    {
        int d = bidirectional ? 2 : 1;
        switch (cell)
        {
            case "lstm":
            {
                LSTM m = nn.LSTM(inputSize, hiddenSize, layers, bias: true, batchFirst: true, dropout: 0, bidirectional: bidirectional);
                return new Rnn(m, p =>
                {
                    long b = p.batch_sizes[0].item<long>();
                    Tensor h0 = zeros(layers * d, b, hiddenSize);
                    Tensor c0 = zeros(layers * d, b, hiddenSize);
                    var (o, h, c) = m.call(p, (h0, c0));
                    return (o, h, c);
                });
            }

            case "gru":
            {
                GRU m = nn.GRU(inputSize, hiddenSize, layers, bias: true, batchFirst: true, dropout: 0, bidirectional: bidirectional);
                return new Rnn(m, p =>
                {
                    long b = p.batch_sizes[0].item<long>();
                    var (o, h) = m.call(p, zeros(layers * d, b, hiddenSize));
                    return (o, h, null);
                });
            }

            case "rnn_tanh":
            case "rnn_relu":
            {
                var act = cell == "rnn_tanh" ? nn.NonLinearities.Tanh : nn.NonLinearities.ReLU;
                RNN m = nn.RNN(inputSize, hiddenSize, layers, act, bias: true, batchFirst: true, dropout: 0, bidirectional: bidirectional);
                return new Rnn(m, p =>
                {
                    long b = p.batch_sizes[0].item<long>();
                    var (o, h) = m.call(p, zeros(layers * d, b, hiddenSize));
                    return (o, h, null);
                });
            }

            default:
                throw new ArgumentException($"unknown cell '{cell}'");
        }
    }

    /// <summary>Overwrites every parameter of <paramref name="module"/> (in named_parameters order) with U(-<paramref name="bound"/>, <paramref name="bound"/>).</summary>
    public static void InitUniform(nn.Module module, float bound = 0.6f)
    {
        using var _ = no_grad();
        foreach (var (_, p) in module.named_parameters())
        {
            p.copy_(rand(p.shape) * (2 * bound) - bound);
        }
    }

    /// <summary>[B, T] float mask: 1 at real steps, 0 at padded steps.</summary>
    public static Tensor Mask(int[] lengths, int maxLength)
    {
        var m = new float[lengths.Length * maxLength];
        for (int b = 0; b < lengths.Length; b++)
        {
            for (int t = 0; t < lengths[b]; t++)
            {
                m[(b * maxLength) + t] = 1f;
            }
        }

        return tensor(m, [lengths.Length, maxLength]);
    }

    public static Tensor LengthsTensor(int[] lengths) => tensor(lengths.Select(x => (long)x).ToArray());

    /// <summary>pack (unsorted) → module → pad to max length.</summary>
    public static (Tensor Output, Tensor HN, Tensor? CN) RunPadded(Rnn rnn, Tensor xPadded, int[] lengths, int maxLength)
    {
        PackedSequence packed = nn.utils.rnn.pack_padded_sequence(xPadded, LengthsTensor(lengths), batch_first: true, enforce_sorted: false);
        var (po, hn, cn) = rnn.Run(packed);
        var (output, _) = nn.utils.rnn.pad_packed_sequence(po, batch_first: true, total_length: maxLength);
        return (output, hn, cn);
    }

    /// <summary>The H = 4 fixture of <paramref name="cell"/> (I = 5, lengths [3, 6, 1, 4]).</summary>
    public static JObj Fixture(string cell, bool bidirectional, int layers, long seed) =>
        Fixture(cell, bidirectional, layers, seed, InputSize, HiddenSize, Lengths);

    /// <summary>
    /// One fixture: <paramref name="cell"/> with input size <paramref name="inputSize"/> and hidden size
    /// <paramref name="hiddenSize"/> on an unsorted ragged batch of <paramref name="lengths"/> (T = the longest).
    /// </summary>
    public static JObj Fixture(string cell, bool bidirectional, int layers, long seed, int inputSize, int hiddenSize, int[] lengths)
    {
        int I = inputSize, H = hiddenSize, T = lengths.Max();
        int b = lengths.Length, d = bidirectional ? 2 : 1;

        torch.manual_seed(seed);
        Rnn rnn = Create(cell, I, H, layers, bidirectional);
        // U(-0.6, 0.6) at H = 4; at wider H the same bound would saturate every gate (no gradient left to check) and
        // let the RNN's gradients grow over the steps, so the bound shrinks as 2/√H (PyTorch's default is 1/√H).
        InitUniform(rnn.Module, H == HiddenSize ? 0.6f : 2f / MathF.Sqrt(H));
        var parameters = rnn.Module.named_parameters().ToList();

        Tensor mask = Mask(lengths, T);
        Tensor x = randn(b, T, I).masked_fill(mask.eq(0).unsqueeze(2), 0f).requires_grad_(true); // +0 at padded steps
        Tensor rOut = randn(b, T, d * H);
        Tensor rH = randn(layers * d, b, H);
        Tensor? rC = cell == "lstm" ? randn(layers * d, b, H) : null;

        var (output, hn, cn) = RunPadded(rnn, x, lengths, T);
        Check.Shape(output, [b, T, d * H], "output");
        Check.Shape(hn, [layers * d, b, H], "h_n");
        Tensor loss = (output * rOut).sum() + (hn * rH).sum();
        if (cn is not null)
        {
            Check.Shape(cn, [layers * d, b, H], "c_n");
            loss += (cn * rC!).sum();
        }

        loss.backward();

        string tag = $"{cell}_{(bidirectional ? "bi" : "uni")}_l{layers}" + (H == HiddenSize ? string.Empty : $"_h{H}");
        var gradX = x.grad ?? throw new InvalidOperationException("no grad for input");
        var paramGrads = parameters.Select(p => (p.name, grad: (p.parameter.grad ?? throw new InvalidOperationException($"no grad for {p.name}")).detach().clone())).ToList();

        // ---- sanity checks on the packed path ----
        Check.PaddedZero(output, lengths, $"{tag}: output");
        Check.PaddedZero(gradX, lengths, $"{tag}: grad_input");
        Check.LastStepMatchesHN(output, hn, lengths, layers, d, H, tag);

        // ---- independent reference: per-sequence, step-by-step cell equations, no packing ----
        var named = parameters.ToDictionary(p => p.name, p => (Tensor)p.parameter);
        foreach (var (_, p) in parameters)
        {
            p.grad?.zero_();
        }

        Tensor x2 = x.detach().clone().requires_grad_(true);
        var (mo, mh, mc) = Manual.Forward(cell, named, x2, lengths, layers, bidirectional, H, T);
        Check.Close(mo, output, $"{tag}: output vs manual");
        Check.Close(mh, hn, $"{tag}: h_n vs manual");
        if (cn is not null)
        {
            Check.Close(mc!, cn, $"{tag}: c_n vs manual");
        }

        Tensor mloss = (mo * rOut).sum() + (mh * rH).sum();
        if (mc is not null)
        {
            mloss += (mc * rC!).sum();
        }

        mloss.backward();
        Check.Close(x2.grad!, gradX, $"{tag}: grad_input vs manual");
        foreach (var (name, g) in paramGrads)
        {
            Check.Close(named[name].grad!, g, $"{tag}: grad {name} vs manual");
        }

        // ---- JSON ----
        var json = new JObj()
            .Add("generator", Program.GeneratorName)
            .Add("seed", seed)
            .Add("cell", cell)
            .Add("bidirectional", bidirectional)
            .Add("num_layers", layers)
            .Add("input_size", I)
            .Add("hidden_size", H)
            .Add("batch_size", b)
            .Add("max_length", T)
            .Add("lengths", lengths);
        if (cell is "rnn_tanh" or "rnn_relu")
        {
            json.Add("nonlinearity", cell == "rnn_tanh" ? "tanh" : "relu");
        }

        json.Add("input", JTensor.From(x));
        var pj = new JObj();
        foreach (var (name, p) in parameters)
        {
            pj.Add(name, JTensor.From(p));
        }

        json.Add("parameters", pj)
            .Add("grad_output", JTensor.From(rOut))
            .Add("grad_h_n", JTensor.From(rH));
        if (rC is not null)
        {
            json.Add("grad_c_n", JTensor.From(rC));
        }

        json.Add("output", JTensor.From(output)).Add("h_n", JTensor.From(hn));
        if (cn is not null)
        {
            json.Add("c_n", JTensor.From(cn));
        }

        json.Add("loss", loss.item<float>());
        json.Add("grad_input", JTensor.From(gradX));
        var gj = new JObj();
        foreach (var (name, g) in paramGrads)
        {
            gj.Add(name, JTensor.From(g));
        }

        json.Add("grad_parameters", gj);
        return json;
    }
}

/// <summary>Straightforward per-sequence implementation of PyTorch's cell equations (gate orders: LSTM i,f,g,o; GRU r,z,n).</summary>
internal static class Manual
{
    public static (Tensor Output, Tensor HN, Tensor? CN) Forward(
        string cell, IReadOnlyDictionary<string, Tensor> p, Tensor x, int[] lengths, int layers, bool bidirectional, int hidden, int maxLength)
    {
        int d = bidirectional ? 2 : 1, batch = lengths.Length;
        var hn = new Tensor[layers * d, batch];
        var cn = new Tensor[layers * d, batch];
        var outs = new List<Tensor>();
        for (int b = 0; b < batch; b++)
        {
            int len = lengths[b];
            Tensor seq = x.select(0, b).narrow(0, 0, len);
            for (int l = 0; l < layers; l++)
            {
                var dirOuts = new List<Tensor>();
                for (int dir = 0; dir < d; dir++)
                {
                    string sfx = $"_l{l}" + (dir == 1 ? "_reverse" : string.Empty);
                    Tensor wih = p["weight_ih" + sfx], whh = p["weight_hh" + sfx], bih = p["bias_ih" + sfx], bhh = p["bias_hh" + sfx];
                    Tensor h = zeros(hidden), c = zeros(hidden);
                    var steps = new Tensor[len];
                    for (int k = 0; k < len; k++)
                    {
                        int t = dir == 0 ? k : len - 1 - k;
                        Tensor xt = seq.select(0, t);
                        Tensor gi = wih.matmul(xt) + bih;
                        Tensor gh = whh.matmul(h) + bhh;
                        switch (cell)
                        {
                            case "lstm":
                            {
                                Tensor[] g = (gi + gh).chunk(4);
                                c = (sigmoid(g[1]) * c) + (sigmoid(g[0]) * tanh(g[2]));
                                h = sigmoid(g[3]) * tanh(c);
                                break;
                            }

                            case "gru":
                            {
                                Tensor[] a = gi.chunk(3), r = gh.chunk(3);
                                Tensor rr = sigmoid(a[0] + r[0]);
                                Tensor z = sigmoid(a[1] + r[1]);
                                Tensor n = tanh(a[2] + (rr * r[2]));
                                h = ((1 - z) * n) + (z * h);
                                break;
                            }

                            case "rnn_tanh":
                                h = tanh(gi + gh);
                                break;
                            case "rnn_relu":
                                h = nn.functional.relu(gi + gh);
                                break;
                            default:
                                throw new ArgumentException(cell);
                        }

                        steps[t] = h;
                    }

                    dirOuts.Add(stack(steps));
                    hn[(l * d) + dir, b] = h;
                    cn[(l * d) + dir, b] = c;
                }

                seq = cat(dirOuts, 1);
            }

            outs.Add(len < maxLength ? cat([seq, zeros(maxLength - len, d * hidden)], 0) : seq);
        }

        Tensor output = stack(outs);
        Tensor Gather(Tensor[,] a) => stack(Enumerable.Range(0, layers * d)
            .Select(i => stack(Enumerable.Range(0, batch).Select(b => a[i, b]).ToArray())).ToArray());
        return (output, Gather(hn), cell == "lstm" ? Gather(cn) : null);
    }
}
