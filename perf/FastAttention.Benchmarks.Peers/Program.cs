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
var cases = BenchCase.All.Where(c => !c.IsMasked && c.Storage == InputStorage.Float32 && c.Name != "L4096d128c" && (wanted.Length == 0 || wanted.Any(p => c.Name.StartsWith(p, StringComparison.Ordinal)))).ToList();
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
            Action fastAttention = () => Attention.Compute(q, k, v, o, shape, options);
            Action pyTorch = () =>
            {
                using var r = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, null, 0.0, causal);
            };
            var oursResult = QuickBenchmark.Measure(c, "FastAttention", t, fma, bandwidth, 1.0, fastAttention);
            if (t == 1)
            {
                // One thread: no OpenMP worker spins between PyTorch's calls (see TimedPair), so the engines' calls can
                // alternate, and the ratio no longer carries the host's speed in each engine's own seconds.
                var (fastNs, torchNs) = QuickBenchmark.MeasureInterleaved(1.0, fastAttention, pyTorch);
                oursResult = oursResult with { PyTorchOverOursInterleaved = torchNs / fastNs };
            }
            results.Add(oursResult);
            results.Add(QuickBenchmark.Measure(c, "PyTorch", t, fma, bandwidth, 1.0, pyTorch));

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

// Issue 7: the GEMM against torch.nn.functional.linear, and the layer against torch.nn.MultiheadAttention (whose
// forward is multi_head_attention_forward) on the same weights; a decode step against the same module called with
// the new token as query and the cached tokens as key and value (nn.MultiheadAttention has no key-value cache).
using (torch.no_grad())
{
    foreach (var (name, m, n, k) in new[] { ("gemm256", 256, 256, 256), ("gemm512", 512, 512, 512), ("gemm2048x512x512", 2048, 512, 512) })
    {
        if (wanted.Length > 0 && !wanted.Any(p => name.StartsWith(p, StringComparison.Ordinal))) continue;
        var random = new Random(7);
        float[] x = Fill(random, (long)m * k), w = Fill(random, (long)n * k), b = Fill(random, n), y = new float[(long)m * n];
        var packed = PackedWeights.Pack(w, b, n, k);
        using var tx = torch.tensor(x, [m, k]);
        using var tw = torch.tensor(w, [n, k]);
        using var tb = torch.tensor(b, [n]);
        foreach (int t in threadCounts)
        {
            torch.set_num_threads(t);
            Console.Error.WriteLine($"  {name} PyTorch / FastAttention {t} thread(s)");
            double flops = 2.0 * m * n * k;
            results.AddRange(TimedPair(name, t, flops, () => Gemm.Multiply(x, packed, y, m, t), () => { using var r = torch.nn.functional.linear(tx, tw, tb); }));
            Gemm.Multiply(x, packed, y, m, t);
            using var expected = torch.nn.functional.linear(tx, tw, tb);
            Compare(name, y, expected.data<float>().ToArray(), 1e-5);
        }
    }

    const int e = 512, h = 8, length = 512, cached = 4096;
    foreach (string name in new[] { "mha-L512-E512-H8", "mha-step-cache4096-E512-H8" })
    {
        if (wanted.Length > 0 && !wanted.Any(p => name.StartsWith(p, StringComparison.Ordinal))) continue;
        var random = new Random(9);
        float[] inProj = Fill(random, 3L * e * e), inBias = Fill(random, 3 * e), outProj = Fill(random, (long)e * e), outBias = Fill(random, e);
        for (int i = 0; i < inProj.Length; i++) inProj[i] /= MathF.Sqrt(e);
        for (int i = 0; i < outProj.Length; i++) outProj[i] /= MathF.Sqrt(e);
        var layer = MultiHeadAttention.FromPyTorch(e, h, inProj, inBias, outProj, outBias);
        using var module = torch.nn.MultiheadAttention(e, h);
        foreach (var (parameterName, parameter) in module.named_parameters())
        {
            float[] source = parameterName switch
            {
                "in_proj_weight" => inProj,
                "in_proj_bias" => inBias,
                "out_proj.weight" => outProj,
                "out_proj.bias" => outBias,
                _ => throw new InvalidOperationException($"unexpected parameter {parameterName}"),
            };
            using var value = torch.tensor(source, parameter.shape);
            parameter.copy_(value);
        }
        module.eval();
        bool step = name.StartsWith("mha-step", StringComparison.Ordinal);
        int tokens = step ? cached + 1 : length;
        float[] x = Fill(random, (long)tokens * e);
        using var tx = torch.tensor(x, [tokens, 1, e]); // (L, N, E): PyTorch's sequence-first layout, N = 1
        using var tq = step ? tx.narrow(0, cached, 1) : tx.alias();
        float[] y = new float[(step ? 1 : length) * e];
        KeyValueCache? cache = null;
        if (step)
        {
            cache = new KeyValueCache(1, h, e / h, cached + 1);
            layer.ForwardStep(x.AsSpan(0, cached * e), cache, new float[cached * e], cached);
        }
        double flops = step ? 2.0 * e * 4 * e + 4.0 * cached * e : 2.0 * length * e * 4 * e + 4.0 * length * length * e;
        foreach (int t in threadCounts)
        {
            torch.set_num_threads(t);
            Console.Error.WriteLine($"  {name} PyTorch / FastAttention {t} thread(s)");
            var options = new AttentionOptions { MaxDegreeOfParallelism = t };
            Action ours = step
                ? () => { layer.ForwardStep(x.AsSpan(cached * e, e), cache!, y, 1, options); cache!.Truncate(cached); }
                : () => layer.Forward(x, y, 1, length, options);
            results.AddRange(TimedPair(name, t, flops, ours, () =>
            {
                var (r, weights) = module.forward(tq, tx, tx, null, false, null);
                r.Dispose();
                weights?.Dispose();
            }));
            ours();
            var (expected, expectedWeights) = module.forward(tq, tx, tx, null, false, null);
            Compare(name, y, expected.data<float>().ToArray(), 1e-5);
            expected.Dispose();
            expectedWeights?.Dispose();
        }
    }
}

