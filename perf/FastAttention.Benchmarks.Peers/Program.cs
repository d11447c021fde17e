using System.Globalization;
using FastAttention;
using FastAttention.Bench;
using TorchSharp;

// PyTorch (TorchSharp's scaled_dot_product_attention, libtorch CPU) and FastAttention in one process, on the cases of
// ../shared/BENCHMARKS.md, at 1 thread and all cores; the same JSON as the quick benchmark (engine "PyTorch"), and a
// check that both engines' outputs agree. Usage: [--json FILE] [--markdown FILE] [--cases PREFIX,...]
Console.Error.WriteLine($"  libLibTorchSharp: {ElfVersionPatch.Apply()}");

string? json = Value("--json");
string? markdown = Value("--markdown");
string[] wanted = (Value("--cases") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries);
var cases = BenchCase.All.Where(c => !c.IsMasked && c.Name != "L4096d128c" && (wanted.Length == 0 || wanted.Any(p => c.Name.StartsWith(p, StringComparison.Ordinal)))).ToList();
int[] threadCounts = Environment.ProcessorCount > 1 ? [1, Environment.ProcessorCount] : [1];

Console.Error.WriteLine("  measuring the FMA peak and read bandwidth");
var fma = new Dictionary<string, double>();
var bandwidth = new Dictionary<string, double>();
var buffer = MachinePeaks.AllocateBandwidthBuffer();
foreach (int t in threadCounts)
{
    fma[t.ToString(CultureInfo.InvariantCulture)] = MachinePeaks.FmaPeakGflops(t);
    bandwidth[t.ToString(CultureInfo.InvariantCulture)] = MachinePeaks.ReadBandwidthGbs(t, buffer);
}
buffer = null;
GC.Collect();

var results = new List<BenchResult>();
int failures = 0;
using (torch.no_grad())
{
    foreach (var c in cases)
    {
        var shape = c.Shape;
        var random = new Random(42);
        float[] q = Fill(random, shape.QueryLength), k = Fill(random, shape.KeyLength), v = Fill(random, shape.ValueLength);
        float[] o = new float[shape.OutputLength];
        long[] qDims = [c.Batch, c.QueryHeads, c.QueryCount, c.HeadSize], kvDims = [c.Batch, c.KeyValueHeads, c.KeyCount, c.HeadSize];
        using var tq = torch.tensor(q, qDims);
        using var tk0 = torch.tensor(k, kvDims);
        using var tv0 = torch.tensor(v, kvDims);
        // Grouped-query heads: PyTorch's CPU kernel wants as many key-value heads as query heads; expanded once, untimed.
        int group = c.QueryHeads / c.KeyValueHeads;
        using var tk = group == 1 ? tk0.alias() : tk0.repeat_interleave(group, 1).contiguous();
        using var tv = group == 1 ? tv0.alias() : tv0.repeat_interleave(group, 1).contiguous();
        bool causal = c.Causal; // Lq = Lk for every causal case: PyTorch's top-left alignment is the same mask

        foreach (int t in threadCounts)
        {
            torch.set_num_threads(t);
            Console.Error.WriteLine($"  {c.Name} PyTorch / FastAttention {t} thread(s)");
            var options = c.Options(t);
            results.Add(QuickBenchmark.Measure(c, "FastAttention", t, fma, bandwidth, 1.0, () => Attention.Compute(q, k, v, o, shape, options)));
            results.Add(QuickBenchmark.Measure(c, "PyTorch", t, fma, bandwidth, 1.0, () =>
            {
                using var r = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, null, 0.0, causal);
            }));

            // Both engines' outputs on these inputs must agree (fp32 kernels, different summation orders).
            Attention.Compute(q, k, v, o, shape, options);
            using var expected = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, null, 0.0, causal);
            float[] theirs = expected.data<float>().ToArray();
            double worst = 0;
            for (int n = 0; n < o.Length; n++) worst = Math.Max(worst, Math.Abs(o[n] - theirs[n]));
            bool agree = worst <= 1e-5;
            if (!agree) failures++;
            Console.Error.WriteLine($"    outputs {(agree ? "agree" : "DIFFER")}: largest difference {worst:E2}");
        }
    }
}

var report = new BenchReport(QuickBenchmark.CpuName(), fma, bandwidth, results);
foreach (string[] row in ReportRows.Rows(report)) Console.WriteLine(string.Join(" | ", row));
if (json is not null) File.WriteAllText(json, QuickBenchmark.ToJson(report));
if (markdown is not null) File.WriteAllText(markdown, ReportRows.Markdown(report));
return failures == 0 ? 0 : 1;

static float[] Fill(Random random, long length)
{
    var a = new float[length];
    for (long i = 0; i < a.Length; i++) a[i] = random.NextSingle() * 2 - 1;
    return a;
}

string? Value(string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}
