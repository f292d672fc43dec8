using Microsoft.ML.Recurrent.Training;

namespace Forecasting;

/// <summary>The reference forecasters: last value, seasonal naive, and least-squares linear maps of the look-back window.</summary>
internal static class Baselines
{
    /// <summary>MSE and MAE of a forecaster over every (window, variable) of <paramref name="windows"/>; forecast(t0, c, r) predicts row t0 + r of variable c.</summary>
    public static (double Mse, double Mae) Score(float[] v, int c, ForecastWindows windows, Func<int, int, int, double> forecast)
    {
        double squares = 0, absolutes = 0;
        long n = 0;
        for (int k = 0; k < windows.Count; k++)
        {
            int t0 = windows.TargetStart(k);
            for (int ch = 0; ch < c; ch++)
                for (int r = 0; r < windows.Horizon; r++)
                {
                    double e = forecast(t0, ch, r) - v[(t0 + r) * c + ch];
                    squares += e * e;
                    absolutes += Math.Abs(e);
                    n++;
                }
        }
        return (squares / n, absolutes / n);
    }

    /// <summary>(a) The last observed value for every horizon row.</summary>
    public static (double, double) Naive(float[] v, int c, ForecastWindows w) => Score(v, c, w, (t0, ch, r) => v[(t0 - 1) * c + ch]);

    /// <summary>(b) The value one period (24 h) before, repeated: row t0 + r is forecast by row t0 − P + (r mod P).</summary>
    public static (double, double) SeasonalNaive(float[] v, int c, ForecastWindows w, int period = 24) =>
        Score(v, c, w, (t0, ch, r) => v[(t0 - period + r % period) * c + ch]);

    /// <summary>
    /// (c) A linear map of the look-back window per horizon row, shared by the variables (channel independence, as
    /// DLinear/NLinear): ŷ_r = b_r + Σ_i W_ri·x_i, fitted by ridge least squares on every training (window, variable),
    /// one solve for all H rows (the same solution as one least-squares regression per horizon row, since they share the
    /// design matrix). With <paramref name="relative"/> the window and targets are taken relative to the last value (NLinear).
    /// </summary>
    public static LinearForecaster[] FitLinear(float[] v, int c, ForecastWindows train, double[] ridges, bool relative)
    {
        int l = train.LookBack, h = train.Horizon, p = l + 1;
        var xtx = new double[p * p];
        var xty = new double[p * h];
        var x = new double[p];
        for (int k = 0; k < train.Count; k++)
        {
            int t0 = train.TargetStart(k);
            for (int ch = 0; ch < c; ch++)
            {
                double last = relative ? v[(t0 - 1) * c + ch] : 0;
                for (int i = 0; i < l; i++) x[i] = v[(t0 - l + i) * c + ch] - last;
                x[l] = 1;
                // Upper triangle of XᵀX; XᵀY.
                for (int i = 0; i < p; i++)
                {
                    double xi = x[i];
                    var rowI = xtx.AsSpan(i * p, p);
                    for (int j = i; j < p; j++) rowI[j] += xi * x[j];
                }
                for (int r = 0; r < h; r++)
                {
                    double y = v[(t0 + r) * c + ch] - last;
                    for (int i = 0; i < p; i++) xty[i * h + r] += x[i] * y;
                }
            }
        }
        for (int i = 0; i < p; i++)
            for (int j = 0; j < i; j++) xtx[i * p + j] = xtx[j * p + i];
        double n = (double)train.Count * c;
        // One accumulation, one solve per ridge (only the diagonal changes; the bias is not penalized).
        return ridges.Select(ridge =>
        {
            var a = (double[])xtx.Clone();
            for (int i = 0; i < l; i++) a[i * p + i] += ridge * n;
            return new LinearForecaster(Cholesky.Solve(a, p, xty, h), l, h, relative, ridge);   // weights [p, h]
        }).ToArray();
    }

    internal sealed class LinearForecaster(double[] weights, int l, int h, bool relative, double ridge)
    {
        public string Name => $"linear {(relative ? "relative" : "raw")} ridge {ridge:G}";

        public (double, double) Score(float[] v, int c, ForecastWindows w)
        {
            var x = new double[l + 1];
            var cache = new Dictionary<(int, int), double[]>();
            return Baselines.Score(v, c, w, (t0, ch, r) =>
            {
                if (!cache.TryGetValue((t0, ch), out var y))
                {
                    if (cache.Count > 64) cache.Clear();
                    double last = relative ? v[(t0 - 1) * c + ch] : 0;
                    for (int i = 0; i < l; i++) x[i] = v[(t0 - l + i) * c + ch] - last;
                    x[l] = 1;
                    y = new double[h];
                    for (int i = 0; i <= l; i++)
                        for (int j = 0; j < h; j++) y[j] += x[i] * weights[i * h + j];
                    for (int j = 0; j < h; j++) y[j] += last;
                    cache[(t0, ch)] = y;
                }
                return y[r];
            });
        }
    }
}

/// <summary>Symmetric positive-definite solve A·X = B by Cholesky, in double.</summary>
internal static class Cholesky
{
    public static double[] Solve(double[] a, int n, double[] b, int m)
    {
        var l = (double[])a.Clone();
        for (int j = 0; j < n; j++)
        {
            double d = l[j * n + j];
            for (int k = 0; k < j; k++) d -= l[j * n + k] * l[j * n + k];
            if (d <= 0) throw new InvalidOperationException($"The normal equations are not positive definite at {j}.");
            d = Math.Sqrt(d);
            l[j * n + j] = d;
            for (int i = j + 1; i < n; i++)
            {
                double s = l[i * n + j];
                for (int k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
                l[i * n + j] = s / d;
            }
        }
        var x = (double[])b.Clone();
        for (int col = 0; col < m; col++)
        {
            for (int i = 0; i < n; i++)
            {
                double s = x[i * m + col];
                for (int k = 0; k < i; k++) s -= l[i * n + k] * x[k * m + col];
                x[i * m + col] = s / l[i * n + i];
            }
            for (int i = n - 1; i >= 0; i--)
            {
                double s = x[i * m + col];
                for (int k = i + 1; k < n; k++) s -= l[k * n + i] * x[k * m + col];
                x[i * m + col] = s / l[i * n + i];
            }
        }
        return x;
    }
}