var report = new BenchReport(QuickBenchmark.CpuName(), fma, bandwidth, results);
foreach (string[] row in ReportRows.Rows(report)) Console.WriteLine(string.Join(" | ", row));
if (json is not null) File.WriteAllText(json, QuickBenchmark.ToJson(report));
if (markdown is not null) File.WriteAllText(markdown, ReportRows.Markdown(report));
return failures == 0 ? 0 : 1;

// Each engine timed in its own block, as for attention above. Not interleaved: libtorch's OpenMP workers keep
// spinning after each of its calls, which would take the second core from the other engine's helper thread.
BenchResult[] TimedPair(string name, int threads, double flops, Action ours, Action theirs)
{
    double peak = fma[threads.ToString(CultureInfo.InvariantCulture)];
    var (oursNs, oursBytes) = QuickBenchmark.TimeMedian(1.0, ours);
    var (theirsNs, theirsBytes) = QuickBenchmark.TimeMedian(1.0, theirs);
    return
    [
        new BenchResult(name, "FastAttention", threads, oursNs, flops / oursNs, 0, flops / oursNs / peak, oursBytes),
        new BenchResult(name, "PyTorch", threads, theirsNs, flops / theirsNs, 0, flops / theirsNs / peak, theirsBytes),
    ];
}

// Outputs must agree to a relative tolerance of the largest magnitude (fp32 sums in different orders).
void Compare(string name, float[] ours, float[] theirs, double relative)
{
    double worst = 0, scale = 0;
    for (int n = 0; n < ours.Length; n++)
    {
        worst = Math.Max(worst, Math.Abs(ours[n] - theirs[n]));
        scale = Math.Max(scale, Math.Abs(theirs[n]));
    }
    bool agree = worst <= relative * Math.Max(scale, 1);
    if (!agree) failures++;
    Console.Error.WriteLine($"    outputs {(agree ? "agree" : "DIFFER")}: largest difference {worst:E2} (largest value {scale:E2})");
}

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
