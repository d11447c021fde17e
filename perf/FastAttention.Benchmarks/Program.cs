using System.Globalization;
using BenchmarkDotNet.Running;
using FastAttention.Bench;
using Spectre.Console;

// --quick [--json FILE] [--markdown FILE] [--baseline FILE --max-regression PCT] [--cases PREFIX,...]: the regression mode; anything else goes
// to BenchmarkDotNet. --cases keeps the cases whose names start with one of the prefixes (for iterating on a few).
// --plot PNG --from JSON[,JSON...] [--threads N]: the README's bar chart from benchmark results (quick and peers).
if (args.Contains("--plot"))
{
    var reports = (Value("--from") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(f => QuickBenchmark.FromJson(File.ReadAllText(f))).ToList();
    ResultsPlot.Write(Value("--plot")!, reports, int.Parse(Value("--threads") ?? "1", CultureInfo.InvariantCulture));
    Console.WriteLine($"wrote {Value("--plot")}");
    return 0;
}
if (!args.Contains("--quick"))
{
    BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, SuiteConfig.Create());
    return 0;
}

string? json = Value("--json");
string? baseline = Value("--baseline");
double maxRegression = double.Parse(Value("--max-regression") ?? "10", CultureInfo.InvariantCulture);

var settings = QuickBenchmark.Quick;
if (Value("--cases") is string prefixes)
{
    string[] wanted = prefixes.Split(',', StringSplitOptions.RemoveEmptyEntries);
    settings = settings with
    {
        Cases = settings.Cases.Where(c => wanted.Any(p => c.Name.StartsWith(p, StringComparison.Ordinal))).ToList(),
        Layers = settings.Layers.Where(c => wanted.Any(p => c.Name.StartsWith(p, StringComparison.Ordinal))).ToList(),
    };
}
var report = QuickBenchmark.Run(settings, message => Console.Error.WriteLine($"  {message}"));
AnsiConsole.Write(ReportTable.Build(report));
if (json is not null)
{
    File.WriteAllText(json, QuickBenchmark.ToJson(report));
    Console.WriteLine($"wrote {json}");
}
if (Value("--markdown") is string markdown)
{
    File.WriteAllText(markdown, ReportRows.Markdown(report));
    Console.WriteLine($"wrote {markdown}");
}
if (baseline is not null)
{
    var failures = QuickBenchmark.Regressions(report, QuickBenchmark.FromJson(File.ReadAllText(baseline)), maxRegression);
    foreach (string f in failures) Console.WriteLine($"REGRESSION {f}");
    if (failures.Count > 0) return 1;
    Console.WriteLine($"no case slower than {baseline} by more than {maxRegression}%");
}
return 0;

string? Value(string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}
