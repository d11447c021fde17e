namespace FastAttention.Bench;

/// <summary>The masks of issue 5's benchmark cases, on L2048d64.</summary>
public enum MaskVariant
{
    /// <summary>No mask beyond <see cref="BenchCase.Causal"/>.</summary>
    None,

    /// <summary>Causal with a 256-key sliding window (the row's key and the 255 before it).</summary>
    Window256,

    /// <summary>Batch 2, the second batch at half the key length.</summary>
    KeyLengths,

    /// <summary>Logit soft-cap 30.</summary>
    SoftCap30,

    /// <summary>An additive bias per head, [1, H, Lq, Lk].</summary>
    Bias,

    /// <summary>A boolean mask [1, 1, Lq, Lk] shaped like the causal one (lower triangle).</summary>
    BoolMask,
}

/// <summary>How a case stores its inputs (issue 9): fp32, or narrower types widened on load.</summary>
public enum InputStorage
{
    Float32,

    /// <summary>Q, K and V in Half, fp32 output.</summary>
    Half,

    /// <summary>K and V in Half, Q and output fp32.</summary>
    HalfKeyValue,

    /// <summary>K and V in int8 with one scale per row, Q and output fp32.</summary>
    Int8KeyValue,
}

/// <summary>One benchmark case of ../shared/BENCHMARKS.md (or a mask case of issue 5).</summary>
public sealed record BenchCase(string Name, int QueryHeads, int KeyValueHeads, int QueryCount, int KeyCount, int HeadSize, bool Causal,
    int Batch = 1, MaskVariant Variant = MaskVariant.None, InputStorage Storage = InputStorage.Float32)
{
    public bool IsDecode => QueryCount == 1;

    public bool IsMasked => Variant != MaskVariant.None;

    public AttentionShape Shape => AttentionShape.Bhsd(Batch, QueryHeads, KeyValueHeads, QueryCount, KeyCount, HeadSize);

    public AttentionOptions Options(int threads) => new()
    {
        Causal = Causal || Variant == MaskVariant.Window256 ? CausalMask.BottomRight : CausalMask.None,
        Window = Variant == MaskVariant.Window256 ? new SlidingWindow(255, 0) : null,
        SoftCap = Variant == MaskVariant.SoftCap30 ? 30f : null,
        MaxDegreeOfParallelism = threads,
    };

    /// <summary>Scores a call must compute: every one, half for causal (the usual convention), the exact count under a mask.</summary>
    public double VisibleScores
    {
        get
        {
            double rows = (double)Batch * QueryHeads * QueryCount;
            return Variant switch
            {
                MaskVariant.Window256 => (double)QueryHeads * Enumerable.Range(0, QueryCount).Sum(i => (double)Math.Min(i + 1, 256)),
                MaskVariant.KeyLengths => (double)QueryHeads * QueryCount * (KeyCount + KeyCount / 2),
                MaskVariant.BoolMask => (double)QueryHeads * QueryCount * (QueryCount + 1) / 2,
                _ => rows * KeyCount * (Causal ? 0.5 : 1.0),
            };
        }
    }

    /// <summary>Floating-point operations: 4·D per visible score (the two products), i.e. 4·H·Lq·Lk·D, half for causal.</summary>
    public double Flops => 4.0 * HeadSize * VisibleScores;

    /// <summary>Bytes of K and V that one call must read.</summary>
    public double KeyValueBytes => 2.0 * Batch * KeyValueHeads * KeyCount * (HeadSize * BytesPerElement + (Storage == InputStorage.Int8KeyValue ? sizeof(float) : 0));

    private int BytesPerElement => Storage switch
    {
        InputStorage.Half or InputStorage.HalfKeyValue => 2,
        InputStorage.Int8KeyValue => 1,
        _ => sizeof(float),
    };

    /// <summary>The mask tensors of this case, made once per benchmark.</summary>
    public MaskData CreateMasks()
    {
        var data = new MaskData();
        switch (Variant)
        {
            case MaskVariant.KeyLengths:
                data.KeyLengths = [KeyCount, KeyCount / 2];
                break;
            case MaskVariant.Bias:
                var random = new Random(7);
                data.Bias = new float[(long)QueryHeads * QueryCount * KeyCount];
                for (long n = 0; n < data.Bias.Length; n++) data.Bias[n] = random.NextSingle() - 0.5f;
                break;
            case MaskVariant.BoolMask:
                data.Mask = new bool[(long)QueryCount * KeyCount];
                for (int i = 0; i < QueryCount; i++) data.Mask.AsSpan(i * KeyCount, i + 1).Fill(true);
                break;
        }
        return data;
    }

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
        new("L2048d64-window256", 8, 8, 2048, 2048, 64, true, Variant: MaskVariant.Window256),
        new("L2048d64-keylengths", 8, 8, 2048, 2048, 64, false, Batch: 2, Variant: MaskVariant.KeyLengths),
        new("L2048d64-softcap30", 8, 8, 2048, 2048, 64, false, Variant: MaskVariant.SoftCap30),
        new("L2048d64-bias", 8, 8, 2048, 2048, 64, false, Variant: MaskVariant.Bias),
        new("L2048d64-boolmask", 8, 8, 2048, 2048, 64, false, Variant: MaskVariant.BoolMask),
        new("L2048d64-f16", 8, 8, 2048, 2048, 64, false, Storage: InputStorage.Half),
        new("L2048d64-f16kv", 8, 8, 2048, 2048, 64, false, Storage: InputStorage.HalfKeyValue),
        new("L2048d64-i8kv", 8, 8, 2048, 2048, 64, false, Storage: InputStorage.Int8KeyValue),
        new("dec32k-f16kv", 8, 8, 1, 32768, 128, false, Storage: InputStorage.HalfKeyValue),
        new("dec32k-i8kv", 8, 8, 1, 32768, 128, false, Storage: InputStorage.Int8KeyValue),
        new("dec4k-f16kv", 32, 8, 1, 4096, 128, false, Storage: InputStorage.HalfKeyValue), // grouped-query decode over a Half cache
        new("dec4k-i8kv", 32, 8, 1, 4096, 128, false, Storage: InputStorage.Int8KeyValue),
    ];
}

/// <summary>The tensors of <see cref="AttentionMasks"/> for one case (a class: <see cref="AttentionMasks"/> is a ref struct).</summary>
public sealed class MaskData
{
    public float[] Bias { get; set; } = [];
    public bool[] Mask { get; set; } = [];
    public int[] KeyLengths { get; set; } = [];

    public AttentionMasks Tensors => new() { Bias = Bias, Mask = Mask, MaskBroadcast = MaskBroadcast.All, KeyLengths = KeyLengths, BiasBroadcast = MaskBroadcast.Batch };
}
