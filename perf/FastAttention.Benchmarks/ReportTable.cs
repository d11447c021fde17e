using FastAttention.Bench;
using Spectre.Console;

internal static class ReportTable
{
    public static Table Build(BenchReport report)
    {
        var table = new Table().Title($"{report.Cpu} — FMA peak {string.Join(", ", report.FmaPeakGflops.Select(kv => $"{kv.Value:F0} GFLOP/s @{kv.Key}t"))}, read {string.Join(", ", report.ReadBandwidthGbs.Select(kv => $"{kv.Value:F1} GB/s @{kv.Key}t"))}");
        foreach (string h in ReportRows.Header) table.AddColumn(new TableColumn(h).RightAligned());
        foreach (var row in ReportRows.Rows(report)) table.AddRow(row.Select(Markup.Escape).ToArray());
        return table;
    }
}
