namespace Tagging;

/// <summary>
/// <c>--tagset universal</c>: Brown's (normalized) tags mapped to 12 coarse categories in the spirit of Petrov, Das and
/// McDonald's universal part-of-speech tags (NOUN, VERB, ADJ, ADV, PRON, DET, ADP, NUM, CONJ, PRT, ".", X). A second
/// tagging task over the same text — 12 tags instead of 186 — for checking that the tagger's defaults are not fitted to
/// one tag set. The map is ours (by the first part of a compound tag, ignoring the negation mark <c>*</c> and the
/// possessive <c>$</c>), not the official en-brown.map.
/// </summary>
internal static class UniversalTags
{
    private static readonly Dictionary<string, string> Map = Build();

    public static string Of(string tag)
    {
        if (tag == "*") return "ADV";                                   // not, n't
        string head = tag.Split('+')[0].TrimEnd('*').TrimEnd('$');
        return Map.TryGetValue(head, out var coarse) ? coarse : Map.TryGetValue(tag, out coarse) ? coarse : "X";
    }

    private static Dictionary<string, string> Build()
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        void Add(string coarse, params string[] tags) { foreach (var t in tags) map[t] = coarse; }
        Add(".", ".", ",", ":", "(", ")", "--", "'", "''", "`", "``");
        Add("NOUN", "nn", "nns", "np", "nps", "nr", "nrs");
        Add("VERB", "vb", "vbd", "vbg", "vbn", "vbz", "md", "be", "bed", "bedz", "beg", "bem", "ben", "ber", "bez",
            "do", "dod", "doz", "hv", "hvd", "hvg", "hvn", "hvz");
        Add("ADJ", "jj", "jjr", "jjs", "jjt");
        Add("ADV", "rb", "rbr", "rbt", "rn", "ql", "qlp", "wql", "wrb");
        Add("PRON", "pn", "pp", "ppl", "ppls", "ppo", "pps", "ppss", "wp", "wpo", "wps");
        Add("DET", "abl", "abn", "abx", "ap", "at", "dt", "dti", "dts", "dtx", "ex", "wdt");
        Add("ADP", "in");
        Add("NUM", "cd", "od");
        Add("CONJ", "cc", "cs");
        Add("PRT", "to", "rp");
        Add("X", "uh", "nil", "fw");
        return map;
    }
}
