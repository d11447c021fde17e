using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace FastAttention.Bench;

public sealed record BenchResult(
    [property: JsonPropertyName("case")] string Case,
    [property: JsonPropertyName("engine")] string Engine,
    [property: JsonPropertyName("threads")] int Threads,
    [property: JsonPropertyName("median_ns")] double MedianNs,
    [property: JsonPropertyName("gflops")] double Gflops,
    [property: JsonPropertyName("gbs")] double Gbs,
    [property: JsonPropertyName("peak_fraction")] double PeakFraction,
    [property: JsonPropertyName("allocated_bytes")] long AllocatedBytes)
{
    /// <summary>Mask cases: time per visible score over that of the unmasked call on the same arrays, measured interleaved with it (1 = free).</summary>
    [JsonPropertyName("per_visible_score_vs_unmasked")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? VersusUnmasked { get; init; }

    /// <summary>Cases with narrower inputs: time over that of the fp32 call on the same values, measured interleaved with it (median over fresh allocations).</summary>
    [JsonPropertyName("time_vs_fp32")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? VersusFloat32 { get; init; }

    /// <summary>
    /// Grouped-query cases (more query heads than key-value heads, fp32): time over that of one query head per key-value
    /// head (dec4kH8's shape for dec4k) on the same key and value arrays, measured interleaved with it. Both read the
    /// same bytes of K and V, so 1 means the extra query heads cost nothing.
    /// </summary>
    [JsonPropertyName("time_vs_one_query_head_per_kv_head")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? VersusUngrouped { get; init; }

    /// <summary>
    /// Peers runs, 1 thread: PyTorch's median time over FastAttention's on the same case, the two engines' calls
    /// alternated (separately timed cases also carry the host's speed in each case's seconds).
    /// </summary>
    [JsonPropertyName("pytorch_time_over_ours_interleaved")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? PyTorchOverOursInterleaved { get; init; }

    /// <summary>The ratio on each fresh pair of arrays <see cref="VersusFloat32"/> is the median of.</summary>
    [JsonPropertyName("time_vs_fp32_per_allocation")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double[]? VersusFloat32PerAllocation { get; init; }
}

public sealed record BenchReport(
    [property: JsonPropertyName("cpu")] string Cpu,
    [property: JsonPropertyName("fma_peak_gflops")] Dictionary<string, double> FmaPeakGflops,
    [property: JsonPropertyName("read_bandwidth_gbs")] Dictionary<string, double> ReadBandwidthGbs,
    [property: JsonPropertyName("results")] List<BenchResult> Results);

[JsonSerializable(typeof(BenchReport))]
[JsonSourceGenerationOptions(WriteIndented = true)]
public sealed partial class BenchJsonContext : JsonSerializerContext;

/// <summary>
/// The quick regression benchmark: every case at 1 thread and at all cores, FastAttention beside the naive
/// TensorPrimitives baseline, medians over repetitions, against the FMA peak and read bandwidth measured here.
/// </summary>
public static class QuickBenchmark
{
    public sealed record Settings(IReadOnlyList<BenchCase> Cases, IReadOnlyList<int> ThreadCounts, bool IncludeNaive, double SecondsPerMeasurement)
    {
        /// <summary>GEMM and layer cases (issue 7), after the attention cases.</summary>
        public IReadOnlyList<LayerCase> Layers { get; init; } = LayerCase.All;
    }

    public static Settings Quick => new(
        BenchCase.All.Where(c => c.Name != "L4096d128c").ToList(),
        Environment.ProcessorCount > 1 ? [1, Environment.ProcessorCount] : [1],
        IncludeNaive: true,
        SecondsPerMeasurement: 1.0);

    /// <summary>Fresh pairs of typed and fp32 arrays a narrower-input case compares on (see <see cref="Run"/>).</summary>
    public const int TypedAllocations = 3;

    public static BenchReport Run(Settings settings, Action<string>? progress = null)
    {
        progress?.Invoke("measuring the FMA peak and read bandwidth");
        var fma = new Dictionary<string, double>();
        var bandwidth = new Dictionary<string, double>();
        var buffer = MachinePeaks.AllocateBandwidthBuffer();
        foreach (int t in settings.ThreadCounts)
        {
            fma[t.ToString()] = MachinePeaks.FmaPeakGflops(t);
            bandwidth[t.ToString()] = MachinePeaks.ReadBandwidthGbs(t, buffer);
        }
        buffer = null;
        GC.Collect();

        var results = new List<BenchResult>();
        foreach (var c in settings.Cases)
        {
            var shape = c.Shape;
            var random = new Random(42);
            float[] q = Fill(random, shape.QueryLength), k = Fill(random, shape.KeyLength), v = Fill(random, shape.ValueLength);
            float[] o = new float[shape.OutputLength];
            var masks = c.CreateMasks();
            foreach (int t in settings.ThreadCounts)
            {
                progress?.Invoke($"{c.Name} FastAttention {t} thread(s)");
                var options = c.Options(t);
                var typed = c.Storage == InputStorage.Float32 ? null : TypedInputs.Create(c, q, k, v);
                Action call = typed is not null ? () => typed.Compute(o, shape, options)
                    : c.IsMasked ? () => Attention.Compute(q, k, v, o, shape, options, masks.Tensors) : () => Attention.Compute(q, k, v, o, shape, options);
                var result = Measure(c, "FastAttention", t, fma, bandwidth, settings.SecondsPerMeasurement, call);
                if (typed is not null)
                {
                    // Against fp32 inputs holding the same values, the two calls interleaved, on TypedAllocations
                    // fresh pairs of arrays (all kept alive, so that none reuses another's memory): on this shared host
                    // the same fp32 decode call on six allocations in one process measured 8.4 to 10.8 ms (which
                    // physical memory each array got), so a single pair says as much about placement as about the
                    // kernel. The median ratio is reported, every ratio kept in the JSON.
                    var inputs = new List<TypedInputs> { typed };
                    var ratios = new double[TypedAllocations];
                    for (int a = 0; a < ratios.Length; a++)
                    {
                        if (a > 0) inputs.Add(TypedInputs.Create(c, q, k, v));
                        var pair = inputs[a];
                        var (floatNs, typedNs) = MeasureInterleaved(settings.SecondsPerMeasurement,
                            () => Attention.Compute(pair.WidenedQuery, pair.WidenedKey, pair.WidenedValue, o, shape, options), () => pair.Compute(o, shape, options));
                        ratios[a] = typedNs / floatNs;
                    }
                    result = result with { VersusFloat32 = Median(ratios), VersusFloat32PerAllocation = ratios };
                }
                if (c.QueryHeads > c.KeyValueHeads && typed is null && !c.IsMasked)
                {
                    // The same keys and values (the same arrays) read by one query head per key-value head, the two
                    // calls interleaved: measured as separate cases, the ratio also carried where each case's arrays
                    // landed in physical memory and the host's speed in each case's second (see TypedAllocations).
                    var ungrouped = (c with { QueryHeads = c.KeyValueHeads }).Shape;
                    float[] q1 = q[..(int)ungrouped.QueryLength], o1 = new float[ungrouped.OutputLength];
                    var (ungroupedNs, groupedNs) = MeasureInterleaved(settings.SecondsPerMeasurement,
                        () => Attention.Compute(q1, k, v, o1, ungrouped, options), call);
                    result = result with { VersusUngrouped = groupedNs / ungroupedNs };
                }
                if (c.IsMasked)
                {
                    // Per visible score against the unmasked kernel on the same arrays, the two calls interleaved so
                    // that a slow spell of this shared machine slows both alike.
                    var plainOptions = new AttentionOptions { MaxDegreeOfParallelism = t };
                    var (plainNs, maskedNs) = MeasureInterleaved(settings.SecondsPerMeasurement,
                        () => Attention.Compute(q, k, v, o, shape, plainOptions), () => Attention.Compute(q, k, v, o, shape, options, masks.Tensors));
                    double plainScores = (double)shape.Batch * shape.QueryHeads * shape.QueryCount * shape.KeyCount;
                    result = result with { VersusUnmasked = maskedNs / c.VisibleScores / (plainNs / plainScores) };
                }
                results.Add(result);
                if (settings.IncludeNaive && !c.IsMasked && c.Storage == InputStorage.Float32)
                {
                    progress?.Invoke($"{c.Name} naive {t} thread(s)");
                    results.Add(Measure(c, "Naive", t, fma, bandwidth, settings.SecondsPerMeasurement,
                        () => NaiveAttention.Compute(q, k, v, o, c, t)));
                }
            }
        }
        foreach (var layer in settings.Layers)
        {
            foreach (int t in settings.ThreadCounts)
            {
                progress?.Invoke($"{layer.Name} FastAttention {t} thread(s)");
                Action call = layer.Prepare(t);
                var (median, allocated) = TimeMedian(settings.SecondsPerMeasurement, call);
                results.Add(new BenchResult(layer.Name, "FastAttention", t, median, layer.Flops / median, 0, layer.Flops / median / fma[t.ToString()], allocated));
            }
        }
        return new BenchReport(CpuName(), fma, bandwidth, results);
    }

    public static BenchResult Measure(BenchCase c, string engine, int threads, Dictionary<string, double> fma, Dictionary<string, double> bandwidth,
        double seconds, Action call)
    {
        var (median, allocatedPerCall) = TimeMedian(seconds, call);
        double gflops = c.Flops / median;
        double gbs = c.KeyValueBytes / median;
        double peak = c.IsDecode ? gbs / bandwidth[threads.ToString()] : gflops / fma[threads.ToString()];
        return new BenchResult(c.Name, engine, threads, median, gflops, gbs, peak, allocatedPerCall);
    }

    /// <summary>The median nanoseconds per call and the bytes allocated per call (process-wide), after warming up.</summary>
    public static (double MedianNs, long AllocatedPerCall) TimeMedian(double seconds, Action call)
    {
        // Warm up past tiered compilation and grow the workspaces. Methods are re-jitted after about 30 calls, but call
        // counting starts only once no method has been jitted for 100 ms and the optimised code is compiled in the
        // background: a fixed number of calls leaves a microsecond call timed partly on unoptimised code (measured
        // here: tiny 1.4-2.3 us at 1 thread after 60 calls, 1.36 at 2 threads, timed later). So half a second of calls.
        var warm = Stopwatch.StartNew();
        int warmCalls = 0;
        while (warmCalls < 3 || warm.Elapsed.TotalSeconds < 0.5) { call(); warmCalls++; }
        var sw = Stopwatch.StartNew();
        call();
        double once = Math.Max(sw.Elapsed.TotalSeconds, 1e-7);
        int repetitions = (int)Math.Clamp(seconds / once, 3, 200);
        int callsPerRepetition = (int)Math.Clamp(0.005 / once, 1, 10_000); // ≥ 5 ms per timed sample
        var samples = new double[repetitions];
        long allocated = GC.GetTotalAllocatedBytes(precise: true);
        for (int r = 0; r < repetitions; r++)
        {
            long start = Stopwatch.GetTimestamp();
            for (int i = 0; i < callsPerRepetition; i++) call();
            samples[r] = Stopwatch.GetElapsedTime(start).TotalNanoseconds / callsPerRepetition;
        }
        long allocatedPerCall = (GC.GetTotalAllocatedBytes(precise: true) - allocated) / ((long)repetitions * callsPerRepetition);
        Array.Sort(samples);
        return (samples[samples.Length / 2], allocatedPerCall);
    }

    /// <summary>Medians of two calls measured in alternation (A, B, A, B, …) after warming both.</summary>
    public static (double A, double B) MeasureInterleaved(double seconds, Action a, Action b)
    {
        for (int i = 0; i < 5; i++) { a(); b(); }
        var sw = Stopwatch.StartNew();
        a();
        b();
        int repetitions = (int)Math.Clamp(2 * seconds / Math.Max(sw.Elapsed.TotalSeconds, 1e-7), 9, 200);
        var samplesA = new double[repetitions];
        var samplesB = new double[repetitions];
        for (int r = 0; r < repetitions; r++)
        {
            long start = Stopwatch.GetTimestamp();
            a();
            samplesA[r] = Stopwatch.GetElapsedTime(start).TotalNanoseconds;
            start = Stopwatch.GetTimestamp();
            b();
            samplesB[r] = Stopwatch.GetElapsedTime(start).TotalNanoseconds;
        }
        Array.Sort(samplesA);
        Array.Sort(samplesB);
        return (samplesA[repetitions / 2], samplesB[repetitions / 2]);
    }

    private static double Median(double[] values) => values.Order().ElementAt(values.Length / 2); // TypedAllocations is odd

    private static float[] Fill(Random random, long length)
    {
        var a = new float[length];
        for (long i = 0; i < a.Length; i++) a[i] = random.NextSingle() * 2 - 1;
        return a;
    }

    public static string CpuName()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/cpuinfo"))
                if (line.StartsWith("model name", StringComparison.Ordinal))
                    return line[(line.IndexOf(':') + 1)..].Trim() + $" ({Environment.ProcessorCount} cores)";
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return $"{System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture} ({Environment.ProcessorCount} cores)";
    }

    public static string ToJson(BenchReport report) => JsonSerializer.Serialize(report, BenchJsonContext.Default.BenchReport);

    public static BenchReport FromJson(string json) =>
        JsonSerializer.Deserialize(json, BenchJsonContext.Default.BenchReport) ?? throw new InvalidDataException("empty benchmark JSON");

    /// <summary>Cases (engine FastAttention) slower than the baseline by more than <paramref name="maxRegressionPercent"/>.</summary>
    public static List<string> Regressions(BenchReport current, BenchReport baseline, double maxRegressionPercent)
    {
        var failures = new List<string>();
        foreach (var r in current.Results.Where(r => r.Engine == "FastAttention"))
        {
            var b = baseline.Results.FirstOrDefault(x => x.Case == r.Case && x.Engine == r.Engine && x.Threads == r.Threads);
            if (b is null) continue;
            double slower = (r.MedianNs / b.MedianNs - 1) * 100;
            if (slower > maxRegressionPercent)
                failures.Add($"{r.Case} ({r.Threads} thread(s)): {r.MedianNs / 1e3:F1} µs vs baseline {b.MedianNs / 1e3:F1} µs, {slower:F0}% slower (limit {maxRegressionPercent}%)");
        }
        return failures;
    }
}
