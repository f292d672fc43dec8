using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Recurrent;
using Microsoft.ML.Recurrent.Core;
using Microsoft.ML.Recurrent.Generation;
using Microsoft.ML.Model.OnnxConverter;
using Microsoft.ML.Recurrent.Model;
using Microsoft.ML.Recurrent.Onnx;
using Microsoft.ML.Runtime;

[assembly: LoadableClass(typeof(RecurrentLanguageModelTransformer), null, typeof(SignatureLoadModel),
    "Recurrent Language Model", RecurrentLanguageModelTransformer.LoaderSignature)]

namespace Microsoft.ML.Recurrent;

/// <summary>
/// A trained recurrent language model (see <see cref="RecurrentLanguageModelEstimator"/>). As a transformer it adds
/// each row's log-likelihood and perplexity; <see cref="Generate"/> and <see cref="GenerateStream"/> write text after a
/// prompt, sampled with a temperature, top-k and top-p, reproducibly for a seed. Thread-safe: every cursor, engine
/// and generation call runs its own copy of the network's activations over the shared weights.
/// </summary>
/// <remarks>
/// <para>Scoring never throws on a row's content: an empty or missing text scores the end of row alone, and characters
/// or keys not seen in training count as the unknown token. A key beyond the model's key count cannot be the same
/// vocabulary; such a row gets NaN.</para>
/// </remarks>
public sealed partial class RecurrentLanguageModelTransformer : RowToRowTransformerBase, ITransformer
{
    internal const string LoaderSignature = "RecurrentLanguageModel";

    private static VersionInfo GetVersionInfo() => new(
        modelSignature: "RNNLANGM",
        // verWrittenCur: 0x00010001, // Initial
        verWrittenCur: 0x00010002, // Backward flag
        verReadableCur: 0x00010002,
        verWeCanReadBack: 0x00010001,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(RecurrentLanguageModelTransformer).Assembly.GetName().Name);

    private readonly IHost _host;
    private readonly LanguageModelVocabulary _vocabulary;
    private readonly RecurrentNetwork _network;

    /// <summary>The input column: text (character model) or a vector of keys (token model).</summary>
    public string InputColumnName { get; }

    /// <summary>The output column of each row's log-likelihood (nats).</summary>
    public string LogLikelihoodColumnName { get; }

    /// <summary>The output column of each row's perplexity.</summary>
    public string PerplexityColumnName { get; }

    /// <summary>Whether the model reads and writes characters (else tokens: the keys of a key column).</summary>
    public bool IsCharacterModel => _vocabulary.IsCharacters;

    /// <summary>Number of tokens the model predicts over, including the unknown token and the end of row.</summary>
    public int VocabularySize => _vocabulary.Size;

    /// <summary>Whether this is a backward model: it reads rows right to left (see <see cref="RecurrentLanguageModelEstimator.Options.Backward"/>).</summary>
    public bool IsBackward { get; }

    internal RecurrentNetwork Network => _network;

    internal LanguageModelVocabulary Vocabulary => _vocabulary;

    internal RecurrentLanguageModelTransformer(IHostEnvironment env, LanguageModelVocabulary vocabulary, RecurrentNetwork network,
        string inputColumnName, string logLikelihoodColumnName, string perplexityColumnName, bool backward)
        : this(env.Register(nameof(RecurrentLanguageModelTransformer)), vocabulary, network, inputColumnName, logLikelihoodColumnName, perplexityColumnName, backward)
    {
    }

    private RecurrentLanguageModelTransformer(IHost host, LanguageModelVocabulary vocabulary, RecurrentNetwork network,
        string inputColumnName, string logLikelihoodColumnName, string perplexityColumnName, bool backward)
        : base(host)
    {
        _host = host;
        _vocabulary = vocabulary;
        _network = network;
        IsBackward = backward;
        InputColumnName = inputColumnName;
        LogLikelihoodColumnName = logLikelihoodColumnName;
        PerplexityColumnName = perplexityColumnName;
    }

    /// <summary>Generates text after <paramref name="prompt"/> (which is not repeated in the result).</summary>
    /// <param name="prompt">Text to continue; empty starts a new row. Token models split it on white space and look its words up in the key values.</param>
    /// <param name="options">Length, temperature, top-k, top-p, seed; null = the defaults.</param>
    public string Generate(string prompt, GenerationOptions? options = null) => string.Concat(GenerateStream(prompt, options));

