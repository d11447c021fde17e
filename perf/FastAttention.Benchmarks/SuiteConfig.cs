using System.Collections.Concurrent;
using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Exporters.Json;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using FastAttention.Bench;

/// <summary>
/// The BenchmarkDotNet suite's configuration: GFLOP/s (GB/s for decode) and the fraction of the FMA peak (read
/// bandwidth) beside BenchmarkDotNet's own columns (the ratio to the naive baseline among them), exported as JSON
/// and GitHub markdown into perf/results/&lt;cpu&gt;/bdn. The peaks are measured in the host process when the summary
/// is built, on the same machine and just after the runs.
/// </summary>
internal static class SuiteConfig
{
    public static IConfig Create() => DefaultConfig.Instance
        .AddColumn(new ThroughputColumn(peakFraction: false), new ThroughputColumn(peakFraction: true))
        .AddExporter(JsonExporter.Full) // GitHub markdown is in the default configuration already
        .WithArtifactsPath(Path.Combine("perf", "results", CpuFolder(), "bdn"));

    /// <summary>A folder name for this CPU, e.g. "amd-epyc-2-cores".</summary>
    public static string CpuFolder()
    {
        string name = QuickBenchmark.CpuName().ToLowerInvariant();
        var chars = name.Select(c => char.IsLetterOrDigit(c) ? c : '-').ToArray();
        return string.Join('-', new string(chars).Split('-', StringSplitOptions.RemoveEmptyEntries));
    }

    private sealed class ThroughputColumn(bool peakFraction) : IColumn
    {
        private static readonly ConcurrentDictionary<(bool Decode, int Threads), double> Peaks = new();

        public string Id => $"{nameof(ThroughputColumn)}.{peakFraction}";
        public string ColumnName => peakFraction ? "% of peak" : "GFLOP/s or GB/s";
        public string Legend => peakFraction
            ? "GFLOP/s over the FMA peak (GB/s over the read bandwidth for decode) measured on this machine at that thread count"
            : "4·H·Lq·Lk·D per second (half for causal); decode cases: K and V bytes per second";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => peakFraction ? 1 : 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var statistics = summary[benchmarkCase]?.ResultStatistics;
            if (statistics is null) return "-";
            var c = BenchCase.All.First(x => x.Name == (string)benchmarkCase.Parameters["Case"]);
            int threads = (int)benchmarkCase.Parameters["Threads"];
            double value = c.IsDecode ? c.KeyValueBytes / statistics.Median : c.Flops / statistics.Median;
            if (!peakFraction) return value.ToString("F1", CultureInfo.InvariantCulture);
            double peak = Peaks.GetOrAdd((c.IsDecode, threads), key => key.Decode
                ? MachinePeaks.ReadBandwidthGbs(key.Threads, MachinePeaks.AllocateBandwidthBuffer())
                : MachinePeaks.FmaPeakGflops(key.Threads));
            return (value / peak).ToString("P0", CultureInfo.InvariantCulture);
        }
    }
}
