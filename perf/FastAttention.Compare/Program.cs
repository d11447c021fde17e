using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using FastAttention.Compare;

// Two or more builds of the library in one process, called in turn on the same arrays: the host's slow spells and
// the physical memory the arrays got are then the same for every build, which separate processes cannot give on a
// shared machine (the same decode call moved by a third between processes here, the ratio of two builds by a few
// percent). Each build is a folder holding its FastAttention.dll (copy it out of src/FastAttention/bin/Release/net10.0).
var builds = new Argument<string[]>("builds") { Description = "Folders holding a FastAttention.dll each; the first is the baseline.", Arity = new ArgumentArity(2, 16) };
var heads = new Option<int>("--heads") { Description = "Query heads.", DefaultValueFactory = _ => 8 };
var kvHeads = new Option<int?>("--kv-heads") { Description = "Key-value heads (default: as many as query heads)." };
var queries = new Option<int?>("--queries") { Description = "Query rows (default: as many as keys)." };
var keys = new Option<int>("--keys") { Description = "Keys.", DefaultValueFactory = _ => 2048 };
var headSize = new Option<int>("--head-size") { Description = "Head size.", DefaultValueFactory = _ => 64 };
var causal = new Option<bool>("--causal") { Description = "Top-left causal mask." };
var window = new Option<int>("--window") { Description = "Sliding window of this many keys to the left (with --causal).", DefaultValueFactory = _ => -1 };
var softCap = new Option<float>("--soft-cap") { Description = "Logit soft-cap." };
var bias = new Option<bool>("--bias") { Description = "An additive bias [1, H, Lq, Lk]." };
var kv = new Option<string>("--kv") { Description = "Key and value storage: fp32, f16 or i8.", DefaultValueFactory = _ => "fp32" };
kv.AcceptOnlyFromAmong("fp32", "f16", "i8");
var threads = new Option<int>("--threads") { Description = "MaxDegreeOfParallelism.", DefaultValueFactory = _ => 1 };
var reps = new Option<int>("--reps") { Description = "Timed calls per build.", DefaultValueFactory = _ => 21 };
reps.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError("--reps must be at least 1."); });
var root = new RootCommand("Times builds of FastAttention against each other in one process.") { builds, heads, kvHeads, queries, keys, headSize, causal, window, softCap, bias, kv, threads, reps };
root.SetAction(p =>
{
    int h = p.GetValue(heads), lk = p.GetValue(keys);
    var problem = new Problem(h, p.GetValue(kvHeads) ?? h, p.GetValue(queries) ?? lk, lk, p.GetValue(headSize), p.GetValue(causal), p.GetValue(window),
        p.GetValue(softCap), p.GetValue(bias), p.GetValue(kv)!, p.GetValue(threads));
    try
    {
        Run(p.GetValue(builds)!, problem, p.GetValue(reps));
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

static void Run(string[] folders, Problem problem, int reps)
{
    var random = new Random(1);
    float[] Fill(long n)
    {
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = random.NextSingle() * 2 - 1;
        return a;
    }
    int d = problem.HeadSize;
    float[] query = Fill((long)problem.Heads * problem.Queries * d), key = Fill((long)problem.KeyValueHeads * problem.Keys * d);
    float[] value = Fill((long)problem.KeyValueHeads * problem.Keys * d), output = new float[(long)problem.Heads * problem.Queries * d];
    Half[]? halfKey = problem.KeyValue == "f16" ? Array.ConvertAll(key, x => (Half)x) : null, halfValue = problem.KeyValue == "f16" ? Array.ConvertAll(value, x => (Half)x) : null;
    sbyte[]? int8Key = null, int8Value = null;
    float[]? keyScales = null, valueScales = null;
    if (problem.KeyValue == "i8")
    {
        // Values in [-1, 1) as q/127: the scale of every row is 1/127.
        int8Key = Array.ConvertAll(key, x => (sbyte)MathF.Round(x * 127));
        int8Value = Array.ConvertAll(value, x => (sbyte)MathF.Round(x * 127));
        keyScales = new float[key.Length / d];
        valueScales = new float[value.Length / d];
        Array.Fill(keyScales, 1f / 127);
        Array.Fill(valueScales, 1f / 127);
    }
    float[]? biasValues = problem.Bias ? Fill((long)problem.Heads * problem.Queries * problem.Keys) : null;

    int[] sizes = [problem.Heads, problem.KeyValueHeads, problem.Queries, problem.Keys, d, problem.Causal ? 1 : 0, problem.Window, problem.Threads];
    var calls = folders.Select(f => (Action)new BuildContext(f).Prepare().Invoke(null,
        [sizes, problem.SoftCap, query, key, value, output, halfKey, halfValue, int8Key, int8Value, keyScales, valueScales, biasValues])!).ToArray();
    var watch = Stopwatch.StartNew();
    while (watch.ElapsedMilliseconds < 1500)
        foreach (var call in calls) call(); // past tiered compilation, workspaces grown
    var times = folders.Select(_ => new double[reps]).ToArray();
    var sums = new double[folders.Length];
    for (int r = 0; r < reps; r++)
    {
        for (int k = 0; k < calls.Length; k++)
        {
            int i = (k + r) % calls.Length; // each build goes first in turn
            watch.Restart();
            calls[i]();
            times[i][r] = watch.Elapsed.TotalMilliseconds;
            if (r == reps - 1) sums[i] = output.Sum(x => (double)x);
        }
    }
    var inv = CultureInfo.InvariantCulture;
    Console.WriteLine(string.Create(inv, $"{problem}, {reps} calls per build"));
    for (int i = 0; i < folders.Length; i++)
    {
        var ratios = times[i].Zip(times[0], (x, b) => x / b).Order().ToArray();
        Console.WriteLine(string.Create(inv,
            $"{folders[i],-40} median {Median(times[i]):F3} ms   per call vs {Path.GetFileName(folders[0].TrimEnd('/'))}: median {ratios[reps / 2]:F3} (quartiles {ratios[reps / 4]:F3}-{ratios[3 * reps / 4]:F3})   output sum {sums[i]:E6}"));
    }
}

static double Median(double[] values)
{
    var sorted = values.Order().ToArray();
    return sorted[sorted.Length / 2];
}
