// Multivariate time-series forecasting with a segment-recurrent GRU in ML.NET (Microsoft.ML.Recurrent).
//
//   dotnet run -c Release --project samples/ForecastingDemo      the shipped ETTh1 excerpt (12 weeks; about 15 s on 2 cores)
//   options: --epochs N  --hidden N  --threads N
//            --data FILE   another ETT-small CSV (date + HUFL, HULL, MUFL, MULL, LUFL, LULL, OT), e.g. the whole ETTh1
//            --out DIR     where the chart and the checkpoint go
//
// It loads the hourly series with LoadFromTextFile, adds calendar features (hour of day, day of week) as future
// covariates, splits it by time (70 % train, 10 % validation, 20 % test), trains a forecaster of all seven variables
// 24 hours ahead with an 80 % prediction interval, compares its oil-temperature (OT) forecasts on the test part with
// the last-value and seasonal-naive baselines, serves forecasts with a forecast engine (predict, update, checkpoint,
// reload), and draws the last two weeks with one forecast and its interval as a PNG chart.
using System.Diagnostics;
using System.Globalization;
using ForecastingDemo;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Recurrent;
using Microsoft.ML.Runtime;

int epochs = 10, hidden = 128;
int? threads = null;
string dataPath = Path.Combine(AppContext.BaseDirectory, "data", "ETTh1.csv");
string output = Path.Combine(Path.GetTempPath(), "recurrent-forecasting-demo");
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--epochs": epochs = int.Parse(args[++i]); break;
        case "--hidden": hidden = int.Parse(args[++i]); break;
        case "--threads": threads = int.Parse(args[++i]); break;
        case "--data": dataPath = args[++i]; break;
        case "--out": output = args[++i]; break;
        default: Console.Error.WriteLine($"Unknown argument {args[i]}; see the comment at the top of Program.cs."); return 2;
    }
}
var clock = Stopwatch.StartNew();
var ml = new MLContext(seed: 1);
// Training progress comes through MLContext.Log: the forecaster's informational lines.
ml.Log += (_, e) =>
{
    if (e.Source.Contains("Recurrent") && e.Kind == ChannelMessageKind.Info)
        Console.WriteLine($"  {e.RawMessage}");
};

// The series: one row per hour, in time order; the calendar features are computed from the date column.
IDataView file = ml.Data.LoadFromTextFile<EttRow>(dataPath, separatorChar: ',', hasHeader: true);
var calendar = ml.Transforms.CustomMapping<EttRow, CalendarFeatures>(CalendarFeatures.Map, contractName: null);
IDataView series = ml.Data.Cache(calendar.Fit(file).Transform(file));
var rows = ml.Data.CreateEnumerable<SeriesRow>(series, reuseRowObject: false).ToList();

const int LookBack = 336, Horizon = 24;
int n = rows.Count;
int trainEnd = n * 70 / 100 / 24 * 24, validationEnd = n * 80 / 100 / 24 * 24; // split at midnight
var train = ml.Data.TakeRows(series, trainEnd);
var validation = ml.Data.TakeRows(ml.Data.SkipRows(series, trainEnd), validationEnd - trainEnd);
Console.WriteLine($"Data: {n:N0} hourly rows, {rows[0].Date} to {rows[^1].Date}; train {trainEnd:N0} rows (to {rows[trainEnd - 1].Date}), " +
    $"validation {validationEnd - trainEnd:N0}, test {n - validationEnd:N0} (from {rows[validationEnd].Date}).");

string[] targets = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"];
string[] futureCovariates = [nameof(CalendarFeatures.Hour), nameof(CalendarFeatures.DayOfWeek)];
var options = new RecurrentForecastingEstimator.Options
{
    TargetColumnNames = targets,
    FutureCovariateColumnNames = futureCovariates,
    LookBack = LookBack,
    Horizon = Horizon,
    SegmentLength = 24,
    HiddenSize = hidden,
    NumberOfEpochs = epochs,
    IntervalCoverage = 0.8f,
    NumberOfThreads = threads,
    Seed = 1,
};
Console.WriteLine($"Training a GRU forecaster of {targets.Length} variables, {Horizon} h ahead from the last {LookBack} h (two weeks), with an 80 % interval:");
var model = ml.Forecasting.Recurrent(options).Fit(train, validation);
Console.WriteLine($"Trained in {clock.Elapsed.TotalSeconds:F0} s.");

