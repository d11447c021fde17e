using System.Globalization;
using BenchmarkDotNet.Running;
using FastAttention.Bench;
using Spectre.Console;

// --quick [--json FILE] [--markdown FILE] [--baseline FILE --max-regression PCT] [--cases PREFIX,...]: the regression mode; anything else goes
// to BenchmarkDotNet. --cases keeps the cases whose names start with one of the prefixes (for iterating on a few).
if (!args.Contains("--quick"))
{
    BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    return 0;
}

string? json = Value("--json");
string? baseline = Value("--baseline");
double maxRegression = double.Parse(Value("--max-regression") ?? "10", CultureInfo.InvariantCulture);

var settings = QuickBenchmark.Quick;
if (Value("--cases") is string prefixes)
{
    string[] wanted = prefixes.Split(',', StringSplitOptions.RemoveEmptyEntries);
    settings = settings with { Cases = settings.Cases.Where(c => wanted.Any(p => c.Name.StartsWith(p, StringComparison.Ordinal))).ToList() };
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
