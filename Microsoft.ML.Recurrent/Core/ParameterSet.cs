namespace Microsoft.ML.Recurrent.Core;

/// <summary>One named tensor inside a <see cref="ParameterSet"/>: a view of the flat buffers.</summary>
/// <param name="Name">PyTorch-style name, e.g. <c>lstm.weight_ih_l0_reverse</c>.</param>
/// <param name="Offset">First element in the flat buffers.</param>
/// <param name="Shape">Row-major shape; the product is the element count.</param>
internal sealed record Parameter(string Name, int Offset, int[] Shape)
{
    /// <summary>Number of elements.</summary>
    public int Length { get; } = Shape.Aggregate(1, (a, b) => checked(a * b));
}

/// <summary>
/// All parameters of a network in one flat buffer, with gradients in a second buffer of the same layout
/// (llm.c style): optimizers, clipping and serialization see one array; layers see named views.
/// Layers register their tensors while the network is being built, then <see cref="Allocate"/> creates the buffers.
/// </summary>
internal sealed class ParameterSet
{
    private readonly List<Parameter> _parameters = new();
    private readonly Dictionary<string, Parameter> _byName = new(StringComparer.Ordinal);
    private int _length;

    /// <summary>Parameter values, [Length]. Empty until <see cref="Allocate"/>.</summary>
    public float[] Values { get; private set; } = Array.Empty<float>();

    /// <summary>Gradients, same layout as <see cref="Values"/>; backward passes add into it.</summary>
    public float[] Gradients { get; private set; } = Array.Empty<float>();

    /// <summary>Total number of scalars.</summary>
    public int Length => _length;

    /// <summary>Registered tensors in registration order.</summary>
    public IReadOnlyList<Parameter> Parameters => _parameters;

    /// <summary>Reserves a named tensor of the given shape.</summary>
    public Parameter Register(string name, params int[] shape)
    {
        if (Values.Length != 0)
            throw new InvalidOperationException("Parameters cannot be registered after allocation.");
        if (_byName.ContainsKey(name))
            throw new ArgumentException($"Parameter '{name}' is registered twice.", nameof(name));
        var p = new Parameter(name, _length, (int[])shape.Clone());
        _length = checked(_length + p.Length);
        _parameters.Add(p);
        _byName.Add(name, p);
        return p;
    }

    /// <summary>
    /// Creates the value buffer (zeros), or adopts <paramref name="sharedValues"/> so several networks (e.g. one per
    /// inference cursor) read the same weights; the gradient buffer only when <paramref name="withGradients"/>.
    /// </summary>
    public void Allocate(float[]? sharedValues = null, bool withGradients = true)
    {
        if (sharedValues is not null && sharedValues.Length != _length)
            throw new ArgumentException($"Expected {_length} shared values, got {sharedValues.Length}.", nameof(sharedValues));
        Values = sharedValues ?? new float[_length];
        Gradients = withGradients ? new float[_length] : Array.Empty<float>();
    }

    /// <summary>The parameter with this name.</summary>
    public Parameter this[string name] => _byName.TryGetValue(name, out var p) ? p : throw new KeyNotFoundException($"No parameter named '{name}'.");

    /// <summary>Values of one tensor.</summary>
    public Span<float> Value(Parameter p) => Values.AsSpan(p.Offset, p.Length);

    /// <summary>Gradient of one tensor.</summary>
    public Span<float> Gradient(Parameter p) => Gradients.AsSpan(p.Offset, p.Length);

    /// <summary>Sets all gradients to zero.</summary>
    public void ZeroGradients() => Array.Clear(Gradients);
}