    /// <summary>
    /// Generates text after <paramref name="prompt"/> piece by piece, as it is produced: a character at a time (character
    /// models) or a token and its separator (token models). Each piece is computed when the enumerator asks for it, so
    /// a caller can show it at once or stop early.
    /// </summary>
    public IEnumerable<string> GenerateStream(string prompt, GenerationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        CheckForward();
        options ??= new GenerationOptions();
        options.Validate();
        var ids = new List<int> { LanguageModelVocabulary.EndOfRow };
        _vocabulary.AppendPrompt(prompt, ids);
        return Pieces(ids.ToArray(), options);
    }

    /// <summary>Generates the keys of a token model after the prompt keys (key 0 and keys the model does not know read as unknown).</summary>
    public IEnumerable<uint> GenerateKeys(IReadOnlyList<uint> promptKeys, GenerationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(promptKeys);
        CheckForward();
        if (IsCharacterModel) throw new InvalidOperationException("This is a character model; use Generate or GenerateStream.");
        options ??= new GenerationOptions();
        options.Validate();
        var ids = new List<int> { LanguageModelVocabulary.EndOfRow };
        foreach (uint k in promptKeys) ids.Add(_vocabulary.OfKey(k));
        foreach (int id in Ids(ids.ToArray(), options))
            if (id != LanguageModelVocabulary.EndOfRow) yield return _vocabulary.KeyOf(id);
    }

    private IEnumerable<string> Pieces(int[] prompt, GenerationOptions options)
    {
        bool first = prompt.Length == 1;
        foreach (int id in Ids(prompt, options))
        {
            if (id == LanguageModelVocabulary.EndOfRow)
            {
                yield return options.EndOfRowText;
                first = true;
                continue;
            }
            string text = _vocabulary.TextOf(id, options.EndOfRowText);
            yield return IsCharacterModel || first ? text : options.TokenSeparator + text;
            first = false;
        }
    }

    /// <summary>The ids drawn after the prompt; stops at the maximum length or (if asked) at an end of row.</summary>
    private IEnumerable<int> Ids(int[] prompt, GenerationOptions options)
    {
        CheckForward();
        var generator = new TokenGenerator(_network);
        var sampler = new TokenSampler(options.Temperature, options.TopK, options.TopP);
        var random = new SeededRandom(options.Seed ?? Random.Shared.Next());
        var logits = new float[generator.VocabularySize];
        var scratch = new float[generator.VocabularySize];
        generator.Feed(prompt).CopyTo(logits);
        for (int i = 0; i < options.MaximumLength; i++)
        {
            // The unknown token has no text: it is never drawn.
            logits[LanguageModelVocabulary.Unknown] = float.NegativeInfinity;
            int id = sampler.Sample(logits, random, scratch);
            if (id == LanguageModelVocabulary.EndOfRow && options.StopAtEndOfRow)
                yield break;
            yield return id;
            generator.Feed(id).CopyTo(logits);
        }
    }

    private void CheckForward()
    {
        if (IsBackward)
            throw new InvalidOperationException("This is a backward language model: it predicts the token before, so it does not generate text. It scores rows and initializes bidirectional classifiers.");
    }

    /// <summary>Log-likelihood (nats) of a text under a character model, or of a whitespace-split text under a token model with key values: its tokens and its end.</summary>
    public double LogLikelihood(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int> { LanguageModelVocabulary.EndOfRow };
        _vocabulary.AppendPrompt(text, ids);
        ids.Add(LanguageModelVocabulary.EndOfRow);
        if (IsBackward) ids.Reverse();
        return new TokenGenerator(_network).Score(ids.ToArray()).LogLikelihood;
    }

