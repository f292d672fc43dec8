using System.Globalization;
using System.Text;
using static TorchSharp.torch;

namespace TorchParity;

/// <summary>An insertion-ordered JSON object. Values: string, bool, int, long, float, double, int[]/long[],
/// float[], <see cref="JTensor"/>, <see cref="JObj"/>, or a list of those.</summary>
internal sealed class JObj
{
    private readonly List<KeyValuePair<string, object>> items = [];

    public IReadOnlyList<KeyValuePair<string, object>> Items => this.items;

    public JObj Add(string key, object value)
    {
        if (this.items.Any(kv => kv.Key == key))
        {
            throw new InvalidOperationException($"duplicate JSON key '{key}'");
        }

        this.items.Add(new(key, value));
        return this;
    }
}

/// <summary>A float32 tensor written as {"shape":[...],"data":[...]} (row-major data).</summary>
internal sealed record JTensor(long[] Shape, float[] Data)
{
    public static JTensor From(Tensor t)
    {
        using Tensor c = t.detach().contiguous().to_type(ScalarType.Float32);
        float[] data = c.data<float>().ToArray();
        long expected = c.shape.Aggregate(1L, (a, b) => a * b);
        if (data.Length != expected)
        {
            throw new InvalidOperationException("tensor data length does not match its shape");
        }

        return new JTensor(c.shape.ToArray(), data);
    }
}

internal static class Json
{
    public static string Serialize(JObj obj)
    {
        var sb = new StringBuilder();
        WriteObj(sb, obj, 0);
        sb.Append('\n');
        return sb.ToString();
    }

    private static void Indent(StringBuilder sb, int level) => sb.Append(' ', level * 2);

    private static void WriteObj(StringBuilder sb, JObj obj, int level)
    {
        sb.Append("{\n");
        for (int i = 0; i < obj.Items.Count; i++)
        {
            Indent(sb, level + 1);
            WriteString(sb, obj.Items[i].Key);
            sb.Append(": ");
            WriteValue(sb, obj.Items[i].Value, level + 1);
            sb.Append(i + 1 < obj.Items.Count ? ",\n" : "\n");
        }

        Indent(sb, level);
        sb.Append('}');
    }

    private static void WriteValue(StringBuilder sb, object value, int level)
    {
        switch (value)
        {
            case JObj o:
                WriteObj(sb, o, level);
                break;
            case JTensor t:
                sb.Append("{\"shape\": [").AppendJoin(", ", t.Shape).Append("], \"data\": [");
                WriteFloats(sb, t.Data);
                sb.Append("]}");
                break;
            case string s:
                WriteString(sb, s);
                break;
            case bool b:
                sb.Append(b ? "true" : "false");
                break;
            case int n:
                sb.Append(n.ToString(CultureInfo.InvariantCulture));
                break;
            case long n:
                sb.Append(n.ToString(CultureInfo.InvariantCulture));
                break;
            case float f:
                sb.Append(Num(f));
                break;
            case double d:
                sb.Append(Num(d));
                break;
            case int[] a:
                sb.Append('[').AppendJoin(", ", a.Select(x => x.ToString(CultureInfo.InvariantCulture))).Append(']');
                break;
            case long[] a:
                sb.Append('[').AppendJoin(", ", a.Select(x => x.ToString(CultureInfo.InvariantCulture))).Append(']');
                break;
            case float[] a:
                sb.Append('[');
                WriteFloats(sb, a);
                sb.Append(']');
                break;
            case double[] a:
                sb.Append('[').AppendJoin(", ", a.Select(Num)).Append(']');
                break;
            case System.Collections.IEnumerable list:
                sb.Append("[\n");
                var elems = list.Cast<object>().ToList();
                for (int i = 0; i < elems.Count; i++)
                {
                    Indent(sb, level + 1);
                    WriteValue(sb, elems[i], level + 1);
                    sb.Append(i + 1 < elems.Count ? ",\n" : "\n");
                }

                Indent(sb, level);
                sb.Append(']');
                break;
            default:
                throw new NotSupportedException($"cannot serialize {value.GetType()}");
        }
    }

    private static void WriteFloats(StringBuilder sb, float[] data) => sb.AppendJoin(", ", data.Select(Num));

    /// <summary>Shortest string that round-trips to the same float32 ("R" is shortest-round-trip on .NET Core 3.0+).</summary>
    public static string Num(float f)
    {
        if (!float.IsFinite(f))
        {
            throw new InvalidOperationException("non-finite value cannot be written to JSON");
        }

        string s = f.ToString("R", CultureInfo.InvariantCulture);
        if (float.Parse(s, CultureInfo.InvariantCulture) != f || (f == 0 && float.IsNegative(f) != s.StartsWith('-')))
        {
            throw new InvalidOperationException($"float {s} does not round-trip");
        }

        return s;
    }

    public static string Num(double d)
    {
        if (!double.IsFinite(d))
        {
            throw new InvalidOperationException("non-finite value cannot be written to JSON");
        }

        string s = d.ToString("R", CultureInfo.InvariantCulture);
        if (double.Parse(s, CultureInfo.InvariantCulture) != d)
        {
            throw new InvalidOperationException($"double {s} does not round-trip");
        }

        return s;
    }

    private static void WriteString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                default:
                    if (c < 0x20)
                    {
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }

                    break;
            }
        }

        sb.Append('"');
    }
}