// --- Test: every forecast whose 24 hours lie in the test part, made from the row just before them -------------------
// Transform adds to row t the forecast of rows t + 1 … t + 24, so it is given the test rows and the look-back before.
int first = validationEnd - LookBack;
var scored = ml.Data.CreateEnumerable<ForecastRow>(model.Transform(ml.Data.SkipRows(series, first)), reuseRowObject: false).ToList();
int ot = Array.IndexOf(targets, "OT");
float[] y = rows.Select(r => r.OT).ToArray();
var ours = new Errors();
var lastValue = new Errors();
var seasonal = new Errors();
int covered = 0, windows = 0;
for (int t = validationEnd - 1; t + Horizon < n; t++, windows++)
{
    var forecast = scored[t - first];
    for (int h = 1; h <= Horizon; h++)
    {
        float actual = y[t + h];
        ours.Add(forecast.Forecast[ot * Horizon + h - 1], actual);
        lastValue.Add(y[t], actual);
        seasonal.Add(y[t + h - 24 * ((h + 23) / 24)], actual); // the same hour a day earlier
        if (forecast.LowerBound[ot * Horizon + h - 1] <= actual && actual <= forecast.UpperBound[ot * Horizon + h - 1]) covered++;
    }
}
Console.WriteLine();
Console.WriteLine($"Test: {windows:N0} forecasts of OT (oil temperature, °C), each {Horizon} h ahead ({windows * Horizon:N0} values):");
Console.WriteLine("  method                               MSE      MAE");
Console.WriteLine($"  {"GRU forecaster (ours)",-33}{ours.Mse,7:F3}  {ours.Mae,7:F3}");
Console.WriteLine($"  {"last value (persistence)",-33}{lastValue.Mse,7:F3}  {lastValue.Mae,7:F3}");
Console.WriteLine($"  {"seasonal naive (24 h earlier)",-33}{seasonal.Mse,7:F3}  {seasonal.Mae,7:F3}");
Console.WriteLine($"  The 80 % interval held {covered / (double)(windows * Horizon):P1} of the actual values.");

// --- Serving: a forecast engine keeps the latest rows, forecasts, takes new observations, checkpoints ---------------
// The forecast from the last row that still has 24 actual hours after it (the chart's forecast).
int origin = n - 1 - Horizon;
var engine = model.CreateForecastEngine(ml.Data.TakeRows(series, origin + 1));
var served = engine.Predict(CalendarFeatures.Future(rows[origin].Time(), Horizon));
var (lower, upper) = served.Interval("OT");
float[] otForecast = served["OT"].ToArray();
float gap = otForecast.Select((v, h) => Math.Abs(v - scored[origin - first].Forecast[ot * Horizon + h])).Max();
Console.WriteLine();
Console.WriteLine($"Served from {rows[origin].Date}: OT over the next {Horizon} h {Range(otForecast)} (actual {Range(y[(origin + 1)..])}); " +
    $"largest difference from Transform's forecast for that row {gap:G2}.");

// The last 24 hours arrive: update the engine and forecast past the end of the data.
engine.Update(ml.Data.SkipRows(series, origin + 1));
var nextDay = CalendarFeatures.Future(rows[^1].Time(), Horizon);
var ahead = engine.Predict(nextDay);
Console.WriteLine($"After Update with the last {Horizon} rows ({engine.ObservationCount:N0} observed): OT after {rows[^1].Date} {Range(ahead["OT"].ToArray())}.");

