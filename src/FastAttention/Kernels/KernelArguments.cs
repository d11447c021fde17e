namespace FastAttention.Kernels;

/// <summary>
/// A validated problem as the kernels see it: base pointers (layout offsets already applied), strides in
/// elements, sizes. Built once per call after validation; the buffers stay pinned until the call returns.
/// </summary>
internal unsafe struct KernelArguments
{
    public float* Query;
    public float* Key;
    public float* Value;
    public float* Output;
    public float* LogSumExp; // null when not requested

    public nint QueryBatchStride, QueryHeadStride, QueryRowStride;
    public nint KeyBatchStride, KeyHeadStride, KeyRowStride;
    public nint ValueBatchStride, ValueHeadStride, ValueRowStride;
    public nint OutputBatchStride, OutputHeadStride, OutputRowStride;

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

    /// <summary>Visible keys of query row <paramref name="query"/>: the half-open range [lo, hi).</summary>
    public readonly void VisibleKeys(int query, out int lo, out int hi)
    {
        lo = 0;
        hi = KeyCount;
        if (Causal != CausalMask.None)
        {
            long aligned = Causal == CausalMask.BottomRight ? (long)query + KeyCount - QueryCount : query;
            hi = (int)Math.Clamp(aligned + 1, 0, KeyCount);
        }
    }
}
