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
    // tile's trip through the cache, few enough that the fp32 accumulators stay in L2.
    private const int TargetRowsPerItem = 64;

    // Below this many multiply-adds a call stays on the calling thread: waking a pool thread costs more.
    internal const long ParallelThreshold = 1L << 20;

    public static AttentionPlan Plan(in KernelArguments args, KernelWidth width, int maxThreads)
    {
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
            PackedKeyLength = (long)headPairs * keyTiles * d * keyTile,
            Threads = threads,
            HeavyFirst = args.Causal != CausalMask.None,
        };
    }

    internal static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;
}
