using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using FastAttention.Compare;

// Two or more builds of the library in one process, called in turn on the same arrays: the host's slow spells and
// the physical memory the arrays got are then the same for every build, which separate processes cannot give on a
// shared machine (the same decode call moved by a third between processes here, the ratio of two builds by a few
// percent). Each build is a folder holding its FastAttention.dll (copy it out of src/FastAttention/bin/Release/net10.0).
// Lists in --heads, --kv and --threads time every combination with every build the same way, so that a ratio the
// benchmarks take between cases (32 query heads against 8, Half against fp32 rows, 2 threads against 1) comes from
// one process too.
var builds = new Argument<string[]>("builds") { Description = "Folders holding a FastAttention.dll each; the first is the baseline.", Arity = new ArgumentArity(1, 16) };
var heads = new Option<string>("--heads") { Description = "Query heads, or a comma-separated list of counts to time each of.", DefaultValueFactory = _ => "8" };
var kvHeads = new Option<int?>("--kv-heads") { Description = "Key-value heads (default: as many as the first count of query heads)." };
var queries = new Option<int?>("--queries") { Description = "Query rows (default: as many as keys)." };
var keys = new Option<int>("--keys") { Description = "Keys.", DefaultValueFactory = _ => 2048 };
var headSize = new Option<int>("--head-size") { Description = "Head size.", DefaultValueFactory = _ => 64 };
var causal = new Option<bool>("--causal") { Description = "Top-left causal mask." };
var window = new Option<int>("--window") { Description = "Sliding window of this many keys to the left (with --causal).", DefaultValueFactory = _ => -1 };
var softCap = new Option<float>("--soft-cap") { Description = "Logit soft-cap." };
var bias = new Option<bool>("--bias") { Description = "An additive bias [1, H, Lq, Lk]." };
var kv = new Option<string>("--kv") { Description = "Key and value storage: fp32, f16 or i8, or a comma-separated list of them to time each of.", DefaultValueFactory = _ => "fp32" };
kv.Validators.Add(r =>
{
    foreach (var name in r.GetValueOrDefault<string>().Split(','))
        if (name is not ("fp32" or "f16" or "i8")) r.AddError($"--kv: '{name}' is none of fp32, f16, i8.");
});
var threads = new Option<string>("--threads") { Description = "MaxDegreeOfParallelism, or a comma-separated list of them to time each of.", DefaultValueFactory = _ => "1" };
var reps = new Option<int>("--reps") { Description = "Timed calls per build.", DefaultValueFactory = _ => 21 };
foreach (var counts in new[] { heads, threads })
{
    counts.Validators.Add(r =>
    {
        foreach (var count in r.GetValueOrDefault<string>().Split(','))
            if (!int.TryParse(count, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n < 1) r.AddError($"{counts.Name}: '{count}' is not a positive count.");
    });
}
reps.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError("--reps must be at least 1."); });
var root = new RootCommand("Times builds of FastAttention against each other in one process.") { builds, heads, kvHeads, queries, keys, headSize, causal, window, softCap, bias, kv, threads, reps };
root.SetAction(p =>
{
    int lk = p.GetValue(keys);
    int[] Counts(Option<string> option) => p.GetValue(option)!.Split(',').Select(x => int.Parse(x, CultureInfo.InvariantCulture)).ToArray();
    int[] headCounts = Counts(heads);
    var problems = (from h in headCounts
                    from storage in p.GetValue(kv)!.Split(',')
                    from t in Counts(threads)
                    select new Problem(h, p.GetValue(kvHeads) ?? headCounts[0], p.GetValue(queries) ?? lk, lk, p.GetValue(headSize), p.GetValue(causal), p.GetValue(window),
                        p.GetValue(softCap), p.GetValue(bias), storage, t)).ToArray();
    try
    {
        Run(p.GetValue(builds)!, problems, p.GetValue(reps));
        return 0;
    }
    catch (Exception e) when (e is FileNotFoundException or ArgumentException or BadImageFormatException
        || e is System.Reflection.TargetInvocationException { InnerException: ArgumentException })
    {
        Console.Error.WriteLine((e.InnerException ?? e).Message); // a missing build, or a problem the library refuses
        return 2;
    }
});
return root.Parse(args).Invoke();

