namespace FastAttention.Kernels;

/// <summary>
/// A validated problem as the kernels see it: base pointers (layout offsets already applied), strides in
/// elements, sizes. Built once per call after validation; the buffers stay pinned until the call returns.
/// </summary>
internal unsafe struct KernelArguments
{
    public Operand Query;
    public Operand Key;
    public Operand Value;
    public Operand Output;
    public float* LogSumExp; // null when not requested

    public int Batch;
    public int QueryHeads;
    public int KeyValueHeads;
    public int GroupSize;
    public int QueryCount;
    public int KeyCount;
    public int HeadSize;
    public int ValueHeadSize;

    public float Scale;
    public CausalMask Causal;

    // Masks and score terms (AttentionMasks, AttentionOptions): null pointers and zeros mean none.
    public float* Bias;         // [B|1, Hq|1, Lq, Lk] dense rows; a broadcast dimension has stride 0
    public nint BiasBatchStride, BiasHeadStride;
    public byte* Mask;          // bool, same layout as Bias
    public nint MaskBatchStride, MaskHeadStride;
    public int* KeyLengths;     // [B]
    public float* AlibiSlopes;  // [Hq]
    public float* Sinks;        // [Hq]
    public float SoftCap;       // 0: none
    public bool HasWindow;
    public int WindowLeft, WindowRight;
    public bool BottomRightAligned;

    /// <summary>Whether per-batch key lengths were given.</summary>
    public readonly bool HasKeyLengths => KeyLengths != null;

    /// <summary>Whether scores need more than the scale: soft-cap, bias, ALiBi or a boolean mask.</summary>
    public readonly bool HasScoreTerms => SoftCap != 0f || Bias != null || Mask != null || AlibiSlopes != null;

    /// <summary>
    /// Decode reads keys or values stored narrower than fp32 in place, widening as it goes: for plain decode rows
    /// (fewer than one 4-row block per key-value head) with no tensor mask that could remove keys inside a range.
    /// Otherwise each slice's visible rows are widened into scratch first.
    /// </summary>
    public readonly bool DecodeWidensInPlace =>
        (!Key.IsFloat32 || !Value.IsFloat32) && GroupSize * QueryCount < MicroKernels<float, ScalarOps>.Rows && Mask == null && Bias == null;

    /// <summary>Keys of batch <paramref name="b"/>: its key length, or the key count.</summary>
    public readonly int KeyLength(int b) => KeyLengths == null ? KeyCount : KeyLengths[b];

    /// <summary>The aligned position i' of query row <paramref name="query"/> in batch <paramref name="b"/>.</summary>
    public readonly long AlignedPosition(int b, int query) => BottomRightAligned ? (long)query + KeyLength(b) - QueryCount : query;

    /// <summary>
    /// Keys of batch <paramref name="b"/> that query row <paramref name="query"/> may see as far as index masks tell
    /// (key length, causal, window): the half-open range [lo, hi), empty when lo ≥ hi.
    /// </summary>
    public readonly void VisibleKeys(int b, int query, out int lo, out int hi)
    {
        int length = KeyLength(b);
        long aligned = AlignedPosition(b, query);
        long first = 0, end = length;
        if (Causal != CausalMask.None) end = Math.Min(end, aligned + 1);
        if (HasWindow)
        {
            first = Math.Max(first, aligned - WindowLeft);
            end = Math.Min(end, aligned + WindowRight + 1);
        }
        lo = (int)Math.Clamp(first, 0, length);
        hi = (int)Math.Clamp(end, lo, length);
    }
}
