namespace Microsoft.ML.Recurrent.Interop;

/// <summary>
/// What a safetensors file holds: its tensors by name and the string pairs of its <c>__metadata__</c>. Made by
/// <see cref="SafetensorsReader"/>, written by <see cref="SafetensorsWriter"/>.
/// </summary>
internal sealed class SafetensorsFile
{
    /// <summary>The tensors, by name (ordinal).</summary>
    public IReadOnlyDictionary<string, SafetensorsTensor> Tensors { get; }

    /// <summary>The <c>__metadata__</c> pairs (empty when the file has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Where the tensors came from, for messages (a file name, or "stream").</summary>
    public string Source { get; }

    public SafetensorsFile(IReadOnlyDictionary<string, SafetensorsTensor> tensors, IReadOnlyDictionary<string, string> metadata, string source)
    {
        Tensors = tensors;
        Metadata = metadata;
        Source = source;
    }
}
