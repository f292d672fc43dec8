using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.ML.Data;

namespace Microsoft.ML.Recurrent;

/// <summary>
/// SHA-256 of a key column's key values (its vocabulary: the token behind each key, in key order). Recorded at
/// training and compared when the model binds to a schema, so scoring a column whose keys mean other tokens — a
/// featurizer fitted on other data, or a corrupted vocabulary entry in the same zip — is a clear error instead of
/// silently wrong predictions.
/// </summary>
internal static class VocabularyHash
{
    /// <summary>Bytes in a hash.</summary>
    public const int Size = 32;

    /// <summary>The hash of <paramref name="column"/>'s KeyValues annotation, or null when it has none.</summary>
    public static byte[]? Of(DataViewSchema.Column column)
    {
        var annotation = column.Annotations.Schema.GetColumnOrNull(AnnotationUtils.Kinds.KeyValues);
        if (annotation is not { Type: VectorDataViewType vector })
            return null;
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var item = vector.ItemType;
        Append(hash, item.RawType.FullName ?? item.ToString());
        if (item is TextDataViewType)
        {
            VBuffer<ReadOnlyMemory<char>> values = default;
            column.Annotations.GetValue(AnnotationUtils.Kinds.KeyValues, ref values);
            Append(hash, values.Length.ToString(CultureInfo.InvariantCulture));
            foreach (var value in values.DenseValues())
                Append(hash, value.Span);
        }
        else
        {
            // Other key value types (numbers, Booleans): their invariant-culture text.
            var method = typeof(VocabularyHash).GetMethod(nameof(AppendValues), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!;
            method.MakeGenericMethod(item.RawType).Invoke(null, [hash, column]);
        }
        return hash.GetHashAndReset();
    }

    private static void AppendValues<T>(IncrementalHash hash, DataViewSchema.Column column)
    {
        VBuffer<T> values = default;
        column.Annotations.GetValue(AnnotationUtils.Kinds.KeyValues, ref values);
        Append(hash, values.Length.ToString(CultureInfo.InvariantCulture));
        foreach (var value in values.DenseValues())
            Append(hash, Convert.ToString(value, CultureInfo.InvariantCulture) ?? "");
    }

    /// <summary>Appends the UTF-8 bytes of <paramref name="text"/> after their length, so that boundaries are unambiguous.</summary>
    private static void Append(IncrementalHash hash, ReadOnlySpan<char> text)
    {
        int bytes = Encoding.UTF8.GetByteCount(text);
        Span<byte> length = stackalloc byte[sizeof(int)];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(length, bytes);
        hash.AppendData(length);
        byte[] buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(bytes);
        int written = Encoding.UTF8.GetBytes(text, buffer);
        hash.AppendData(buffer, 0, written);
        System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
    }
}