static void Run(string[] folders, Problem[] problems, int reps)
{
    var random = new Random(1);
    float[] Fill(long n)
    {
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = random.NextSingle() * 2 - 1;
        return a;
    }
    Problem first = problems[0];
    int d = first.HeadSize;
    // Keys and values are shared by every problem (the same key-value heads); queries and outputs go with a head count.
    float[] key = Fill((long)first.KeyValueHeads * first.Keys * d), value = Fill((long)first.KeyValueHeads * first.Keys * d);
    var queryOf = problems.Select(x => x.Heads).Distinct().ToDictionary(h => h, h => Fill((long)h * first.Queries * d));
    var outputOf = queryOf.Keys.ToDictionary(h => h, h => new float[(long)h * first.Queries * d]);
    bool anyHalf = problems.Any(x => x.KeyValue == "f16"), anyInt8 = problems.Any(x => x.KeyValue == "i8");
    Half[]? halfKey = anyHalf ? Array.ConvertAll(key, x => (Half)x) : null, halfValue = anyHalf ? Array.ConvertAll(value, x => (Half)x) : null;
    sbyte[]? int8Key = null, int8Value = null;
    float[]? keyScales = null, valueScales = null;
    if (anyInt8)
    {
        // Values in [-1, 1) as q/127: the scale of every row is 1/127.
        int8Key = Array.ConvertAll(key, x => (sbyte)MathF.Round(x * 127));
        int8Value = Array.ConvertAll(value, x => (sbyte)MathF.Round(x * 127));
        keyScales = new float[key.Length / d];
        valueScales = new float[value.Length / d];
        Array.Fill(keyScales, 1f / 127);
        Array.Fill(valueScales, 1f / 127);
    }
    var biasOf = first.Bias ? queryOf.Keys.ToDictionary(h => h, h => Fill((long)h * first.Queries * first.Keys)) : null;

    // Every build with every problem: one call each, in turn.
    var runs = (from folder in folders
                let prepare = new BuildContext(folder).Prepare()
                from problem in problems
                select (Name: Label(folder, problem, folders.Length, problems.Length), problem.Heads,
                    Call: (Action)prepare.Invoke(null,
                    [
                        new[] { problem.Heads, problem.KeyValueHeads, problem.Queries, problem.Keys, d, problem.Causal ? 1 : 0, problem.Window, problem.Threads },
                        problem.SoftCap, queryOf[problem.Heads], key, value, outputOf[problem.Heads],
                        problem.KeyValue == "f16" ? halfKey : null, problem.KeyValue == "f16" ? halfValue : null,
                        problem.KeyValue == "i8" ? int8Key : null, problem.KeyValue == "i8" ? int8Value : null,
                        problem.KeyValue == "i8" ? keyScales : null, problem.KeyValue == "i8" ? valueScales : null, biasOf?[problem.Heads],
                    ])!)).ToArray();
    var watch = Stopwatch.StartNew();
    while (watch.ElapsedMilliseconds < 1500)
        foreach (var run in runs) run.Call(); // past tiered compilation, workspaces grown
    var times = runs.Select(_ => new double[reps]).ToArray();
    var sums = new double[runs.Length];
    for (int r = 0; r < reps; r++)
    {
        for (int k = 0; k < runs.Length; k++)
        {
            int i = (k + r) % runs.Length; // each goes first in turn
            long start = Stopwatch.GetTimestamp();
            runs[i].Call();
            times[i][r] = (Stopwatch.GetTimestamp() - start) * 1000.0 / Stopwatch.Frequency; // not TimeSpan's 100 ns ticks: a tiny call is 1-2 us
            if (r == reps - 1) sums[i] = outputOf[runs[i].Heads].Sum(x => (double)x);
        }
    }
    var inv = CultureInfo.InvariantCulture;
    Console.WriteLine(string.Create(inv, $"{(problems.Length == 1 ? first : first with { Heads = 0, KeyValue = "", Threads = 0 })}, {reps} calls each"));
    for (int i = 0; i < runs.Length; i++)
    {
        var ratios = times[i].Zip(times[0], (x, b) => x / b).Order().ToArray();
        Console.WriteLine(string.Create(inv,
            $"{runs[i].Name,-40} median {Time(Median(times[i]))}   per call vs {runs[0].Name}: median {ratios[reps / 2]:F3} (quartiles {ratios[reps / 4]:F3}-{ratios[3 * reps / 4]:F3})   output sum {sums[i]:E6}"));
    }
}

// A run's name: the build's folder, and the problem's head count, storage and threads where more than one problem is timed.
static string Label(string folder, Problem problem, int buildCount, int problemCount) =>
    problemCount == 1 ? folder : string.Create(CultureInfo.InvariantCulture,
        $"{(buildCount == 1 ? Path.GetFileName(folder.TrimEnd('/')) : folder)} H{problem.Heads} {problem.KeyValue} {problem.Threads}t");

static double Median(double[] values)
{
    var sorted = values.Order().ToArray();
    return sorted[sorted.Length / 2];
}

// Milliseconds with three decimals, or microseconds below a tenth of a millisecond (a small call's whole time).
static string Time(double milliseconds) => milliseconds >= 0.1
    ? string.Create(CultureInfo.InvariantCulture, $"{milliseconds:F3} ms")
    : string.Create(CultureInfo.InvariantCulture, $"{milliseconds * 1000:F3} µs");
