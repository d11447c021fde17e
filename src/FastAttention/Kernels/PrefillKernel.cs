using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using FastAttention.Buffers;
using FastAttention.Planning;

namespace FastAttention.Kernels;

/// <summary>
/// The fused tile loop, written once over a vector width.
/// <code>
///  phase 1 (per key tile):  K[b, kvh, tile] ──transpose──► Kᵀ[b, kvh] columns [headSize, keys]  (once per call)
///  phase 2 (per item = query block × all heads of a key-value group):
///     Q rows ──×scale·log₂e──► Qs [rows, headSize]          (logits in units of log₂ from here on)
///     for each key tile any row can see:
///         S = Qs·Kᵀ for every 4-row block, a chunk of key columns at a time (the chunk stays in L1 for all blocks);
///             each row's maximum kept from the registers where the block sees the whole tile
///         for each 4-row block: score terms ─► mask edges to −∞ ─► m' = max(m, max S)
///             if m' &gt; m: O *= 2^(m − m'), l *= 2^(m − m')
///             P = 2^(S − m'), l += Σ P ─► O += P·V over the visible keys only
///             (a block that sees the whole tile: its 4 rows in one interleaved pass and one P·V tile)
///     O / l (+ sink) ─► output, m·ln 2 + ln l ─► log-sum-exp
/// </code>
/// Masked keys are skipped, never multiplied by zero, so NaN or ±∞ in their K or V rows cannot leak.
/// </summary>
internal static unsafe class PrefillKernel<TVec, TOps>
    where TVec : unmanaged
    where TOps : IVectorOps<TVec>
{
    private const int Rows = MicroKernels<TVec, TOps>.Rows;

    // Logits in units of log₂: the query rows carry log₂e in their scale, so the softmax's weights are 2^(s − m), whose
    // exp needs neither the multiply by log₂e nor the split of ln 2 (three operations of fifteen per 16 scores;
    // L2048d64 spends a tenth of its time there). m and the row sums stay in those units until RowOutput.
    private const float LogitUnit = VectorMath.Log2E;

    /// <summary>
    /// Transposes key tile <paramref name="item"/> into its place in <paramref name="packed"/>; keys not in fp32 are
    /// widened here, once per call, and so are values the plan stages (<see cref="Planner.StagesValues"/>: not fp32,
    /// or fp32 rows off 64-byte lines), into their own region after the packed keys.
    /// </summary>
    public static void PackKeys(in KernelArguments args, in AttentionPlan plan, float* packed, Workspace workspace, int item)
    {
        int pair = item / plan.KeyTiles, tile = item % plan.KeyTiles;
        int b = pair / args.KeyValueHeads, kvh = pair % args.KeyValueHeads;
        int keyTile = plan.KeyTile, d = args.HeadSize;
        int start = tile * keyTile;
        int count = Math.Min(keyTile, args.KeyLength(b) - start); // keys past the batch's key length are never read
        if (count <= 0) return;
        float* destination = packed + (long)pair * d * plan.PackedKeyStride + start;
        if (plan.StagedValueLength > 0)
        {
            int dv = args.ValueHeadSize;
            float* staged = packed + plan.PackedKeyLength + ((long)pair * plan.KeyTiles * keyTile + start) * dv;
            ElementConversion<TVec, TOps>.WidenRows(args.Value, b, kvh, start, count, dv, staged, dv);
        }
        if (args.Key.IsFloat32)
        {
            Transpose(args.Key.Floats(b, kvh, start), args.Key.RowStride, count, d, destination, plan.PackedKeyStride);
            return;
        }
        fixed (float* widened = &workspace.Get(4, keyTile * d))
        {
            ElementConversion<TVec, TOps>.WidenRows(args.Key, b, kvh, start, count, d, widened, d);
            Transpose(widened, d, count, d, destination, plan.PackedKeyStride);
        }
    }

    /// <summary>
    /// <paramref name="count"/> rows of <paramref name="d"/> floats, <paramref name="stride"/> apart, into columns of
    /// a [d, columnStride] block; lanes up to the next whole vector are zeroed.
    /// </summary>
    internal static void Transpose(float* source, nint stride, int count, int d, float* destination, int columnStride)
    {
        int padded = Planner.RoundUp(count, TOps.Count);
        int j = 0;
        // Whole vectors of keys × whole vectors of columns through registers (16 × 16 in 64 shuffles at 512 bits),
        // then 4 × 4 blocks: several times faster than element by element, which matters when little of the tile is
        // visible and for small problems, where the transpose is a good part of the call.
        TransposeBlocks<TVec, TOps>(source, stride, count, d, destination, columnStride, ref j);
        if (TOps.Count != 4) TransposeBlocks<Vector128<float>, Vector128Ops>(source, stride, count, d, destination, columnStride, ref j); // the scalar width too
        for (; j < count; j++)
        {
            float* row = source + j * stride, column = destination + j;
            for (int k = 0; k < d; k++) column[k * columnStride] = row[k];
        }
        // Lanes past the last key are computed by the score tile and then masked; make them finite zeros.
        for (int k = 0; k < d; k++)
        {
            for (int x = count; x < padded; x++) destination[k * columnStride + x] = 0f;
        }
    }

    /// <summary>Keys from <paramref name="j"/> on, <typeparamref name="TBlock"/>'s count at a time, each row of blocks with its leftover columns; j moves past them.</summary>
    private static void TransposeBlocks<TBlock, TBlockOps>(float* source, nint stride, int count, int d, float* destination, int columnStride, ref int j)
        where TBlock : unmanaged
        where TBlockOps : IVectorOps<TBlock>
    {
        int w = TBlockOps.Count;
        if (w == 1 || !TBlockOps.IsHardwareAccelerated) return; // the scalar width has no block to move; an emulated width is slower than 4 × 4
        for (; j + w <= count; j += w)
        {
            float* s0 = source + j * stride;
            int k = 0;
            for (; k + w <= d; k += w) TBlockOps.TransposeBlock(s0 + k, stride, destination + k * columnStride + j, columnStride);
            // Columns left over (all of them when the head is narrower than a vector): 4 × 4 blocks, then one by one.
            for (int i = 0; i < w; i += 4)
            {
                int c = k;
                for (; c + 4 <= d; c += 4) Vector128Ops.TransposeBlock(s0 + i * stride + c, stride, destination + c * columnStride + j + i, columnStride);
                for (; c < d; c++)
                {
                    for (int x = i; x < i + 4; x++) destination[c * columnStride + j + x] = s0[x * stride + c];
                }
            }
        }
    }

    /// <summary>Runs compute item <paramref name="item"/>: one query block of one (batch, key-value head), all heads of its group.</summary>
    [SkipLocalsInit]
    public static void Compute(in KernelArguments args, in AttentionPlan plan, float* packed, Workspace workspace, int item)
    {
        int pair = ItemRows(args, plan, item, out int firstQuery, out int queries);
        int b = pair / args.KeyValueHeads, kvh = pair % args.KeyValueHeads;
        int d = args.HeadSize, dv = args.ValueHeadSize, group = args.GroupSize;
        int rows = group * queries; // row r is query firstQuery + r % queries of head kvh·group + r / queries
        int paddedRows = Planner.RoundUp(rows, Rows);
        int keyTile = plan.KeyTile;

        fixed (float* queryScratch = &workspace.Get(0, paddedRows * d))
        fixed (float* accumulators = &workspace.Get(1, paddedRows * dv))
        fixed (float* scores = &workspace.Get(2, paddedRows * keyTile))
        fixed (float* stats = &workspace.Get(3, (2 + TOps.Count) * paddedRows))
        {
            float* rowMax = stats, rowSum = stats + paddedRows;
            float* tileMax = stats + 2 * paddedRows; // per row, a vector of its scores' maxima in this tile (see below)

            // Gather the block's query rows with the scale folded in, once; padded rows are zeros.
            for (int r = 0; r < paddedRows; r++)
            {
                float* destination = queryScratch + r * d;
                if (r < rows)
                {
                    ElementConversion<TVec, TOps>.ScaledRow(args.Query, b, kvh * group + r / queries, firstQuery + r % queries, destination, d, args.Scale * LogitUnit);
                }
                else
                {
                    new Span<float>(destination, d).Clear();
                }
                rowMax[r] = float.NegativeInfinity;
                rowSum[r] = 0f;
            }
            new Span<float>(accumulators, paddedRows * dv).Clear();

            float* keyBase = packed + (long)pair * d * plan.PackedKeyStride;
            float* valueBase = args.Value.Floats(b, kvh, 0);
            nint valueStride = args.Value.RowStride;
            int blocks = paddedRows / Rows;
            Span<int> lo = stackalloc int[paddedRows];
            Span<int> hi = stackalloc int[paddedRows];
            Span<int> tileFrom = stackalloc int[paddedRows];
            Span<int> tileTo = stackalloc int[paddedRows];
            Span<int> blockStart = stackalloc int[blocks];
            Span<int> blockEnd = stackalloc int[blocks];
            Span<bool> wholeBlock = stackalloc bool[blocks];
            Span<int> removed = stackalloc int[Rows];
            byte* codes = stackalloc byte[keyTile]; // per key of a tile: bit r set when a tensor mask removed it for row r of a block

            // Each row's visible keys, and the tiles any row of the item sees.
            int loMin = int.MaxValue, hiMax = 0;
            for (int r = 0; r < paddedRows; r++)
            {
                if (r < rows)
                {
                    // A boolean mask narrows the range to the row's first..last visible key, once per item: tiles
                    // it hides from every row of the item are then never visited (a lower-triangular mask costs what
                    // the causal flag does), and the per-tile trims below find their ends at once.
                    args.VisibleKeys(b, firstQuery + r % queries, out lo[r], out hi[r]);
                    ScoreTerms<TVec, TOps>.TrimToMask(args, b, kvh * group + r / queries, firstQuery + r % queries, 0, ref lo[r], ref hi[r]);
                }
                else
                {
                    lo[r] = hi[r] = 0;
                    continue;
                }
                if (lo[r] >= hi[r]) continue;
                loMin = Math.Min(loMin, lo[r]);
                hiMax = Math.Max(hiMax, hi[r]);
            }

            // Tiles outer, so that each key tile and value tile is brought in once per item; inside a tile the
            // Q·Kᵀ of every 4-row block runs column chunk by column chunk, so a chunk of keys is reused from L1 by
            // all blocks. Each row still sees its tiles in increasing order: results are those of a per-row loop.
            // The item's tiles start at the first key any of its rows sees (whole vectors), not at multiples of the
            // tile: a band that fits one tile (a sliding window over a query block) is one pass of the softmax per
            // row, not two. The start depends on the problem alone, so results stay the same for every thread count.
            int firstKey = loMin == int.MaxValue ? 0 : loMin - loMin % TOps.Count;
            for (int start = firstKey; start < hiMax; start += keyTile)
            {
                int tileEnd = Math.Min(keyTile, args.KeyCount - start);
                int unionStart = int.MaxValue, unionEnd = 0;
                for (int block = 0; block < blocks; block++)
                {
                    // Which keys each row sees in this tile, relative to its start: [from, to); a boolean mask trims it.
                    int colStart = int.MaxValue, colEnd = 0;
                    for (int r = block * Rows; r < (block + 1) * Rows; r++)
                    {
                        int from = 0, to = 0;
                        if (r < rows)
                        {
                            from = Math.Clamp(lo[r] - start, 0, tileEnd);
                            to = Math.Clamp(hi[r] - start, from, tileEnd);
                            ScoreTerms<TVec, TOps>.TrimToMask(args, b, kvh * group + r / queries, firstQuery + r % queries, start, ref from, ref to);
                        }
                        tileFrom[r] = from;
                        tileTo[r] = to;
                        if (from >= to) continue;
                        colStart = Math.Min(colStart, from);
                        colEnd = Math.Max(colEnd, to);
                    }
                    // Scores only for the columns some row of the block sees (whole vectors): a window or a mask
                    // that covers part of the tile costs only that part.
                    blockStart[block] = colEnd == 0 ? 0 : colStart - colStart % TOps.Count;
                    blockEnd[block] = Planner.RoundUp(colEnd, TOps.Count);
                    wholeBlock[block] = false;
                    if (blockEnd[block] > blockStart[block])
                    {
                        unionStart = Math.Min(unionStart, blockStart[block]);
                        unionEnd = Math.Max(unionEnd, blockEnd[block]);
                        // Where every row of the block sees exactly the columns its scores cover (a tile wholly
                        // visible: most of a call, masked or not), the score tile leaves each row's maximum behind (the
                        // score terms refresh it as they rewrite the scores) and the softmax makes one pass, not two.
                        wholeBlock[block] = true;
                        for (int r = block * Rows; r < (block + 1) * Rows && r < rows; r++)
                            wholeBlock[block] &= tileFrom[r] == blockStart[block] && tileTo[r] == blockEnd[block];
                        if (wholeBlock[block]) new Span<float>(tileMax + block * Rows * TOps.Count, Rows * TOps.Count).Fill(float.NegativeInfinity);
                    }
                }
                if (unionEnd == 0) continue;

                float* keyTileBase = keyBase + start;
                int chunk = MicroKernels<TVec, TOps>.ScoreChunkVectors * TOps.Count;
                // Chunk by chunk from each block's own first column, so that only a block's last chunk is partial
                // (blocks of a band start a few keys apart: their chunks still overlap, mostly from L1).
                for (int c0 = 0; c0 < unionEnd - unionStart; c0 += chunk)
                {
                    for (int block = 0; block < blocks; block++)
                    {
                        int c = blockStart[block] + c0, end = Math.Min(c + chunk, blockEnd[block]);
                        if (c < end)
                        {
                            MicroKernels<TVec, TOps>.ScoreChunk(queryScratch + block * Rows * d, d, d, keyTileBase + c, plan.PackedKeyStride, scores + block * Rows * keyTile + c, keyTile, end - c,
                                wholeBlock[block] ? tileMax + block * Rows * TOps.Count : null);
                        }
                    }
                }

                float* valueTile = valueBase + start * valueStride;
                bool lastTile = start + keyTile >= hiMax;
                ItemSpan nextItem = lastTile ? ItemSpan.Of(args, plan, item + plan.Threads) : default, thisItem = lastTile ? ItemSpan.Of(args, plan, item) : default;
                bool valuesByPanel = dv > 4 * TOps.Count && !args.HasScoreTerms && paddedRows == rows;
                for (int block = 0; block < blocks && valuesByPanel; block++)
                    valuesByPanel = wholeBlock[block] && blockStart[block] == blockStart[0] && blockEnd[block] == blockEnd[0];
                if (valuesByPanel)
                {
                    // Value rows wider than one column panel of the P·V tile (head size 128 at 16 lanes, 64 and 128 at
                    // 8), every block wholly visible over the same columns: the softmax of every block first, then P·V
                    // column panel by column panel, each panel through every block, so that a block's accumulators stay
                    // in registers for the whole tile and the panel's part of the value rows is read by every block in
                    // turn (L1024d128 on a Zen 4, both in one process: 3.5 % faster than all panels of every block a
                    // 32-key chunk at a time, 3.6 % with AVX-512 off; head size 64 at 8 lanes the same). The same sums,
                    // key by key in order.
                    int from = blockStart[0], to = blockEnd[0];
                    for (int block = 0; block < blocks; block++)
                    {
                        if (lastTile) PrefetchItemRows(args, d, dv, nextItem, thisItem, block * Rows);
                        int r0 = block * Rows;
                        UpdateBlock(scores + r0 * keyTile + from, keyTile, to - from, tileMax + r0 * TOps.Count, rowMax + r0, rowSum + r0, accumulators + r0 * dv, dv);
                    }
                    MicroKernels<TVec, TOps>.AccumulateBlocks(accumulators, dv, blocks, Rows * dv, scores + from, keyTile, Rows * keyTile, valueTile + from * valueStride, valueStride, to - from);
                    continue;
                }
                for (int block = 0; block < blocks; block++)
                {
                    if (lastTile)
                    {
                        // Rows read or written once per call come from memory; ask for them while this tile computes,
                        // a block at a time, rather than stall at both ends of every item: the query rows of the item
                        // this thread most likely runs next (threads claim items in turn: one per thread further on),
                        // and this item's output rows (written when it ends).
                        PrefetchItemRows(args, d, dv, nextItem, thisItem, block * Rows);
                    }
                    int colStart = blockStart[block], colEnd = blockEnd[block];
                    if (colEnd <= colStart) continue;
                    int r0 = block * Rows, width = colEnd - colStart;
                    float* blockScores = scores + r0 * keyTile;
                    bool whole = wholeBlock[block], termsApplied = false, anyRemoved = false;
                    if (args.HasScoreTerms) new Span<byte>(codes + colStart, width).Clear();
                    if (whole && r0 + Rows <= rows)
                    {
                        // A wholly visible block (the bulk of a call): the score terms, if any, then its 4 rows' softmax
                        // in one interleaved pass and one P·V tile over all its columns; none of the per-row range work
                        // below, unless a term removed keys.
                        if (args.HasScoreTerms)
                        {
                            for (int r = 0; r < Rows; r++) anyRemoved |= ApplyTerms(args, b, kvh * group + (r0 + r) / queries, firstQuery + (r0 + r) % queries,
                                blockScores + r * keyTile, start, tileFrom[r0 + r], ref tileTo[r0 + r], codes, r, removed, tileMax + (r0 + r) * TOps.Count) || tileTo[r0 + r] != colEnd;
                            termsApplied = true;
                        }
                        if (!anyRemoved)
                        {
                            if (FusesSoftmax(dv))
                            {
                                UpdateAndAccumulate(blockScores + colStart, keyTile, width, tileMax + r0 * TOps.Count, rowMax + r0, rowSum + r0, accumulators + r0 * dv, valueTile + colStart * valueStride, valueStride);
                                continue;
                            }
                            UpdateBlock(blockScores + colStart, keyTile, width, tileMax + r0 * TOps.Count, rowMax + r0, rowSum + r0, accumulators + r0 * dv, dv);
                            MicroKernels<TVec, TOps>.Accumulate(accumulators + r0 * dv, dv, blockScores + colStart, keyTile, valueTile + colStart * valueStride, valueStride, width);
                            continue;
                        }
                    }
                    if (!whole && r0 + Rows <= rows)
                    {
                        // A band (the causal diagonal, a window, a triangular boolean mask): one pass for the block
                        // unless a score term removed keys inside a row's range (the row-by-row path skips those).
                        if (args.HasScoreTerms)
                        {
                            for (int r = 0; r < Rows; r++) anyRemoved |= ApplyTerms(args, b, kvh * group + (r0 + r) / queries, firstQuery + (r0 + r) % queries,
                                blockScores + r * keyTile, start, tileFrom[r0 + r], ref tileTo[r0 + r], codes, r, removed, null);
                            termsApplied = true;
                        }
                        if (!anyRemoved && BandBlock(blockScores, keyTile, colStart, colEnd, tileFrom.Slice(r0, Rows), tileTo.Slice(r0, Rows),
                            tileMax + r0 * TOps.Count, rowMax + r0, rowSum + r0, accumulators + r0 * dv, dv, valueTile, valueStride))
                        {
                            continue;
                        }
                    }
                    int commonFrom = colStart, commonTo = colEnd;
                    for (int r = 0; r < Rows; r++)
                    {
                        float* s = blockScores + r * keyTile;
                        if (r0 + r >= rows)
                        {
                            new Span<float>(s + colStart, width).Clear(); // padded rows: zero weights, finite, never output
                            continue;
                        }
                        if (!termsApplied)
                        {
                            anyRemoved |= ApplyTerms(args, b, kvh * group + (r0 + r) / queries, firstQuery + (r0 + r) % queries,
                                s, start, tileFrom[r0 + r], ref tileTo[r0 + r], codes, r, removed, whole ? tileMax + (r0 + r) * TOps.Count : null);
                        }
                        int from = tileFrom[r0 + r], to = tileTo[r0 + r];
                        commonFrom = Math.Max(commonFrom, from);
                        commonTo = Math.Min(commonTo, to);
                        if (from >= to) continue; // nothing visible for this row here: its state is unchanged
                        // The softmax runs over the row's own range in whole vectors; lanes outside it become −∞.
                        int rowStart = from - from % TOps.Count, rowEnd = Planner.RoundUp(to, TOps.Count);
                        new Span<float>(s + rowStart, from - rowStart).Fill(float.NegativeInfinity);
                        new Span<float>(s + to, rowEnd - to).Fill(float.NegativeInfinity);
                        UpdateRow(s + rowStart, rowEnd - rowStart, whole ? tileMax + (r0 + r) * TOps.Count : null, ref rowMax[r0 + r], ref rowSum[r0 + r], accumulators + (r0 + r) * dv, dv);
                    }

                    // Each row's keys in order: its left edge (keys outside the range all 4 rows share) one row at a
                    // time, the shared range through the 4-row tile, then its right edge. Every row so gets the sums of
                    // a loop over its own keys, whichever way its block goes (BandBlock gives the same bits).
                    bool anyCommon = commonFrom < commonTo;
                    if (!anyCommon) commonFrom = commonTo = 0;
                    for (int r = 0; r < Rows && r0 + r < rows; r++)
                    {
                        int from = tileFrom[r0 + r], to = tileTo[r0 + r];
                        if (from >= to) continue;
                        int leftEnd = Math.Min(to, anyCommon ? commonFrom : to);
                        MicroKernels<TVec, TOps>.AccumulateRowRange(accumulators + (r0 + r) * dv, dv, blockScores + r * keyTile, valueTile, valueStride, from, leftEnd, removed[r] > 0, codes, 1 << r);
                    }
                    if (anyCommon && !anyRemoved)
                    {
                        MicroKernels<TVec, TOps>.Accumulate(accumulators + r0 * dv, dv, blockScores + commonFrom, keyTile,
                            valueTile + commonFrom * valueStride, valueStride, commonTo - commonFrom);
                    }
                    else if (anyCommon)
                    {
                        MicroKernels<TVec, TOps>.AccumulateUnmasked(accumulators + r0 * dv, dv, blockScores, keyTile,
                            valueTile, valueStride, commonFrom, commonTo, codes);
                    }
                    for (int r = 0; r < Rows && r0 + r < rows; r++)
                    {
                        int from = tileFrom[r0 + r], to = tileTo[r0 + r];
                        if (from >= to) continue;
                        int rightStart = Math.Max(from, anyCommon ? commonTo : to);
                        MicroKernels<TVec, TOps>.AccumulateRowRange(accumulators + (r0 + r) * dv, dv, blockScores + r * keyTile, valueTile, valueStride, rightStart, to, removed[r] > 0, codes, 1 << r);
                    }
                }
            }

            // Deferred normalisation: one division per row (the sink joins here), then the strided store.
            for (int r = 0; r < rows; r++)
                RowOutput<TVec, TOps>.Write(args, b, kvh * group + r / queries, firstQuery + r % queries, accumulators + r * dv, rowMax[r], rowSum[r], log2Units: true);
        }
    }

    /// <summary>
    /// Score terms on row <paramref name="r"/> of a block over [<paramref name="from"/>, <paramref name="to"/>), in
    /// units of log₂; <paramref name="removed"/>[r] gets how many keys a mask removed, and <paramref name="to"/> drops to
    /// <paramref name="from"/> when it removed all. A non-null <paramref name="maxOut"/> is the row's maximum vector,
    /// refreshed if the scores change. True when keys were removed.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool ApplyTerms(in KernelArguments args, int b, int head, int query, float* s, int start, int from, ref int to, byte* codes, int r, Span<int> removed, float* maxOut)
    {
        removed[r] = ScoreTerms<TVec, TOps>.ApplyToRange(args, b, head, query, s, start, from, ref to, codes, 1 << r, LogitUnit, maxOut, rowBlocks: true);
        return removed[r] > 0;
    }

    /// <summary>
    /// Compute item <paramref name="item"/>'s (batch, key-value head) pair, and its block of query positions. Items run
    /// pair by pair, so that consecutive items read the same packed keys and values from L2 rather than the next
    /// head's from L3 or memory (L1024d128 and L2048d64c, 1 and 2 threads: 6-7 % faster than head by head); causal
    /// pairs heaviest block first, so the last items of the call are light ones and no thread idles long at its end.
    /// </summary>
    private static int ItemRows(in KernelArguments args, in AttentionPlan plan, int item, out int firstQuery, out int queries)
    {
        int rank = item % plan.QueryBlocks;
        firstQuery = (plan.HeavyFirst ? plan.QueryBlocks - 1 - rank : rank) * plan.QueryBlock;
        queries = Math.Min(plan.QueryBlock, args.QueryCount - firstQuery);
        return item / plan.QueryBlocks;
    }

    /// <summary>The rows of a compute item: row r is query FirstQuery + r % Queries of head FirstHead + r / Queries in batch B.</summary>
    private readonly record struct ItemSpan(int B, int FirstHead, int FirstQuery, int Queries, int Rows)
    {
        /// <summary>Item <paramref name="item"/>'s rows; none past the last item.</summary>
        public static ItemSpan Of(in KernelArguments args, in AttentionPlan plan, int item)
        {
            if ((uint)item >= (uint)plan.ComputeItems) return default;
            int pair = ItemRows(args, plan, item, out int firstQuery, out int queries);
            return new ItemSpan(pair / args.KeyValueHeads, pair % args.KeyValueHeads * args.GroupSize, firstQuery, queries, args.GroupSize * queries);
        }
    }

    /// <summary>Block r0's query rows of the item this thread most likely runs next, and its output rows of this item (fp32 output only).</summary>
    private static void PrefetchItemRows(in KernelArguments args, int d, int dv, in ItemSpan nextItem, in ItemSpan thisItem, int r0)
    {
        PrefetchRows(args.Query, d, nextItem, r0);
        if (args.Output.IsFloat32) PrefetchRows(args.Output, dv, thisItem, r0);
    }

    /// <summary>Cache hints for rows [r0, r0 + Rows) of <paramref name="span"/> in <paramref name="tensor"/> (query or output rows): two divisions a block, not two a row.</summary>
    private static void PrefetchRows(in Operand tensor, int columns, in ItemSpan span, int r0)
    {
        if (r0 >= span.Rows) return;
        int rowBytes = columns * Operand.ElementSize(tensor.Type);
        int head = span.FirstHead + r0 / span.Queries, query = r0 % span.Queries;
        for (int r = r0; r < r0 + Rows && r < span.Rows; r++)
        {
            CacheHints.PrefetchToL2(tensor.Row(span.B, head, span.FirstQuery + query), rowBytes);
            if (++query == span.Queries) (query, head) = (0, head + 1);
        }
    }

    // Not inlined into Compute, whose size would exhaust the JIT's inlining budget before the exp's vector operations.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void UpdateRow(float* s, int columns, float* knownMax, ref float rowMax, ref float rowSum, float* output, int dv)
    {
        int w = TOps.Count;
        TVec max;
        if (knownMax != null)
        {
            max = TOps.Load(knownMax); // the score tile's lane-wise maximum of exactly these columns
        }
        else
        {
            max = TOps.Create(float.NegativeInfinity);
            for (int j = 0; j < columns; j += w) max = TOps.Max(max, TOps.Load(s + j));
        }
        if (RaiseMax(TOps.MaxAcross(max), ref rowMax, ref rowSum, output, dv)) ExpRow(s, columns, rowMax, ref rowSum);
        else new Span<float>(s, columns).Clear();
    }

    /// <summary>
    /// <see cref="UpdateRow"/> for the 4 rows of a block (rows <paramref name="stride"/> floats apart) whose maxima the
    /// score tile or the score terms left in <paramref name="knownMax"/>, the rows' exps interleaved: 4 independent chains per column
    /// vector instead of one, and one call instead of four. Each row gets the same operations in the same order, so
    /// the same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void UpdateBlock(float* s, int stride, int columns, float* knownMax, float* rowMax, float* rowSum, float* output, int dv)
    {
        if (!RaiseBlockMax(s, stride, columns, knownMax, rowMax, rowSum, output, dv)) return;
        float* s0 = s, s1 = s + stride, s2 = s + 2 * stride, s3 = s + 3 * stride;
        TVec m0 = TOps.Create(rowMax[0]), m1 = TOps.Create(rowMax[1]), m2 = TOps.Create(rowMax[2]), m3 = TOps.Create(rowMax[3]);
        TVec sum0 = TOps.Zero, sum1 = TOps.Zero, sum2 = TOps.Zero, sum3 = TOps.Zero;
        for (int j = 0; j < columns; j += TOps.Count) ExpGroup(s0 + j, s1 + j, s2 + j, s3 + j, m0, m1, m2, m3, ref sum0, ref sum1, ref sum2, ref sum3);
        rowSum[0] += TOps.SumAcross(sum0);
        rowSum[1] += TOps.SumAcross(sum1);
        rowSum[2] += TOps.SumAcross(sum2);
        rowSum[3] += TOps.SumAcross(sum3);
    }

    /// <summary>
    /// The 4 rows' running maxima raised to their tile maxima in <paramref name="knownMax"/> (sums and outputs rescaled).
    /// True when every row has a finite maximum, for the interleaved pass; otherwise the rows are done here one by one, as
    /// <see cref="UpdateRow"/> does (a row whose every score so far is −∞, from infinite inputs, gets zero weights).
    /// </summary>
    private static bool RaiseBlockMax(float* s, int stride, int columns, float* knownMax, float* rowMax, float* rowSum, float* output, int dv)
    {
        int w = TOps.Count, seen = 0;
        for (int r = 0; r < Rows; r++)
            if (RaiseMax(TOps.MaxAcross(TOps.Load(knownMax + r * w)), ref rowMax[r], ref rowSum[r], output + r * dv, dv)) seen |= 1 << r;
        if (seen == (1 << Rows) - 1) return true;
        for (int r = 0; r < Rows; r++)
        {
            if ((seen & (1 << r)) == 0) new Span<float>(s + r * stride, columns).Clear();
            else ExpRow(s + r * stride, columns, rowMax[r], ref rowSum[r]);
        }
        return false;
    }

    /// <summary>P = 2^(s − m) for one vector of each of 4 rows, in place, added to the rows' sums: the same operations, in the same order, wherever it runs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ExpGroup(float* s0, float* s1, float* s2, float* s3, TVec m0, TVec m1, TVec m2, TVec m3, ref TVec sum0, ref TVec sum1, ref TVec sum2, ref TVec sum3)
    {
        TVec p0 = VectorMath.Exp2BelowOverflow<TVec, TOps>(TOps.Subtract(TOps.Load(s0), m0));
        TVec p1 = VectorMath.Exp2BelowOverflow<TVec, TOps>(TOps.Subtract(TOps.Load(s1), m1));
        TVec p2 = VectorMath.Exp2BelowOverflow<TVec, TOps>(TOps.Subtract(TOps.Load(s2), m2));
        TVec p3 = VectorMath.Exp2BelowOverflow<TVec, TOps>(TOps.Subtract(TOps.Load(s3), m3));
        TOps.Store(p0, s0); TOps.Store(p1, s1); TOps.Store(p2, s2); TOps.Store(p3, s3);
        sum0 = TOps.Add(sum0, p0); sum1 = TOps.Add(sum1, p1); sum2 = TOps.Add(sum2, p2); sum3 = TOps.Add(sum3, p3);
    }

    /// <summary>
    /// Whether a wholly visible block takes its softmax inside its P·V tile (<see cref="UpdateAndAccumulate"/>): value
    /// rows of exactly one 4-vector panel, on a CPU with 32 vector registers (16 accumulators, 4 value vectors and the
    /// exp's temporaries).
    /// </summary>
    private static bool FusesSoftmax(int dv) => Avx512F.IsSupported && dv == 4 * TOps.Count;

    /// <summary>
    /// <see cref="UpdateBlock"/> and then the block's P·V tile over the same columns (value rows of one 4-vector panel),
    /// in one loop: the exps of each group of Count keys run while the FMAs of the group before them do, where the two
    /// passes one after the other left the FMA units idle during the exps (L2048d64, 1 thread: 3–5 % faster over
    /// alternated processes). The same bits as the two passes.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void UpdateAndAccumulate(float* s, int stride, int columns, float* knownMax, float* rowMax, float* rowSum, float* output, float* value, nint valueStride)
    {
        int dv = 4 * TOps.Count;
        if (RaiseBlockMax(s, stride, columns, knownMax, rowMax, rowSum, output, dv)) ExpAccumulate<No>(s, stride, columns, rowMax, rowSum, output, value, valueStride);
        else MicroKernels<TVec, TOps>.Accumulate(output, dv, s, stride, value, valueStride, columns);
    }

    /// <summary>
    /// The fused loop of <see cref="UpdateAndAccumulate"/>, every row's maximum finite: group 0's exps first, then per
    /// group the next group's exps and this group's FMAs.
    /// </summary>
    /// <typeparam name="TBounded">
    /// The P·V part covers only keys [<paramref name="keysFrom"/>, <paramref name="keysTo"/>) of the columns (a band block:
    /// the value rows outside may be past the tile's end, or hold ±∞ or NaN); the exps cover all the columns.
    /// </typeparam>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ExpAccumulate<TBounded>(float* s, int stride, int columns, float* rowMax, float* rowSum, float* output, float* value, nint valueStride,
        int keysFrom = 0, int keysTo = 0)
        where TBounded : struct, IFlag
    {
        int w = TOps.Count;
        float* s0 = s, s1 = s + stride, s2 = s + 2 * stride, s3 = s + 3 * stride;
        float* o0 = output, o1 = output + 4 * w, o2 = output + 8 * w, o3 = output + 12 * w;
        TVec m0 = TOps.Create(rowMax[0]), m1 = TOps.Create(rowMax[1]), m2 = TOps.Create(rowMax[2]), m3 = TOps.Create(rowMax[3]);
        TVec sum0 = TOps.Zero, sum1 = TOps.Zero, sum2 = TOps.Zero, sum3 = TOps.Zero;
        ExpGroup(s0, s1, s2, s3, m0, m1, m2, m3, ref sum0, ref sum1, ref sum2, ref sum3);
        TVec a00 = TOps.Load(o0), a01 = TOps.Load(o0 + w), a02 = TOps.Load(o0 + 2 * w), a03 = TOps.Load(o0 + 3 * w);
        TVec a10 = TOps.Load(o1), a11 = TOps.Load(o1 + w), a12 = TOps.Load(o1 + 2 * w), a13 = TOps.Load(o1 + 3 * w);
        TVec a20 = TOps.Load(o2), a21 = TOps.Load(o2 + w), a22 = TOps.Load(o2 + 2 * w), a23 = TOps.Load(o2 + 3 * w);
        TVec a30 = TOps.Load(o3), a31 = TOps.Load(o3 + w), a32 = TOps.Load(o3 + 2 * w), a33 = TOps.Load(o3 + 3 * w);
        float* v = value;
        for (int j = 0; j < columns; j += w)
        {
            int next = j + w;
            if (next < columns)
            {
                // The next group's weights, computed while this group's FMAs run (independent of them).
                ExpGroup(s0 + next, s1 + next, s2 + next, s3 + next, m0, m1, m2, m3, ref sum0, ref sum1, ref sum2, ref sum3);
            }
            int first = j, end = next;
            if (TBounded.On)
            {
                first = Math.Max(j, keysFrom);
                end = Math.Min(next, keysTo);
                v = value + first * valueStride;
            }
            // The key step of MicroKernels.AccumulateColumns4, written out again: as a shared inlined method over 16
            // accumulators by reference it measured 1 % slower in both callers (L2048d64, 5 alternated processes).
            for (int k = first; k < end; k++, v += valueStride)
            {
                TVec v0 = TOps.Load(v), v1 = TOps.Load(v + w), v2 = TOps.Load(v + 2 * w), v3 = TOps.Load(v + 3 * w);
                TVec b = TOps.Create(s0[k]);
                a00 = TOps.MultiplyAdd(b, v0, a00); a01 = TOps.MultiplyAdd(b, v1, a01); a02 = TOps.MultiplyAdd(b, v2, a02); a03 = TOps.MultiplyAdd(b, v3, a03);
                b = TOps.Create(s1[k]);
                a10 = TOps.MultiplyAdd(b, v0, a10); a11 = TOps.MultiplyAdd(b, v1, a11); a12 = TOps.MultiplyAdd(b, v2, a12); a13 = TOps.MultiplyAdd(b, v3, a13);
                b = TOps.Create(s2[k]);
                a20 = TOps.MultiplyAdd(b, v0, a20); a21 = TOps.MultiplyAdd(b, v1, a21); a22 = TOps.MultiplyAdd(b, v2, a22); a23 = TOps.MultiplyAdd(b, v3, a23);
                b = TOps.Create(s3[k]);
                a30 = TOps.MultiplyAdd(b, v0, a30); a31 = TOps.MultiplyAdd(b, v1, a31); a32 = TOps.MultiplyAdd(b, v2, a32); a33 = TOps.MultiplyAdd(b, v3, a33);
            }
        }
        TOps.Store(a00, o0); TOps.Store(a01, o0 + w); TOps.Store(a02, o0 + 2 * w); TOps.Store(a03, o0 + 3 * w);
        TOps.Store(a10, o1); TOps.Store(a11, o1 + w); TOps.Store(a12, o1 + 2 * w); TOps.Store(a13, o1 + 3 * w);
        TOps.Store(a20, o2); TOps.Store(a21, o2 + w); TOps.Store(a22, o2 + 2 * w); TOps.Store(a23, o2 + 3 * w);
        TOps.Store(a30, o3); TOps.Store(a31, o3 + w); TOps.Store(a32, o3 + 2 * w); TOps.Store(a33, o3 + 3 * w);
        rowSum[0] += TOps.SumAcross(sum0);
        rowSum[1] += TOps.SumAcross(sum1);
        rowSum[2] += TOps.SumAcross(sum2);
        rowSum[3] += TOps.SumAcross(sum3);
    }

    /// <summary>
    /// A block whose 4 rows see different but overlapping ranges of the tile [from, to) (a band: the causal diagonal, a
    /// sliding window, a triangular boolean mask) as if it were wholly visible: each row's columns outside its range become
    /// −∞, so their weights are exactly 0, and the block takes one interleaved softmax pass and one P·V tile over the
    /// union of the ranges, instead of a pass per row and a single-row tile for every edge; where the softmax fuses
    /// into the P·V tile (<see cref="FusesSoftmax"/>), in the fused loop, as a wholly visible block does (causal
    /// L2048d64 about 1 % faster, a 256-key window 4 %: both builds in one process, each listed first in turn). The
    /// value rows of the edges (keys some rows see and others do not) are then multiplied by zero weights, so they
    /// must be finite: false, with nothing changed, where an edge row holds ±∞ or NaN (or the edges are long, or a row
    /// sees nothing here, or the rows share no key), and the caller takes the row-by-row path.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static bool BandBlock(float* s, int stride, int colStart, int colEnd, ReadOnlySpan<int> from, ReadOnlySpan<int> to,
        float* maxima, float* rowMax, float* rowSum, float* output, int dv, float* values, nint valueStride)
    {
        int unionFrom = int.MaxValue, unionTo = 0, commonFrom = 0, commonTo = int.MaxValue;
        for (int r = 0; r < Rows; r++)
        {
            if (from[r] >= to[r]) return false;
            unionFrom = Math.Min(unionFrom, from[r]);
            unionTo = Math.Max(unionTo, to[r]);
            commonFrom = Math.Max(commonFrom, from[r]);
            commonTo = Math.Min(commonTo, to[r]);
        }
        if (commonFrom >= commonTo || commonFrom - unionFrom + unionTo - commonTo > MaxBandEdgeKeys) return false;
        if (!RowsFinite(values + unionFrom * valueStride, valueStride, commonFrom - unionFrom, dv) ||
            !RowsFinite(values + commonTo * valueStride, valueStride, unionTo - commonTo, dv))
        {
            return false;
        }
        int w = TOps.Count;
        for (int r = 0; r < Rows; r++)
        {
            float* row = s + r * stride;
            new Span<float>(row + colStart, from[r] - colStart).Fill(float.NegativeInfinity);
            new Span<float>(row + to[r], colEnd - to[r]).Fill(float.NegativeInfinity);
        }
        // The rows' maxima, 4 chains at once (the scores come back from L2 here; UpdateBlock then reads them from L1).
        float* s0 = s, s1 = s + stride, s2 = s + 2 * stride, s3 = s + 3 * stride;
        TVec m0 = TOps.Create(float.NegativeInfinity), m1 = m0, m2 = m0, m3 = m0;
        for (int j = colStart; j < colEnd; j += w)
        {
            m0 = TOps.Max(m0, TOps.Load(s0 + j));
            m1 = TOps.Max(m1, TOps.Load(s1 + j));
            m2 = TOps.Max(m2, TOps.Load(s2 + j));
            m3 = TOps.Max(m3, TOps.Load(s3 + j));
        }
        TOps.Store(m0, maxima);
        TOps.Store(m1, maxima + w);
        TOps.Store(m2, maxima + 2 * w);
        TOps.Store(m3, maxima + 3 * w);
        if (FusesSoftmax(dv))
        {
            // The fused loop, its P·V over the union only: the same bits as the two passes below.
            if (RaiseBlockMax(s + colStart, stride, colEnd - colStart, maxima, rowMax, rowSum, output, dv))
            {
                ExpAccumulate<Yes>(s + colStart, stride, colEnd - colStart, rowMax, rowSum, output, values + colStart * valueStride, valueStride,
                    unionFrom - colStart, unionTo - colStart);
                return true;
            }
        }
        else
        {
            UpdateBlock(s + colStart, stride, colEnd - colStart, maxima, rowMax, rowSum, output, dv);
        }
        MicroKernels<TVec, TOps>.Accumulate(output, dv, s + unionFrom, stride, values + unionFrom * valueStride, valueStride, unionTo - unionFrom);
        return true;
    }

    // Keys a band block may have outside the range its 4 rows share (a window or the diagonal: 3 on a side); each is a
    // value row checked for ±∞ and NaN.
    private const int MaxBandEdgeKeys = 32;

    /// <summary>Whether <paramref name="count"/> rows of <paramref name="columns"/> floats hold only finite values.</summary>
    private static bool RowsFinite(float* rows, nint stride, int count, int columns)
    {
        int w = TOps.Count;
        TVec zeros = TOps.Zero; // x·0 is 0 for finite x, NaN for ±∞ and NaN
        for (int j = 0; j < count; j++)
        {
            float* row = rows + j * stride;
            int c = 0;
            for (; c + w <= columns; c += w) zeros = TOps.Add(zeros, TOps.Multiply(TOps.Load(row + c), TOps.Zero));
            for (; c < columns; c++)
            {
                if (!float.IsFinite(row[c])) return false;
            }
        }
        return TOps.SumAcross(zeros) == 0f;
    }

    /// <summary>P = 2^(s − <paramref name="max"/>) over one row's columns (logits in units of log₂), in place, their sum added to <paramref name="rowSum"/>.</summary>
    private static void ExpRow(float* s, int columns, float max, ref float rowSum)
    {
        int w = TOps.Count;
        TVec m = TOps.Create(max);
        TVec sum = TOps.Zero;
        for (int j = 0; j < columns; j += w)
        {
            TVec p = VectorMath.Exp2BelowOverflow<TVec, TOps>(TOps.Subtract(TOps.Load(s + j), m));
            TOps.Store(p, s + j);
            sum = TOps.Add(sum, p);
        }
        rowSum += TOps.SumAcross(sum);
    }

    /// <summary>
    /// A row's running maximum after a tile whose maximum is <paramref name="tileMax"/>: when it rises, what was
    /// accumulated (sum and output) is rescaled by 2^(old − new). False when every score so far is −∞ (all masked):
    /// the tile's weights must then be zeros, never 2^(−∞ + ∞) = NaN.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool RaiseMax(float tileMax, ref float rowMax, ref float rowSum, float* output, int dv)
    {
        float previous = rowMax;
        if (tileMax == float.NegativeInfinity && previous == float.NegativeInfinity) return false;
        if (tileMax > previous)
        {
            // Nothing was accumulated yet when previous is −∞.
            if (previous != float.NegativeInfinity)
            {
                float alpha = VectorMath.Exp2(previous - tileMax);
                rowSum *= alpha;
                MicroKernels<TVec, TOps>.Scale(output, output, dv, alpha);
            }
            rowMax = tileMax;
        }
        return true;
    }
}
