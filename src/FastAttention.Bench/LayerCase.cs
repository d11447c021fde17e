namespace FastAttention.Bench;

/// <summary>A GEMM or layer benchmark case of issue 7: its name, floating-point operations, and a call made ready for a thread count.</summary>
public sealed record LayerCase(string Name, double Flops, Func<int, Action> Prepare)
{
    private static float[] Random(long length, int seed)
    {
        var random = new Random(seed);
        var a = new float[length];
        for (long i = 0; i < a.Length; i++) a[i] = random.NextSingle() * 2 - 1;
        return a;
    }

    /// <summary>Y [m, n] = X [m, k]·Wᵀ + b with W packed once (as the layer holds it).</summary>
    private static LayerCase Gemm(string name, int m, int n, int k) => new(name, 2.0 * m * n * k, threads =>
    {
        float[] x = Random((long)m * k, 1), y = new float[(long)m * n];
        var w = PackedWeights.Pack(Random((long)n * k, 2), Random(n, 3), n, k);
        return () => FastAttention.Gemm.Multiply(x, w, y, m, threads);
    });

    private static MultiHeadAttention Layer(int e, int h) =>
        new(e, h, h, Random((long)e * e, 4), Random(e, 5), Random((long)e * e, 6), Random(e, 7), Random((long)e * e, 8), Random(e, 9),
            Random((long)e * e, 10), Random(e, 11));

    /// <summary>Self-attention forward over [1, length, e]: four projections (2·L·E·4E) and attention (4·L²·E).</summary>
    private static LayerCase Forward(string name, int length, int e, int h) => new(name, 2.0 * length * e * 4 * e + 4.0 * length * length * e, threads =>
    {
        var layer = Layer(e, h);
        float[] x = Random((long)length * e, 12), y = new float[(long)length * e];
        var options = new AttentionOptions { MaxDegreeOfParallelism = threads };
        return () => layer.Forward(x, y, 1, length, options);
    });

    /// <summary>One decode step at a cache of <paramref name="cached"/> positions: projections (2·E·4E) and attention (4·cached·E).</summary>
    private static LayerCase Step(string name, int cached, int e, int h, KeyValueStorage storage = KeyValueStorage.Float32) => new(name, 2.0 * e * 4 * e + 4.0 * cached * e, threads =>
    {
        var layer = Layer(e, h);
        var cache = new KeyValueCache(1, h, e / h, cached + 1, storage: storage);
        var prompt = Random((long)cached * e, 13);
        var scratch = new float[prompt.Length];
        layer.ForwardStep(prompt, cache, scratch, cached);
        float[] x = Random(e, 14), y = new float[e];
        var options = new AttentionOptions { MaxDegreeOfParallelism = threads };
        return () =>
        {
            layer.ForwardStep(x, cache, y, 1, options);
            // Back to the same cache length for the next call: drop the step just appended.
            cache.Truncate(cached);
        };
    });

    public static IReadOnlyList<LayerCase> All { get; } =
    [
        Gemm("gemm256", 256, 256, 256),
        Gemm("gemm512", 512, 512, 512),
        Gemm("gemm2048x512x512", 2048, 512, 512),
        Forward("mha-L512-E512-H8", 512, 512, 8),
        Step("mha-step-cache4096-E512-H8", 4096, 512, 8),
        Step("mha-step-cache4096-E512-H8-f16cache", 4096, 512, 8, KeyValueStorage.Half),
        Step("mha-step-cache4096-E512-H8-i8cache", 4096, 512, 8, KeyValueStorage.Int8),
    ];
}
