using FastAttention.Kernels;

namespace FastAttention.Planning;

/// <summary>Chooses block sizes and work items from the problem's sizes and the cache sizes.</summary>
internal static class Planner
{
    // Bytes of one key tile (transposed keys) plus its value rows kept resident in the per-core L2 (512 KiB on
    // the development machine; 1–2 MiB on recent Xeons) while every 4-row block of the item streams over them.
    private const int TileBudgetBytes = 192 * 1024;
    private const int MaxKeyTile = 384;

    // Query rows (all heads of a group together) per compute item: enough 4-row blocks to amortise a key
    // tile's trip through the cache, few enough that the fp32 accumulators stay in L2. 128 rather than 64 halves
    // the key and value traffic per score (L2048d64 2 threads 8 % faster, the rest 0-2 %), and a 256-key window
    // over 128 queries (383 keys) still fits one 384-key tile. From the problem alone: the item's first visible key
    // sets its tile boundaries, so the block size must never follow the thread count.
    private const int TargetRowsPerItem = 128;

    // Below this many multiply-adds a call stays on the calling thread: waking a pool thread costs more.
    internal const long ParallelThreshold = 1L << 20;

    // Decode: at most this many query rows per head go to the split-KV kernel, which reads K and V rows directly.
    internal const int DecodeMaxQueries = 4;

    // Decode: keys per slice, from the problem alone (never the thread count), so the slice count and the merge
    // order are the same for every degree of parallelism. Longer slices stream K and V in longer runs, which one
    // thread reads faster from memory (dec32k, 1 thread: Half 11-15 %, int8 10 % faster at 2048 keys than at 512),
    // as long as (batch, key-value head, slice) items stay plentiful for many cores.
    internal const int DecodeMinSplit = 512, DecodeMaxSplit = 2048, DecodeTargetItems = 64;

    // Small problems (small kernel, or decode for masked ones) have at most this many keys.
    internal const int DirectMaxKeys = 512;

    // Small problems: below this many multiply-adds per (batch, key-value head) the tile machinery costs more than
    // it saves. Unmasked ones take the one-pass small kernel; masked ones read K rows directly as decode does.
    internal const long DirectPairWork = 1L << 16;

    /// <param name="args">The validated problem.</param>
    /// <param name="width">The kernel width.</param>
    /// <param name="maxThreads">The most threads the call may use.</param>
    /// <param name="kind">Forces a kernel (tests cover each on every shape; Small, where a mask or score term rules it out, runs as Decode); null picks by size.</param>
    public static AttentionPlan Plan(in KernelArguments args, KernelWidth width, int maxThreads, KernelKind? kind = null)
    {
        kind ??= PreferredKind(args);
        if (kind == KernelKind.Small && !SmallApplies(args)) kind = KernelKind.Decode;
        if (kind == KernelKind.Small) return PlanSmall(args, width, maxThreads);
        if (kind == KernelKind.Decode && args.KeyCount > 0) return PlanDecode(args, width, maxThreads);

        int lanes = KernelDispatch.Lanes(width);
        int block = 3 * lanes;
        int d = args.HeadSize, dv = args.ValueHeadSize, lk = args.KeyCount, lq = args.QueryCount;

        int keyTile = TileBudgetBytes / (4 * (d + dv));
        keyTile = Math.Clamp(keyTile / block * block, block, Math.Max(block, MaxKeyTile / block * block));
        int keysRounded = RoundUp(Math.Max(lk, 1), lanes);
        if (keyTile > keysRounded) keyTile = keysRounded;
        int keyTiles = lk == 0 ? 0 : (lk + keyTile - 1) / keyTile;

        int group = args.GroupSize;
        int queryBlock = Math.Max(1, TargetRowsPerItem / group);
        if (queryBlock >= 4) queryBlock &= ~3;
        if (queryBlock > lq) queryBlock = Math.Max(lq, 1);
        int queryBlocks = lq == 0 ? 0 : (lq + queryBlock - 1) / queryBlock;

        int headPairs = args.Batch * args.KeyValueHeads;
        int packedStride = PackedStride(keyTiles * keyTile);
        long work = (long)args.Batch * args.QueryHeads * lq * lk * (d + dv);
        if (args.Causal != CausalMask.None) work /= 2;
        int threads = work < ParallelThreshold ? 1 : Math.Max(1, maxThreads);

        return new AttentionPlan
        {
            Width = width,
            KeyTile = keyTile,
            KeyTiles = keyTiles,
            QueryBlock = queryBlock,
            QueryBlocks = queryBlocks,
            HeadPairs = headPairs,
            PackedKeyStride = packedStride,
            PackedKeyLength = (long)headPairs * d * packedStride,
            StagedValueLength = StagesValues(args) ? (long)headPairs * keyTiles * keyTile * dv : 0,
            PackScratch = new WorkerScratch(0, 0, 0, 0, args.Key.IsFloat32 ? 0 : keyTile * d),
            Threads = threads,
            HeavyFirst = args.Causal != CausalMask.None,
            // Stats: each row's running maximum and sum, then a vector of its tile's score maxima.
            Scratch = WorkerScratchFor(RoundUp(group * queryBlock, BlockRows), d, dv, RoundUp(group * queryBlock, BlockRows) * keyTile) with
            {
                Stats = (2 + lanes) * RoundUp(group * queryBlock, BlockRows),
            },
        };
    }

