using System.Globalization;
using BenchmarkDotNet.Running;
using FastAttention.Bench;
using Spectre.Console;

// --quick [--json FILE] [--baseline FILE --max-regression PCT]: the regression mode; anything else goes to BenchmarkDotNet.
if (!args.Contains("--quick"))
{
    BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    return 0;
}

string? json = Value("--json");
string? baseline = Value("--baseline");
double maxRegression = double.Parse(Value("--max-regression") ?? "10", CultureInfo.InvariantCulture);

var report = QuickBenchmark.Run(QuickBenchmark.Quick, message => Console.Error.WriteLine($"  {message}"));
AnsiConsole.Write(ReportTable.Build(report));
if (json is not null)
{
    File.WriteAllText(json, QuickBenchmark.ToJson(report));
    Console.WriteLine($"wrote {json}");
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
