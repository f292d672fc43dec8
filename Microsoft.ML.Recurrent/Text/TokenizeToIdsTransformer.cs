using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Recurrent;
using Microsoft.ML.Runtime;

[assembly: LoadableClass(typeof(TokenizeToIdsTransformer), null, typeof(SignatureLoadModel),
    "Tokenize To Ids", TokenizeToIdsTransformer.LoaderSignature)]

namespace Microsoft.ML.Recurrent;

/// <summary>
/// Turns a text column into a variable-length vector of keys with a Microsoft.ML.Tokenizers tokenizer: token id i
/// becomes key i + 1 of a key type with <see cref="TokenizerData.VocabularySize"/> values (key 0 stays "missing"),
/// ready for the recurrent trainers. The tokenizer's data is saved inside the model.
/// </summary>
public sealed class TokenizeToIdsTransformer : RowToRowTransformerBase
{
    internal const string LoaderSignature = "TokenizeToIds";

    private static VersionInfo GetVersionInfo() => new(
        modelSignature: "TOK2IDS ",
        // verWrittenCur: 0x00010001, // Initial
        verWrittenCur: 0x00010002, // Integrity envelope (SHA-256); Tokenizer data stored in the zip, tiktoken included
        verReadableCur: 0x00010002,
        verWeCanReadBack: 0x00010001,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(TokenizeToIdsTransformer).Assembly.GetName().Name);

    private readonly IHost _host;

    /// <summary>The output column.</summary>
    public string OutputColumnName { get; }

    /// <summary>The text input column.</summary>
    public string InputColumnName { get; }

    /// <summary>The tokenizer and its data.</summary>
    public TokenizerData Tokenizer { get; }

    internal TokenizeToIdsTransformer(IHostEnvironment env, string outputColumnName, string inputColumnName, TokenizerData tokenizer)
        : this(env.Register(nameof(TokenizeToIdsTransformer)), outputColumnName, inputColumnName, tokenizer)
    {
    }

    private TokenizeToIdsTransformer(IHost host, string outputColumnName, string inputColumnName, TokenizerData tokenizer) : base(host)
    {
        _host = host;
        OutputColumnName = outputColumnName;
        InputColumnName = inputColumnName;
        Tokenizer = tokenizer;
    }

    /// <summary>The key type of the output column's items.</summary>
    internal KeyDataViewType KeyType => new(typeof(uint), Tokenizer.VocabularySize);

    // *** Binary format *** (the payload of the entry's integrity envelope, see ModelEntry; 0x00010001 had no envelope)
    // string: output column name
    // string: input column name
    // tokenizer data: see TokenizerData.Write
    /// <inheritdoc/>
    protected override void SaveModel(ModelSaveContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());
        ModelEntry.Write(ctx.Writer, writer =>
        {
            writer.Write(OutputColumnName);
            writer.Write(InputColumnName);
            Tokenizer.Write(writer);
        });
    }

    // Factory method for SignatureLoadModel.
    private static TokenizeToIdsTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(ctx);
        ctx.CheckAtModel(GetVersionInfo());
        // 0x00010001: no envelope, tokenizer data version 1; else 2 (0x00010002, or a later version readable by this code).
        int version = ctx.Header.ModelVerWritten == 0x00010001 ? 1 : 2;
        var reader = ModelEntry.Open(ctx, enveloped: version >= 2);
        string output = reader.ReadString("output column name", 1024), input = reader.ReadString("input column name", 1024);
        if (output.Length == 0 || input.Length == 0)
            throw reader.Error("column names", "must not be empty.");
        var tokenizer = TokenizerData.Read(reader, version);
        reader.ExpectEnd();
        return new TokenizeToIdsTransformer(env, output, input, tokenizer);
    }

    /// <inheritdoc/>
    protected override IRowMapper MakeRowMapper(DataViewSchema schema) => new Mapper(this, schema);

    private sealed class Mapper : MapperBase
    {
        private readonly TokenizeToIdsTransformer _parent;
        private readonly int _inputIndex;

        public Mapper(TokenizeToIdsTransformer parent, DataViewSchema schema) : base(parent._host, schema, parent)
        {
            _parent = parent;
            var column = schema.GetColumnOrNull(parent.InputColumnName)
                ?? throw new ArgumentOutOfRangeException(nameof(schema), $"Input column '{Model.BoundedReader.Printable(parent.InputColumnName)}' not found.");
            if (column.Type is not TextDataViewType)
                throw new ArgumentOutOfRangeException(nameof(schema), $"Input column '{Model.BoundedReader.Printable(parent.InputColumnName)}' has type {column.Type}; TokenizeToIds needs text.");
            _inputIndex = column.Index;
        }

        protected override DataViewSchema.DetachedColumn[] GetOutputColumnsCore() =>
            [new DataViewSchema.DetachedColumn(_parent.OutputColumnName, new VectorDataViewType(_parent.KeyType))];

        protected override Func<int, bool> GetDependenciesCore(Func<int, bool> activeOutput) =>
            column => activeOutput(0) && column == _inputIndex;

        protected override void SaveModel(ModelSaveContext ctx) => _parent.SaveModel(ctx);

        protected override Delegate MakeGetter(DataViewRow input, int iinfo, Func<int, bool> activeOutput, out Action disposer)
        {
            disposer = null!;
            var text = input.GetGetter<ReadOnlyMemory<char>>(input.Schema[_inputIndex]);
            var tokenizer = _parent.Tokenizer.Tokenizer;
            ReadOnlyMemory<char> value = default;
            ValueGetter<VBuffer<uint>> getter = (ref VBuffer<uint> dst) =>
            {
                text(ref value);
                var ids = tokenizer.EncodeToIds(value.Span);
                var editor = VBufferEditor.Create(ref dst, ids.Count);
                for (int i = 0; i < ids.Count; i++) editor.Values[i] = (uint)ids[i] + 1;
                dst = editor.Commit();
            };
            return getter;
        }
    }
}
