using FastAttention.Bench;
using ScottPlot;

/// <summary>The README's plot: GFLOP/s per case at one thread count for each engine, from benchmark JSON files.</summary>
internal static class ResultsPlot
{
    private static readonly string[] Engines = ["FastAttention", "PyTorch", "Naive"];

    public static void Write(string path, IReadOnlyList<BenchReport> reports, int threads)
    {
        // One bar per engine and case; FastAttention from the first report that has it (the peers run measures both).
        // The plain fp32 attention prefill cases: no decode, mask, element-type, GEMM or layer case.
        var prefill = BenchCase.All.Where(c => !c.IsDecode && !c.IsMasked && c.Storage == InputStorage.Float32).Select(c => c.Name).ToHashSet();
        var results = reports.SelectMany(r => r.Results).Where(r => r.Threads == threads && prefill.Contains(r.Case)).ToList();
        string[] cases = results.Select(r => r.Case).Distinct().ToArray();
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var legend = new List<LegendItem>();
        for (int e = 0; e < Engines.Length; e++)
        {
            var bars = new List<Bar>();
            for (int c = 0; c < cases.Length; c++)
            {
                var r = results.FirstOrDefault(x => x.Case == cases[c] && x.Engine == Engines[e]);
                if (r is null) continue;
                bars.Add(new Bar { Position = c * (Engines.Length + 1) + e, Value = r.Gflops, FillColor = palette.GetColor(e), Label = $"{r.Gflops:F0}" });
            }
            if (bars.Count == 0) continue;
            var series = plot.Add.Bars(bars);
            series.ValueLabelStyle.FontSize = 9;
            legend.Add(new LegendItem { LabelText = Engines[e], FillColor = palette.GetColor(e) });
        }
        plot.Axes.Bottom.SetTicks(cases.Select((_, c) => c * (Engines.Length + 1) + 1.0).ToArray(), cases);
        plot.Axes.Margins(bottom: 0);
        plot.YLabel("GFLOP/s (fp32)");
        string cpu = reports.FirstOrDefault()?.Cpu ?? "";
        double peak = reports.FirstOrDefault()?.FmaPeakGflops.GetValueOrDefault(threads.ToString()) ?? 0;
        plot.Title($"Attention prefill, {threads} thread(s), {cpu}; FMA peak {peak:F0} GFLOP/s");
        if (peak > 0)
        {
            plot.Add.HorizontalLine(peak, color: Colors.Gray, pattern: LinePattern.Dashed);
            legend.Add(new LegendItem { LabelText = "FMA peak", LineColor = Colors.Gray, LinePattern = LinePattern.Dashed, LineWidth = 1 }); // a line label would cover the tick labels
            plot.Axes.SetLimitsY(0, peak * 1.08);
        }
        plot.ShowLegend(legend, Alignment.UpperLeft); // tiny, always first, has the lowest bars: the right-hand cases have the tallest
        plot.SavePng(path, 1000, 520);
    }
}