    /// <summary>
    /// Floats between rows of the packed keys [headSize, stride] of one (batch, key-value head): the keys rounded up to
    /// an odd number of cache lines. A score chunk reads a few lines from every row; rows an odd number of lines apart
    /// spread those over all of the L1's sets, where an even count leaves sets unused and the rest evicting one another
    /// (L1024d128, 72 lines: 12 % slower).
    /// </summary>
    internal static int PackedStride(int keys)
    {
        int lines = (Math.Max(keys, 1) + 15) / 16;
        return 16 * (lines | 1);
    }

    /// <summary>
    /// Whether the prefill kernel reads its values from a copy made while packing the keys: values not in fp32 (widened
    /// there), and fp32 values whose rows could start on 64-byte lines but do not (the caller's array is where the
    /// runtime put it), where each value row is used by enough query rows. The P·V tile loads every value row once per
    /// 4 query rows that see it; a 64-byte load that straddles two lines costs two, and L1024d128 ran 4 % slower
    /// (L2048d64 7 %) from an array 16 bytes off a line. The copy costs one pass over V per call, which a sliding window
    /// does not repay: a 256-key window over L2048d64 ran 2.6-3 % faster without it (Zen 4, both builds in one process).
    /// </summary>
    internal static unsafe bool StagesValues(in KernelArguments args)
    {
        if (!args.Value.IsFloat32) return true;
        Operand v = args.Value;
        bool rowsOnLines = v.RowStride % 16 == 0 && v.HeadStride % 16 == 0 && v.BatchStride % 16 == 0 && args.ValueHeadSize % 16 == 0;
        long span = args.HasWindow ? Math.Min((long)args.QueryCount, (long)args.WindowLeft + args.WindowRight + 1) : args.QueryCount;
        return rowsOnLines && (nuint)v.Data % 64 != 0 && args.GroupSize * span >= MinRowsPerValueToStage;
    }

    // Query rows that see a value row (a window's span, or all queries, times the group size), at least, for the copy
    // of misaligned fp32 values to repay itself: measured 256 (not repaid) and 1024 or more (repaid); between them, unmeasured.
    private const int MinRowsPerValueToStage = 512;

    /// <summary>Decode for few query rows (memory-bound) and for problems too small to repay packing K.</summary>
    internal static KernelKind PreferredKind(in KernelArguments args)
    {
        if (args.QueryCount <= DecodeMaxQueries) return KernelKind.Decode;
        long pairWork = (long)args.GroupSize * args.QueryCount * args.KeyCount * (args.HeadSize + args.ValueHeadSize);
        if (args.KeyCount > DirectMaxKeys || pairWork > DirectPairWork) return KernelKind.Prefill;
        return SmallApplies(args) ? KernelKind.Small : KernelKind.Decode;
    }

    /// <summary>
    /// The small kernel takes problems with keys and no mask, index mask or score term: each row sees every key, so
    /// one pass needs no online rescaling and no per-row ranges (sinks join at the end). Never a question of element
    /// types, so that typed inputs run the same kernel as fp32 inputs holding the same values.
    /// </summary>
    internal static bool SmallApplies(in KernelArguments args) =>
        args.KeyCount > 0 && args.Causal == CausalMask.None && !args.HasWindow && !args.HasKeyLengths && !args.HasScoreTerms;

