namespace FastAttention.Bench;

/// <summary>One benchmark case of ../shared/BENCHMARKS.md.</summary>
public sealed record BenchCase(string Name, int QueryHeads, int KeyValueHeads, int QueryCount, int KeyCount, int HeadSize, bool Causal)
{
    public bool IsDecode => QueryCount == 1;

    public AttentionShape Shape => AttentionShape.Bhsd(1, QueryHeads, KeyValueHeads, QueryCount, KeyCount, HeadSize);

    public AttentionOptions Options(int threads) => new()
    {
        Causal = Causal ? CausalMask.BottomRight : CausalMask.None,
        MaxDegreeOfParallelism = threads,
    };

    /// <summary>Floating-point operations: 4·H·Lq·Lk·D (two products), half of that when causal.</summary>
    public double Flops => 4.0 * QueryHeads * QueryCount * KeyCount * HeadSize * (Causal ? 0.5 : 1.0);

    /// <summary>Bytes of K and V that one call must read.</summary>
    public double KeyValueBytes => 2.0 * KeyValueHeads * KeyCount * HeadSize * sizeof(float);

    public static IReadOnlyList<BenchCase> All { get; } =
    [
        new("tiny", 1, 1, 16, 16, 64, false),
        new("L512d64", 8, 8, 512, 512, 64, false),
        new("L512d64c", 8, 8, 512, 512, 64, true),
        new("L2048d64", 8, 8, 2048, 2048, 64, false),
        new("L2048d64c", 8, 8, 2048, 2048, 64, true),
        new("L1024d128", 8, 8, 1024, 1024, 128, false),
        new("L1024d128c", 8, 8, 1024, 1024, 128, true),
        new("L4096d128c", 32, 32, 4096, 4096, 128, true),
        new("dec4k", 32, 8, 1, 4096, 128, false),
        new("dec4kH8", 8, 8, 1, 4096, 128, false), // dec4k's key-value heads without the GQA group: the two read the same K and V bytes
        new("dec32k", 8, 8, 1, 32768, 128, false),
    ];
}
