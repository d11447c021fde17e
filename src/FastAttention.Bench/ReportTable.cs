namespace FastAttention.Bench;

/// <summary>The quick benchmark's table as plain rows, for any renderer.</summary>
public static class ReportRows
{
    public static readonly string[] Header = ["case", "engine", "threads", "median", "GFLOP/s", "GB/s", "% of peak", "vs naive", "vs PyTorch", "alloc B/call", "per visible score vs unmasked", "time vs fp32", "time vs 1 query head per KV head"];

    public static IEnumerable<string[]> Rows(BenchReport report)
    {
        foreach (var r in report.Results)
        {
            yield return
            [
                r.Case, r.Engine, r.Threads.ToString(), FormatTime(r.MedianNs), $"{r.Gflops:F1}", $"{r.Gbs:F1}",
                $"{r.PeakFraction * 100:F0} %", Speedup(report, r, "Naive"), Speedup(report, r, "PyTorch"), r.AllocatedBytes.ToString(),
                r.VersusUnmasked is double m ? $"{m:F2}×" : "", VersusFloat32(r), r.VersusUngrouped is double g ? $"{g:F2}×" : "",
            ];
        }
    }

    /// <summary>The median ratio to fp32, with the range over the allocations it is the median of.</summary>
    private static string VersusFloat32(BenchResult r) => r.VersusFloat32 is not double f ? ""
        : r.VersusFloat32PerAllocation is { Length: > 1 } all ? $"{f:F2}× ({all.Min():F2}–{all.Max():F2})" : $"{f:F2}×";

    /// <summary>How many times faster FastAttention's result is than <paramref name="peer"/>'s on the same case and threads, in this run.</summary>
    private static string Speedup(BenchReport report, BenchResult r, string peer)
    {
        if (r.Engine != "FastAttention") return "";
        var other = report.Results.FirstOrDefault(x => x.Case == r.Case && x.Threads == r.Threads && x.Engine == peer);
        if (other is null) return "";
        string separate = $"{other.MedianNs / r.MedianNs:F1}×";
        return peer == "PyTorch" && r.PyTorchOverOursInterleaved is double i ? $"{separate} (interleaved {i:F2}×)" : separate;
    }

    /// <summary>The report as a markdown page: the machine's peaks, then one table row per result.</summary>
    public static string Markdown(BenchReport report)
    {
        var text = new System.Text.StringBuilder();
        text.AppendLine(System.FormattableString.Invariant($"Quick benchmark, {report.Cpu}, .NET {Environment.Version}, fp32."));
        string peaks = string.Join(", ", report.FmaPeakGflops.Select(kv => System.FormattableString.Invariant($"{kv.Value:F0} GFLOP/s at {kv.Key} thread(s)")));
        string bandwidth = string.Join(", ", report.ReadBandwidthGbs.Select(kv => System.FormattableString.Invariant($"{kv.Value:F1} GB/s at {kv.Key}")));
        text.AppendLine($"FMA peak measured in the same process: {peaks}; read bandwidth: {bandwidth}.");
        text.AppendLine();
        text.AppendLine("| " + string.Join(" | ", Header) + " |");
        text.AppendLine("|" + string.Concat(Enumerable.Repeat("---|", Header.Length)));
        foreach (var row in Rows(report)) text.AppendLine("| " + string.Join(" | ", row) + " |");
        return text.ToString();
    }

    public static string FormatTime(double ns) => ns switch
    {
        < 1e3 => $"{ns:F0} ns",
        < 1e6 => $"{ns / 1e3:F1} µs",
        < 1e9 => $"{ns / 1e6:F2} ms",
        _ => $"{ns / 1e9:F2} s",
    };
}