    private static AttentionPlan PlanSmall(in KernelArguments args, KernelWidth width, int maxThreads)
    {
        int rows = RoundUp(args.GroupSize * args.QueryCount, BlockRows);
        int stride = RoundUp(args.KeyCount, KernelDispatch.Lanes(width));
        long work = (long)args.Batch * args.QueryHeads * args.QueryCount * args.KeyCount * (args.HeadSize + args.ValueHeadSize);
        return new AttentionPlan
        {
            Width = width,
            Kind = KernelKind.Small,
            HeadPairs = args.Batch * args.KeyValueHeads,
            Threads = work < ParallelThreshold ? 1 : Math.Max(1, maxThreads),
            Scratch = WorkerScratchFor(rows, args.HeadSize, args.ValueHeadSize, rows * stride) with { Staging = SmallStagingLength(args, KernelDispatch.Lanes(width)) },
        };
    }

    /// <summary>Small kernel, slot 4: Kᵀ [headSize, keys rounded up to whole vectors], then room for keys or values widened from a narrower type.</summary>
    internal static int SmallStagingLength(in KernelArguments args, int lanes) =>
        args.HeadSize * RoundUp(args.KeyCount, lanes) + args.KeyCount * Math.Max(args.Key.IsFloat32 ? 0 : args.HeadSize, args.Value.IsFloat32 ? 0 : args.ValueHeadSize);

    private static AttentionPlan PlanDecode(in KernelArguments args, KernelWidth width, int maxThreads)
    {
        int headPairs = args.Batch * args.KeyValueHeads;
        int splitSize = DecodeSplitSize(headPairs, args.KeyCount);
        int splits = (args.KeyCount + splitSize - 1) / splitSize;
        int rows = args.GroupSize * args.QueryCount;
        long work = (long)args.Batch * args.QueryHeads * args.QueryCount * args.KeyCount * (args.HeadSize + args.ValueHeadSize);
        return new AttentionPlan
        {
            Width = width,
            Kind = KernelKind.Decode,
            SplitSize = splitSize,
            Splits = splits,
            HeadPairs = headPairs,
            PartialLength = splits == 1 ? 0 : (long)headPairs * splits * rows * (args.ValueHeadSize + 2), // one slice writes the output directly
            Threads = work < ParallelThreshold ? 1 : Math.Max(1, maxThreads),
            Scratch = WorkerScratchFor(RoundUp(rows, BlockRows), args.HeadSize, args.ValueHeadSize, RoundUp(rows, BlockRows) * DecodeScoreStride(splitSize, width)) with
            {
                // Keys and values not in fp32 are widened a slice at a time into the worker's scratch (unless read in place).
                Staging = args.DecodeWidensInPlace ? 0 : splitSize * ((args.Key.IsFloat32 ? 0 : args.HeadSize) + (args.Value.IsFloat32 ? 0 : args.ValueHeadSize)),
            },
        };
    }

    /// <summary>
    /// Decode: keys per slice, from the sizes alone: 512, doubled up to 2048 while at least
    /// <see cref="DecodeTargetItems"/> items remain; never more than the keys.
    /// </summary>
    internal static int DecodeSplitSize(int headPairs, int keyCount)
    {
        int splitSize = DecodeMinSplit;
        while (splitSize < DecodeMaxSplit && (long)headPairs * keyCount >= 2L * splitSize * DecodeTargetItems) splitSize *= 2;
        return Math.Min(splitSize, keyCount);
    }

    /// <summary>
    /// Decode: floats per row of slice scores: whole vectors, plus one more, so that a row's visible range read or
    /// written as whole vectors from any start stays inside the row.
    /// </summary>
    internal static int DecodeScoreStride(int splitSize, KernelWidth width) => RoundUp(splitSize, KernelDispatch.Lanes(width)) + KernelDispatch.Lanes(width);

    // Query rows per register block of the micro-kernels.
    private const int BlockRows = 4;

    private static WorkerScratch WorkerScratchFor(int paddedRows, int d, int dv, int scores) =>
        new(paddedRows * d, paddedRows * dv, scores, 2 * paddedRows);

    internal static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;
}