// A checkpoint is an ML.NET model zip with the engine's latest rows; loaded back, it continues from where it was.
Directory.CreateDirectory(output);
string zip = Path.Combine(output, "forecaster.zip");
engine.Checkpoint(ml, zip);
var reloaded = (RecurrentForecastingTransformer)new MLContext().Model.Load(zip, out _);
var again = reloaded.CreateForecastEngine().Predict(nextDay);
Console.WriteLine($"Checkpointed to {zip} ({new FileInfo(zip).Length / 1024:N0} KB), reloaded: the same forecast {(again.Values.SequenceEqual(ahead.Values) ? "(identical)" : "(DIFFERENT!)")}.");

// --- The chart: the last two weeks of OT, the served forecast with its interval, and what happened ------------------
string png = Path.Combine(output, "forecast.png");
ForecastChart.Save(png, rows.Skip(n - 14 * 24).Select(r => r.Time()).ToArray(), y[(n - 14 * 24)..],
    rows.Skip(origin + 1).Take(Horizon).Select(r => r.Time()).ToArray(), otForecast, lower, upper,
    $"ETTh1 oil temperature: a {Horizon} h forecast from {rows[origin].Time():yyyy-MM-dd HH:mm} (test part)");
Console.WriteLine($"Wrote the chart to {png}. Total time {clock.Elapsed.TotalSeconds:F0} s.");
return 0;

static string Range(IReadOnlyList<float> values) =>
    string.Format(CultureInfo.InvariantCulture, "{0:F1} … {1:F1} °C", values.Take(Horizon).Min(), values.Take(Horizon).Max());

namespace ForecastingDemo
{
    /// <summary>A row of ETT-small: the date, six load series and the oil temperature.</summary>
    public class EttRow
    {
        [LoadColumn(0)] public string Date { get; set; } = "";
        [LoadColumn(1)] public float HUFL { get; set; }
        [LoadColumn(2)] public float HULL { get; set; }
        [LoadColumn(3)] public float MUFL { get; set; }
        [LoadColumn(4)] public float MULL { get; set; }
        [LoadColumn(5)] public float LUFL { get; set; }
        [LoadColumn(6)] public float LULL { get; set; }
        [LoadColumn(7)] public float OT { get; set; }

        /// <summary>The date column's time (a method, not a property: ML.NET maps every property to a column).</summary>
        public DateTime Time() => DateTime.ParseExact(Date, "yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
    }

    /// <summary>Calendar features, known ahead for any hour: the forecaster's future covariates.</summary>
    public class CalendarFeatures
    {
        public float Hour { get; set; }
        public float DayOfWeek { get; set; }

        public static void Map(EttRow row, CalendarFeatures features)
        {
            var time = row.Time();
            features.Hour = time.Hour;
            features.DayOfWeek = (float)time.DayOfWeek;
        }

        /// <summary>The covariates of the <paramref name="horizon"/> hours after <paramref name="last"/>, row by row ([H, 2]), as Predict takes them.</summary>
        public static float[] Future(DateTime last, int horizon) =>
            [.. Enumerable.Range(1, horizon).Select(h => last.AddHours(h)).SelectMany(t => new[] { t.Hour, (float)t.DayOfWeek })];
    }

    /// <summary>A row of the series with its calendar features.</summary>
    public sealed class SeriesRow : EttRow
    {
        public float Hour { get; set; }
        public float DayOfWeek { get; set; }
    }

    /// <summary>The forecaster's output columns: targets × horizon, target-major.</summary>
    public sealed class ForecastRow
    {
        public float[] Forecast { get; set; } = [];
        public float[] LowerBound { get; set; } = [];
        public float[] UpperBound { get; set; } = [];
    }

    /// <summary>Mean squared and mean absolute error, accumulated.</summary>
    internal sealed class Errors
    {
        private double _squares, _absolutes;
        private long _count;

        public void Add(float forecast, float actual)
        {
            double e = forecast - actual;
            _squares += e * e;
            _absolutes += Math.Abs(e);
            _count++;
        }

        public double Mse => _squares / _count;
        public double Mae => _absolutes / _count;
    }
}
