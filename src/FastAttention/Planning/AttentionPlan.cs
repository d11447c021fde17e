using FastAttention.Kernels;

namespace FastAttention.Planning;

/// <summary>
/// How one call runs: the kernel width, the block sizes and the work items. Everything here depends on the
/// problem and the instruction set only, never on the thread count, so results are identical for every degree
/// of parallelism (the thread count only decides who runs which item).
/// </summary>
internal readonly record struct AttentionPlan
{
    public KernelWidth Width { get; init; }

    /// <summary>Prefill tiles (many query rows) or decode slices (few query rows, long key sequence).</summary>
    public KernelKind Kind { get; init; }

    /// <summary>Decode: keys per slice of the key sequence.</summary>
    public int SplitSize { get; init; }

    /// <summary>Decode: slices per key-value head, from the key count alone.</summary>
    public int Splits { get; init; }

    /// <summary>Decode: floats of partial state, [headPairs, splits, group·queryCount, valueHeadSize + 2].</summary>
    public long PartialLength { get; init; }

    /// <summary>
    /// Keys per tile (a multiple of the lane count): the packing phase transposes this many keys per item, and a compute
    /// item visits its keys this many at a time, from the first key any of its rows sees (rounded down to whole
    /// vectors), so that a band (a sliding window) that fits a tile costs one pass per row.
    /// </summary>
    public int KeyTile { get; init; }

    public int KeyTiles { get; init; }

    /// <summary>Query rows (per query head) handled by one compute item, for all heads of a key-value group.</summary>
    public int QueryBlock { get; init; }

    public int QueryBlocks { get; init; }

    /// <summary>Batch × key-value heads.</summary>
    public int HeadPairs { get; init; }

    /// <summary>Decode phase 1 items: one slice of one (batch, key-value head).</summary>
    public int SliceItems => HeadPairs * Splits;

    /// <summary>Phase 1 items: one key tile of one (batch, key-value head) transposed into the packed buffer.</summary>
    public int PackItems => HeadPairs * KeyTiles;

    /// <summary>Phase 2 items: one query block of one (batch, key-value head), all heads of its group.</summary>
    public int ComputeItems => HeadPairs * QueryBlocks;

    /// <summary>Floats between rows of the packed, transposed keys (see <see cref="PackedKeyLength"/>).</summary>
    public int PackedKeyStride { get; init; }

    /// <summary>Floats of the packed, transposed keys: [headPairs, headSize, <see cref="PackedKeyStride"/>], keys in columns.</summary>
    public long PackedKeyLength { get; init; }

    /// <summary>
    /// Prefill with values not in fp32: floats of values widened once per call, [headPairs, keyTiles·keyTile,
    /// valueHeadSize], after the packed keys in the shared scratch. 0 for fp32 values (read in place).
    /// </summary>
    public long StagedValueLength { get; init; }

    /// <summary>Prefill: scratch per worker of the packing phase (keys not in fp32 are widened before the transpose).</summary>
    public WorkerScratch PackScratch { get; init; }

    /// <summary>Threads to use, the calling thread included.</summary>
    public int Threads { get; init; }

    /// <summary>Whether items run heaviest first (causal: later query blocks see more keys).</summary>
    public bool HeavyFirst { get; init; }

    /// <summary>The largest scratch any item needs per worker, so that every participant's workspace is sized before the call starts.</summary>
    public WorkerScratch Scratch { get; init; }
}

/// <summary>
/// Floats per worker in each workspace slot: scaled query rows, output accumulators, scores, row statistics, and
/// key and value rows widened from a narrower element type.
/// </summary>
internal readonly record struct WorkerScratch(int Query, int Accumulators, int Scores, int Stats, int Staging = 0);

internal enum KernelKind
{
    Prefill,
    Decode,

    /// <summary>Small unmasked problems: one pass per (batch, key-value head), see <see cref="Kernels.SmallKernel{TVec, TOps}"/>.</summary>
    Small,
}
