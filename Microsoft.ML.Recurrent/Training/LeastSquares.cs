using Microsoft.ML.Recurrent.Kernels;

namespace Microsoft.ML.Recurrent.Training;

/// <summary>
/// Ridge least squares with several outputs, accumulated batch by batch: W = (XᵀX + λ·N·I)⁻¹ XᵀY for X [N, P] (the last
/// column a constant 1, not penalized) and Y [N, M]. Each batch's products are computed by SGEMM in single precision and
/// added to double-precision sums; the solve is a Cholesky factorization in double.
/// </summary>
internal sealed class LeastSquares
{
    private readonly int _p, _m;
    private readonly double[] _xtx, _xty;   // [P, P], [P, M]
    private float[] _batchXtx = [], _batchXty = [];
    private long _rows;

    public LeastSquares(int inputs, int outputs)
    {
        _p = inputs;
        _m = outputs;
        _xtx = new double[(long)inputs * inputs];
        _xty = new double[(long)inputs * outputs];
    }

    /// <summary>Adds the rows of x [B, P] and y [B, M].</summary>
    public void Add(int batchSize, ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        var xtx = Core.Workspace.Ensure(ref _batchXtx, _p * _p);
        var xty = Core.Workspace.Ensure(ref _batchXty, _p * _m);
        Sgemm.Multiply(Transpose.Yes, Transpose.No, _p, _p, batchSize, x, _p, x, _p, xtx, _p, accumulate: false);
        Sgemm.Multiply(Transpose.Yes, Transpose.No, _p, _m, batchSize, x, _p, y, _m, xty, _m, accumulate: false);
        for (int i = 0; i < xtx.Length; i++) _xtx[i] += xtx[i];
        for (int i = 0; i < xty.Length; i++) _xty[i] += xty[i];
        _rows += batchSize;
    }

    /// <summary>W [P, M] for the ridge λ (relative to the row count); the last input (the constant) is not penalized.</summary>
    /// <exception cref="InvalidOperationException">The system is not positive definite (e.g. no rows).</exception>
    public double[] Solve(double ridge)
    {
        int p = _p;
        var l = (double[])_xtx.Clone();
        for (int i = 0; i < p - 1; i++) l[i * p + i] += ridge * Math.Max(1, _rows);
        // Cholesky: l = L·Lᵀ in the lower triangle.
        for (int j = 0; j < p; j++)
        {
            double d = l[j * p + j];
            for (int k = 0; k < j; k++) d -= l[j * p + k] * l[j * p + k];
            if (!(d > 0)) throw new InvalidOperationException($"The least-squares system is not positive definite at {j}.");
            d = Math.Sqrt(d);
            l[j * p + j] = d;
            for (int i = j + 1; i < p; i++)
            {
                double s = l[i * p + j];
                for (int k = 0; k < j; k++) s -= l[i * p + k] * l[j * p + k];
                l[i * p + j] = s / d;
            }
        }
        var w = (double[])_xty.Clone();
        for (int c = 0; c < _m; c++)
        {
            for (int i = 0; i < p; i++)
            {
                double s = w[i * _m + c];
                for (int k = 0; k < i; k++) s -= l[i * p + k] * w[k * _m + c];
                w[i * _m + c] = s / l[i * p + i];
            }
            for (int i = p - 1; i >= 0; i--)
            {
                double s = w[i * _m + c];
                for (int k = i + 1; k < p; k++) s -= l[k * p + i] * w[k * _m + c];
                w[i * _m + c] = s / l[i * p + i];
            }
        }
        return w;
    }
}
