namespace Microsoft.ML.Recurrent.Kernels;

/// <summary>
/// The B operand of <see cref="Sgemm"/> (op(B), <see cref="Rows"/> = k by <see cref="Columns"/> = n) already laid out the
/// way the micro-kernels read it, so a weight matrix reused every time step is packed once.
/// </summary>
/// <remarks>
/// Layout (identical to what <see cref="Sgemm"/> packs on the fly, so both routes give bitwise identical results):
/// k is cut into blocks of <see cref="Sgemm.KC"/> rows; the block starting at row pc (height kc) starts at float offset
/// <c>pc · PaddedColumns</c> and holds <c>PaddedColumns / NR</c> column panels, panel jp at <c>jp · kc · NR</c>, each
/// panel row-major [kc × NR] with columns beyond n zero-filled. NR = <see cref="SgemmPacking.NR"/>.
/// </remarks>
internal sealed unsafe class PackedMatrix
{
    private readonly AlignedBuffer _buffer;

    internal PackedMatrix(int rows, int columns)
    {
        Rows = rows;
        Columns = columns;
        PaddedColumns = SgemmPacking.PaddedWidth(columns);
        _buffer = AlignedBuffer.Allocate(checked(rows * PaddedColumns));
    }

    /// <summary>k: rows of op(B).</summary>
    public int Rows { get; }

    /// <summary>n: columns of op(B).</summary>
    public int Columns { get; }

    /// <summary>n rounded up to a multiple of <see cref="SgemmPacking.NR"/>.</summary>
    internal int PaddedColumns { get; }

    /// <summary>Start of the packed data (64-byte aligned).</summary>
    internal float* Data => _buffer.Pointer;
}