    // Factory method for SignatureLoadModel.
    private static RecurrentLanguageModelTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(ctx);
        ctx.CheckAtModel(GetVersionInfo());
        var reader = ModelEntry.Open(ctx, enveloped: true);
        string input = reader.ReadString("input column name", 1024);
        string logLikelihood = reader.ReadString("log-likelihood column name", 1024);
        string perplexity = reader.ReadString("perplexity column name", 1024);
        if (input.Length == 0 || logLikelihood.Length == 0 || perplexity.Length == 0 || logLikelihood == perplexity)
            throw reader.Error("column names", "are empty or the same.");
        bool backward = ctx.Header.ModelVerWritten >= 0x00010002 && reader.ReadBoolean("backward flag");
        var vocabulary = LanguageModelVocabulary.Read(reader);
        var network = NetworkSerializer.Read(reader);
        reader.ExpectEnd();
        var c = network.Config;
        if (!c.TokenInput || c.Head != NetworkHeadKind.PerStep || c.Bidirectional || c.UseCrf || c.UsesCharacters
            || c.VocabularySize != vocabulary.Size || c.OutputSize != vocabulary.Size)
            throw reader.Error("network", $"is not a language model over the saved vocabulary of {vocabulary.Size} tokens.");
        return new RecurrentLanguageModelTransformer(env, vocabulary, network, input, logLikelihood, perplexity, backward);
    }

    // *** Binary format *** (inside ModelEntry's envelope)
    // string: input column name, log-likelihood column name, perplexity column name
    // u8: backward model (version 0x00010002)
    // vocabulary: see LanguageModelVocabulary.Write
    // network: see NetworkSerializer
    /// <inheritdoc/>
    protected override void SaveModel(ModelSaveContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());
        ModelEntry.Write(ctx.Writer, writer =>
        {
            writer.Write(InputColumnName);
            writer.Write(LogLikelihoodColumnName);
            writer.Write(PerplexityColumnName);
            writer.Write(IsBackward);
            _vocabulary.Write(writer);
            NetworkSerializer.Write(writer, _network);
        });
    }

    /// <inheritdoc/>
    protected override IRowMapper MakeRowMapper(DataViewSchema schema) => new Mapper(this, schema);

    /// <summary>Adds each row's log-likelihood and perplexity, lazily; the result has the input's columns plus the two.</summary>
    public new IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new ScoredView(this, input, new RowToRowMapperTransform(_host, input, new Mapper(this, input.Schema), schema => new Mapper(this, schema)));
    }

    IDataView ITransformer.Transform(IDataView input) => Transform(input);

    /// <summary>
    /// The output of <see cref="Transform"/>: the row-by-row mapping, which is also the step ML.NET's ONNX converter finds
    /// when it walks back from a pipeline's output (it writes the scoring graph after checking the steps before it) and
    /// which can be re-applied to other data.
    /// </summary>
    private sealed class ScoredView(RecurrentLanguageModelTransformer parent, IDataView source, IDataView mapped) : ITransformCanSaveOnnx, ITransformTemplate
    {
        public IDataView Source => source;

        public bool CanSaveOnnx(OnnxContext ctx) => true; // what cannot be written is said by SaveAsOnnx, not skipped silently

        public void SaveAsOnnx(OnnxContext ctx)
        {
            OnnxSources.RequireExportable(source, ctx, nameof(RecurrentLanguageModelTransformer), $"\"{parent.InputColumnName}\"");
            parent.SaveAsOnnx(ctx);
        }

        void ICanSaveModel.Save(ModelSaveContext ctx) => ((ICanSaveModel)mapped).Save(ctx);

        IDataTransform ITransformTemplate.ApplyToData(IHostEnvironment env, IDataView newSource) => (IDataTransform)parent.Transform(newSource);

        public bool CanShuffle => mapped.CanShuffle;

        public DataViewSchema Schema => mapped.Schema;

        public long? GetRowCount() => mapped.GetRowCount();

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) => mapped.GetRowCursor(columnsNeeded, rand);

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
            mapped.GetRowCursorSet(columnsNeeded, n, rand);
    }

    /// <summary>
    /// ONNX (token models): ids = [end of row] + each key's token + [end of row] (reversed for a backward model), the
    /// network over all but the last, LogSoftmax at every step, the next token's log-probability gathered: the
    /// log-likelihood is their sum and the perplexity exp(−LL / predictions). Character models read text, which
    /// standard ONNX operators cannot split into this model's characters; they say so.
    /// </summary>
    private void SaveAsOnnx(OnnxContext ctx)
    {
        if (IsCharacterModel)
            throw new NotSupportedException($"{nameof(RecurrentLanguageModelTransformer)} cannot be exported to ONNX: it is a character model, and standard ONNX operators cannot split text into its characters. Token models (a key column) export.");
        if (!ctx.ContainsColumn(InputColumnName))
            throw new InvalidOperationException(
                $"{nameof(RecurrentLanguageModelTransformer)} cannot be exported to ONNX as part of this pipeline: its input column '{InputColumnName}' is made by a step " +
                "that has no ONNX export, so that step and everything before it would be left out. Export the language model on its own from the key vector " +
                "(mlContext.Model.ConvertToOnnx(languageModel, keysData, stream)). See docs/onnx.md.");
        var g = new OnnxGraph(ctx, "Recurrent.");
        // Key k → token id (0 and unseen keys: the unknown token), as LanguageModelVocabulary.OfKey.
        var map = new long[_vocabulary.KeyCount + 1];
        for (int k = 0; k < map.Length; k++) map[k] = _vocabulary.OfKey((uint)k);
        var (keys, _) = g.DynamicWidth(g.Cast(g.RowOfRuntimeWidth(ctx.GetVariableName(InputColumnName), "lm_keys_row", keys: true), "lm_key_values", typeof(long)),
            "lm_keys_all", g.Long("lm_below_keys", -1));
        // A key beyond the key count: ours gives NaN; here it is flagged (NaN outputs), and clamped so that Gather can run.
        var keyCount = g.Long("lm_key_count", _vocabulary.KeyCount);
        var invalid = g.AnyTrue(g.Node("Greater", "lm_key_beyond", keys, keyCount), "lm_invalid");
        keys = g.Node("Min", "lm_keys", keys, keyCount);
        var tokens = g.Node("Gather", "lm_tokens", n => n.AddAttribute("axis", 0L), g.LongsShaped("lm_key_tokens", map, [map.Length]), keys);
        var end = g.LongsShaped("lm_end_of_row", [LanguageModelVocabulary.EndOfRow], [1, 1]);
        var ids = g.Node("Concat", "lm_ids", n => n.AddAttribute("axis", 1L), end, tokens, end); // [1, n]
        if (IsBackward)
            ids = g.Node("Slice", "lm_ids_reversed", ids, g.Longs("lm_reverse_start", -1), g.Longs("lm_reverse_end", long.MinValue), g.Longs("lm_reverse_axis", 1), g.Longs("lm_reverse_step", -1));
        var inputs = g.Node("Slice", "lm_inputs", ids, g.Longs("lm_inputs_start", 0), g.Longs("lm_inputs_end", -1), g.Longs("lm_inputs_axis", 1));
        var targets = g.Node("Slice", "lm_targets", ids, g.Longs("lm_targets_start", 1), g.Longs("lm_targets_end", long.MaxValue), g.Longs("lm_targets_axis", 1));
        var network = NetworkOnnxWriter.WriteFromIds(g, _network, inputs, invalid);
        var logits = network.PerStepOutputs(); // [1, n − 1, V]
        var logProbabilities = g.Node("LogSoftmax", "lm_log_probabilities", n => n.AddAttribute("axis", 2L), logits);
        var picked = g.Node("GatherElements", "lm_picked", n => n.AddAttribute("axis", 2L), logProbabilities, g.Reshape(targets, "lm_targets_3d", 1, -1, 1));
        var predictions = g.Cast(network.Steps, "lm_predictions", typeof(float)); // [1]
        var mean = network.NaNIfInvalid(g.Node("ReduceMean", "lm_mean_all", n => { n.AddAttribute("axes", new long[] { 1, 2 }); n.AddAttribute("keepdims", 0L); }, picked), "lm_mean"); // [1]
        var logLikelihood = g.Node("Mul", "lm_log_likelihood", mean, predictions);
        var outputs = new[] { LogLikelihoodColumnName, PerplexityColumnName }.Select(c => ctx.AddIntermediateVariable(NumberDataViewType.Single, c)).ToArray();
        g.NodeInto("Reshape", outputs[0], null, logLikelihood, g.Longs("lm_scalar_shape", 1, 1));
        var perplexity = g.Node("Exp", "lm_perplexity", g.Node("Neg", "lm_negative_mean", mean));
        g.NodeInto("Reshape", outputs[1], null, perplexity, g.Longs("lm_scalar_shape2", 1, 1));
    }

    private sealed class Mapper : MapperBase
    {
        private readonly RecurrentLanguageModelTransformer _parent;
        private readonly int _inputIndex;

        public Mapper(RecurrentLanguageModelTransformer parent, DataViewSchema schema)
            : base(parent._host.Register(nameof(Mapper)), schema, parent)
        {
            _parent = parent;
            var column = schema.GetColumnOrNull(parent.InputColumnName)
                ?? throw new ArgumentOutOfRangeException(nameof(schema), $"Input column '{parent.InputColumnName}' not found.");
            bool ok = parent.IsCharacterModel
                ? column.Type is TextDataViewType
                : column.Type is VectorDataViewType { ItemType: KeyDataViewType key } && key.RawType == typeof(uint);
            if (!ok)
                throw new ArgumentOutOfRangeException(nameof(schema), $"Input column '{column.Name}' has type {column.Type}; this {(parent.IsCharacterModel ? "character" : "token")} model reads {(parent.IsCharacterModel ? "text" : "a vector of keys")}.");
            _inputIndex = column.Index;
        }

        protected override DataViewSchema.DetachedColumn[] GetOutputColumnsCore() =>
        [
            new(_parent.LogLikelihoodColumnName, NumberDataViewType.Single),
            new(_parent.PerplexityColumnName, NumberDataViewType.Single),
        ];

        protected override Func<int, bool> GetDependenciesCore(Func<int, bool> activeOutput) =>
            column => (activeOutput(0) || activeOutput(1)) && column == _inputIndex;

        protected override void SaveModel(ModelSaveContext ctx) => _parent.SaveModel(ctx);

        protected override Delegate MakeGetter(DataViewRow input, int iinfo, Func<int, bool> activeOutput, out Action disposer)
        {
            disposer = null!;
            return Getter(new RowScorer(_parent, input, _inputIndex), iinfo);
        }

        /// <summary>Column 0: the log-likelihood; column 1: the perplexity, exp(−LL / predictions).</summary>
        private static Delegate Getter(RowScorer scorer, int column) => column == 0
            ? (ValueGetter<float>)((ref float value) => value = (float)scorer.Current().LogLikelihood)
            : (ValueGetter<float>)((ref float value) =>
            {
                var (ll, n) = scorer.Current();
                value = (float)Math.Exp(-ll / n);
            });

        public override Delegate[] CreateGetters(DataViewRow input, Func<int, bool> activeOutput, out Action disposer)
        {
            disposer = null!;
            var getters = new Delegate[2];
            if (!activeOutput(0) && !activeOutput(1)) return getters;
            var scorer = new RowScorer(_parent, input, _inputIndex); // one evaluation per row for both columns
            for (int i = 0; i < 2; i++)
                if (activeOutput(i)) getters[i] = Getter(scorer, i);
            return getters;
        }
    }

    /// <summary>The current row's log-likelihood and prediction count, computed once per row with this cursor's own generator.</summary>
    private sealed class RowScorer
    {
        private readonly RecurrentLanguageModelTransformer _parent;
        private readonly DataViewRow _input;
        private readonly ValueGetter<ReadOnlyMemory<char>>? _text;
        private readonly ValueGetter<VBuffer<uint>>? _keys;
        private readonly List<int> _ids = [];
        private TokenGenerator? _generator;
        private ReadOnlyMemory<char> _textBuffer;
        private VBuffer<uint> _keyBuffer;
        private long _position = -1;
        private (double, int) _current;

        public RowScorer(RecurrentLanguageModelTransformer parent, DataViewRow input, int index)
        {
            _parent = parent;
            _input = input;
            if (parent.IsCharacterModel) _text = input.GetGetter<ReadOnlyMemory<char>>(input.Schema[index]);
            else _keys = input.GetGetter<VBuffer<uint>>(input.Schema[index]);
        }

        public (double LogLikelihood, int Predictions) Current()
        {
            if (_input.Position == _position) return _current;
            _position = _input.Position;
            var vocabulary = _parent._vocabulary;
            _ids.Clear();
            _ids.Add(LanguageModelVocabulary.EndOfRow);
            bool valid = true;
            if (_text is not null)
            {
                _text(ref _textBuffer);
                vocabulary.AppendCharacters(_textBuffer.Span, _ids);
            }
            else
            {
                _keys!(ref _keyBuffer);
                foreach (uint k in _keyBuffer.DenseValues())
                {
                    if (k > (uint)vocabulary.KeyCount) valid = false;
                    _ids.Add(vocabulary.OfKey(k));
                }
            }
            _ids.Add(LanguageModelVocabulary.EndOfRow);
            if (_parent.IsBackward) _ids.Reverse();
            if (!valid)
                return _current = (double.NaN, _ids.Count - 1);
            _generator ??= new TokenGenerator(_parent._network);
            _generator.Reset();
            var ids = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_ids);
            return _current = _generator.Score(ids);
        }
    }
}
