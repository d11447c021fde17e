using System.Diagnostics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using FastAttention.Buffers;
using FastAttention.Planning;

namespace FastAttention.Kernels;

/// <summary>
/// Few query rows against a long key sequence: memory-bound, so each K and V row is read once for all query rows
/// of its key-value group, straight from the caller's buffer (no packing), and the key sequence is split into a
/// fixed number of slices chosen from the problem, merged by log-sum-exp in a fixed order.
/// <code>
///  phase 1 (per slice of one key-value head): s = Q·k per key row (all group rows at once) ─► mask ─► m, l, Σ p·v
///  phase 2 (per key-value head): M = max m_s; O = Σ_s e^(m_s − M)·O_s / Σ_s e^(m_s − M)·l_s
/// </code>
/// </summary>
internal static unsafe class DecodeKernel<TVec, TOps>
    where TVec : unmanaged
    where TOps : IVectorOps<TVec>
{
    private const int Rows = MicroKernels<TVec, TOps>.Rows;

    /// <summary>Floats of partial state per (pair, slice, row): m, l, then valueHeadSize accumulators.</summary>
    public static int PartialStride(in KernelArguments args) => args.ValueHeadSize + 2;

    [SkipLocalsInit]
    public static void Slice(in KernelArguments args, in AttentionPlan plan, float* partials, Workspace workspace, int item)
    {
        int pair = item / plan.Splits, slice = item % plan.Splits;
        int b = pair / args.KeyValueHeads, kvh = pair % args.KeyValueHeads;
        int d = args.HeadSize, dv = args.ValueHeadSize, group = args.GroupSize, queries = args.QueryCount;
        int rows = group * queries, paddedRows = Planner.RoundUp(rows, Rows);
        int start = slice * plan.SplitSize, count = Math.Min(plan.SplitSize, args.KeyCount - start);
        int stride = PartialStride(args);
        int sliceStride = Planner.DecodeScoreStride(plan.SplitSize, plan.Width); // whole vectors per score row, tails included

        bool inPlace = args.DecodeWidensInPlace;
        fixed (float* queryScratch = &workspace.Get(0, paddedRows * d))
        fixed (float* accumulators = &workspace.Get(1, paddedRows * dv))
        fixed (float* scores = &workspace.Get(2, paddedRows * sliceStride))
        fixed (float* rowStates = &workspace.Get(3, 2 * rows))
        fixed (float* staging = &((args.Key.IsFloat32 && args.Value.IsFloat32) || inPlace ? ref Unsafe.NullRef<float>() : ref workspace.Get(4, count * ((args.Key.IsFloat32 ? 0 : d) + (args.Value.IsFloat32 ? 0 : dv)))))
        {
            // The partial state of each row: m, l, then the accumulators (copied last). A single slice keeps
            // m and l in the worker's own scratch and writes the output directly: no partials, no merge.
            float* partial = plan.Splits == 1 ? rowStates : partials + ((long)pair * plan.Splits + slice) * rows * stride;
            if (plan.Splits == 1) stride = 2;

            for (int r = 0; r < paddedRows; r++)
            {
                float* destination = queryScratch + r * d;
                if (r < rows)
                {
                    ElementConversion<TVec, TOps>.ScaledRow(args.Query, b, kvh * group + r / queries, r % queries, destination, d, args.Scale);
                }
                else
                {
                    new Span<float>(destination, d).Clear();
                }
            }
            new Span<float>(accumulators, paddedRows * dv).Clear();

            // fp32 rows of the slice (read in place, or widened into staging); unused when inPlace. A group of query
            // rows that all see the same keys (one query position, no tensor mask or bias: grouped-query decode over a
            // Half or int8 cache) reads its keys and values a chunk at a time instead (null here: see DotScoresWidened):
            // inside the 4-row tiles, or (where they cannot be) widened into the start of the staging area and read
            // again from L1. The whole slice widened at once (megabytes) went out to L3 and back, and made that decode
            // slower than on fp32 inputs.
            float* keys, values;
            nint keyStride, valueStride;
            bool chunked = staging != null && queries == 1 && group % Rows == 0 && args.Mask == null && args.Bias == null;
            if (staging == null || chunked)
            {
                keys = args.Key.IsFloat32 ? args.Key.Floats(b, kvh, start) : null;
                values = args.Value.IsFloat32 ? args.Value.Floats(b, kvh, start) : null;
                keyStride = args.Key.IsFloat32 ? args.Key.RowStride : d;
                valueStride = args.Value.IsFloat32 ? args.Value.RowStride : dv;
            }
            else
            {
                StageSlice(args, b, kvh, start, count, staging, out keys, out keyStride, out values, out valueStride);
            }
            Span<int> from = stackalloc int[Rows];
            Span<int> to = stackalloc int[Rows];
            Span<int> masked = stackalloc int[Rows];
            byte* codes = stackalloc byte[sliceStride]; // per key: bit r set when a tensor mask removed it for row r
            for (int r0 = 0; r0 < paddedRows; r0 += Rows)
            {
                // Which keys of this slice each row sees, relative to its start: [from, to).
                int real = Math.Min(Rows, rows - r0);
                int fromMin = count, toMax = 0;
                for (int r = 0; r < real; r++)
                {
                    args.VisibleKeys(b, (r0 + r) % queries, out int lo, out int hi);
                    from[r] = Math.Clamp(lo - start, 0, count);
                    to[r] = Math.Max(from[r], Math.Clamp(hi - start, 0, count));
                    ScoreTerms<TVec, TOps>.TrimToMask(args, b, kvh * group + (r0 + r) / queries, (r0 + r) % queries, start, ref from[r], ref to[r]);
                    fromMin = Math.Min(fromMin, from[r]);
                    toMax = Math.Max(toMax, to[r]);
                }
                float* s0 = scores + r0 * sliceStride;
                float* q0 = queryScratch + r0 * d;
                float* a0 = accumulators + r0 * dv;
                float* state0 = partial + r0 * stride;

                if (real < Rows)
                {
                    // Fewer than 4 real rows (plain decode has 1): row by row, no FMA spent on padding rows.
                    for (int r = 0; r < real; r++)
                    {
                        float* s = s0 + r * sliceStride;
                        int n = to[r] - from[r];
                        if (n > 0 && inPlace) DotRowInPlace(args.Key, b, kvh, start + from[r], q0 + r * d, d, n, s + from[r]);
                        else if (n > 0) DotRow<Float32Loader>(q0 + r * d, d, (byte*)(keys + from[r] * keyStride), keyStride, n, s + from[r]);
                        if (args.HasScoreTerms) new Span<byte>(codes + from[r], n).Clear();
                        int removed = ScoreTerms<TVec, TOps>.ApplyToRange(args, b, kvh * group + (r0 + r) / queries, (r0 + r) % queries, s, start, from[r], ref to[r], codes, 1);
                        if (!RowWeights(s, from[r], to[r], state0 + r * stride)) continue;
                        float* output = a0 + r * dv;
                        if (removed == 0 && inPlace)
                            AccumulateRowInPlace(args.Value, b, kvh, start + from[r], output, dv, s + from[r], to[r] - from[r]);
                        else if (removed == 0)
                            MicroKernels<TVec, TOps>.AccumulateRow(output, dv, s + from[r], values + from[r] * valueStride, valueStride, to[r] - from[r]);
                        else
                            MicroKernels<TVec, TOps>.AccumulateRowUnmasked(output, dv, s, values, valueStride, from[r], to[r], codes, 1);
                    }
                    continue;
                }

                // Four rows: scores for the union of their ranges, values for the common range in one 4-row pass.
                if (toMax > fromMin && keys == null)
                    DotScoresWidened(args.Key, b, kvh, start, q0, d, fromMin, toMax, s0, sliceStride, staging);
                else if (toMax > fromMin)
                    DotScores(q0, d, keys + fromMin * keyStride, keyStride, toMax - fromMin, s0 + fromMin, sliceStride);
                bool anyRemoved = false;
                if (args.HasScoreTerms) new Span<byte>(codes + fromMin, Math.Max(0, toMax - fromMin)).Clear();
                for (int r = 0; r < Rows; r++)
                {
                    masked[r] = ScoreTerms<TVec, TOps>.ApplyToRange(args, b, kvh * group + (r0 + r) / queries, (r0 + r) % queries, s0 + r * sliceStride, start, from[r], ref to[r], codes, 1 << r);
                    anyRemoved |= masked[r] > 0;
                }
                int commonFrom = 0, commonTo = count;
                for (int r = 0; r < Rows; r++)
                {
                    commonFrom = Math.Max(commonFrom, from[r]);
                    commonTo = Math.Min(commonTo, to[r]);
                }
                commonTo = Math.Max(commonFrom, commonTo);
                bool any = false;
                for (int r = 0; r < Rows; r++)
                {
                    if (!RowWeights(s0 + r * sliceStride, from[r], to[r], state0 + r * stride))
                    {
                        // Nothing to add for this row: its weights in the common range must be zeros, not raw scores.
                        new Span<float>(s0 + r * sliceStride + commonFrom, commonTo - commonFrom).Clear();
                        continue;
                    }
                    any = true;
                }
                if (!any) continue;
                bool edges = false;
                for (int r = 0; r < Rows; r++) edges |= from[r] < Math.Min(to[r], commonFrom) || Math.Max(from[r], commonTo) < to[r];
                if (values == null && (anyRemoved || edges))
                {
                    // Not the plain case the chunked widening serves after all (a score of −∞ from the inputs, say):
                    // the slice widened whole after all, as for every other case (the keys are done with).
                    StageSlice(args, b, kvh, start, count, staging, out keys, out keyStride, out values, out valueStride);
                }
                if (commonTo > commonFrom && values == null)
                {
                    AccumulateWidened(args.Value, b, kvh, start, a0, dv, s0, sliceStride, commonFrom, commonTo, staging);
                }
                else if (commonTo > commonFrom)
                {
                    if (!anyRemoved && (long)(commonTo - commonFrom) * dv > CachedKeyFloats)
                    {
                        // Value rows streamed from memory: a chunk at a time through the 4-row tile, from L1, while
                        // the next chunk's rows are prefetched (the tile's column blocks walk each row in strided
                        // parts, which the hardware prefetcher alone serves slowly), one line per value load, inside
                        // the tile: see DotScores.
                        int chunk = StreamChunk(dv);
                        bool wholeRows = MicroKernels<TVec, TOps>.StreamsWholeValueRows(dv);
                        for (int x = commonFrom; x < commonTo; x += chunk)
                        {
                            int n = Math.Min(chunk, commonTo - x);
                            if (wholeRows)
                                MicroKernels<TVec, TOps>.AccumulateStreamed(a0, dv, s0 + x, sliceStride, values + x * valueStride, valueStride, n);
                            else MicroKernels<TVec, TOps>.Accumulate(a0, dv, s0 + x, sliceStride, values + x * valueStride, valueStride, n, prefetchAhead: x + 2 * n <= commonTo ? n * valueStride : 0);
                        }
                    }
                    else if (!anyRemoved)
                    {
                        // Value rows in cache (few keys): the 4-row tile at once.
                        MicroKernels<TVec, TOps>.Accumulate(a0, dv, s0 + commonFrom, sliceStride, values + commonFrom * valueStride, valueStride, commonTo - commonFrom);
                    }
                    else
                    {
                        MicroKernels<TVec, TOps>.AccumulateUnmasked(a0, dv, s0, sliceStride, values, valueStride, commonFrom, commonTo, codes);
                    }
                }
                for (int r = 0; r < Rows; r++)
                {
                    // The edges of each row's range outside the common one.
                    float* s = s0 + r * sliceStride;
                    int leftEnd = Math.Min(to[r], commonFrom), rightStart = Math.Max(from[r], commonTo);
                    MicroKernels<TVec, TOps>.AccumulateRowRange(a0 + r * dv, dv, s, values, valueStride, from[r], leftEnd, masked[r] > 0, codes, 1 << r);
                    MicroKernels<TVec, TOps>.AccumulateRowRange(a0 + r * dv, dv, s, values, valueStride, rightStart, to[r], masked[r] > 0, codes, 1 << r);
                }
            }

            if (plan.Splits == 1)
            {
                // One slice holds every key: its state is final, normalise straight into the output.
                for (int r = 0; r < rows; r++)
                    RowOutput<TVec, TOps>.Write(args, b, kvh * group + r / queries, r % queries, accumulators + r * dv, partial[r * stride], partial[r * stride + 1]);
                return;
            }
            for (int r = 0; r < rows; r++)
                new Span<float>(accumulators + r * dv, dv).CopyTo(new Span<float>(partial + r * stride + 2, dv));
        }
    }

    /// <summary>
    /// <see cref="DotScores"/> over key rows [from, to) of the slice starting at <paramref name="start"/>, stored in a
    /// narrower type, <see cref="WidenChunk"/> rows at a time: read in the tile where they can be (see
    /// <see cref="ReadsStoredInTiles"/>), the others widened into <paramref name="buffer"/> and scored from there. Each
    /// key's score is computed alone, the same way either way, so the scores are those of the slice widened whole.
    /// </summary>
    [SkipLocalsInit]
    private static void DotScoresWidened(in Operand key, int b, int kvh, int start, float* query, int d, int from, int to, float* scores, int scoreStride, float* buffer)
    {
        int chunk = WidenChunk(d);
        // Rows go straight into the tile where they can (see ReadsStoredInTiles), with nothing written and read back:
        // int8 times each row's scale, as the widened copy has it; Half as its bits against the 4 query rows times 2¹¹²
        // (see HalfBitsLoader: the same products, so the same bits), after one scan per chunk for ±∞ and NaN (a chunk
        // that has one is widened as before).
        bool inTiles = ReadsStoredInTiles(key, d), halves = key.Type == ElementType.Float16;
        float* rebiased = stackalloc float[inTiles && halves ? Rows * d : 0];
        if (inTiles && halves) inTiles = Rebias(query, rebiased, Rows * d);
        nint rowBytes = key.RowStride * Operand.ElementSize(key.Type);
        for (int x = from; x < to; x += chunk)
        {
            int n = Math.Min(chunk, to - x), whole = inTiles ? n - n % 4 : 0;
            byte* rows = key.Row(b, kvh, start + x);
            nint ahead = x + 2 * chunk <= to ? chunk * rowBytes : 0; // the next chunk's rows, as long as there is one
            if (whole > 0 && !halves)
            {
                float* scales = RowScales(key, b, kvh, start + x);
                for (int j = 0; j < whole; j += 4) DotBlock<Int8Loader>(query, d, rows + j * rowBytes, rowBytes, scores + x + j, scoreStride, ahead, scales + j);
            }
            else if (whole > 0 && ElementConversion<TVec, TOps>.AllHalvesFinite(rows, key.RowStride, whole, d))
            {
                for (int j = 0; j < whole; j += 4) DotBlock<HalfBitsLoader>(rebiased, d, rows + j * rowBytes, rowBytes, scores + x + j, scoreStride, ahead);
            }
            else
            {
                whole = 0;
            }
            if (whole == n) continue;
            ElementConversion<TVec, TOps>.WidenRows(key, b, kvh, start + x + whole, n - whole, d, buffer, d);
            DotScores(query, d, buffer, d, n - whole, scores + x + whole, scoreStride);
        }
    }

    /// <summary>
    /// Whether the 4-row tiles read rows of <paramref name="tensor"/> of <paramref name="columns"/> elements in place:
    /// IEEE halves or int8, whole 4-vector panels per row, on a CPU with 32 vector registers (the tiles' 16
    /// accumulators, 4 loaded vectors and their widening), rows a whole number of floats apart (the value tile steps in
    /// floats).
    /// </summary>
    private static bool ReadsStoredInTiles(in Operand tensor, int columns) =>
        tensor.Type is ElementType.Float16 or ElementType.Int8 && Avx512F.IsSupported && columns % (4 * TOps.Count) == 0 && columns <= MaxTileStoredColumns
        && tensor.RowStride * Operand.ElementSize(tensor.Type) % sizeof(float) == 0;

    // Head sizes up to which the 4-row tiles read stored rows in place (the rebiased Half query rows are on the stack).
    private const int MaxTileStoredColumns = 256;

    /// <summary>
    /// The 4-row weighted sum over value rows [from, to) stored in a narrower type, a chunk at a time: read in the tile
    /// where they can be, the others widened into <paramref name="buffer"/>; the same sums, key by key in
    /// order, as over the slice widened whole.
    /// </summary>
    [SkipLocalsInit]
    private static void AccumulateWidened(in Operand value, int b, int kvh, int start, float* output, int dv, float* weights, int weightStride, int from, int to, float* buffer)
    {
        int chunk = WidenChunk(dv);
        // As in DotScoresWidened: int8 rows read in the tile times their scales; finite Half rows as their bits, the
        // chunk's weights (at most 1) times 2¹¹² in a copy (the same products, so the same sums as over the widened rows).
        bool inTiles = ReadsStoredInTiles(value, dv), halves = value.Type == ElementType.Float16;
        float* rebiased = stackalloc float[inTiles && halves ? Rows * chunk : 0];
        nint rowBytes = value.RowStride * Operand.ElementSize(value.Type);
        for (int x = from; x < to; x += chunk)
        {
            int n = Math.Min(chunk, to - x);
            byte* rows = value.Row(b, kvh, start + x);
            nint ahead = x + 2 * chunk <= to ? chunk * rowBytes : 0;
            if (inTiles && !halves)
            {
                MicroKernels<TVec, TOps>.AccumulateStored<Int8Loader>(output, dv, weights + x, weightStride, rows, rowBytes, n, ahead, RowScales(value, b, kvh, start + x));
                continue;
            }
            if (inTiles && ElementConversion<TVec, TOps>.AllHalvesFinite(rows, value.RowStride, n, dv))
            {
                for (int r = 0; r < Rows; r++)
                    TensorPrimitives.Multiply(new ReadOnlySpan<float>(weights + r * weightStride + x, n), HalfBitsLoader.Rebias, new Span<float>(rebiased + r * chunk, n));
                MicroKernels<TVec, TOps>.AccumulateStored<HalfBitsLoader>(output, dv, rebiased, chunk, rows, rowBytes, n, ahead);
                continue;
            }
            ElementConversion<TVec, TOps>.WidenRows(value, b, kvh, start + x, n, dv, buffer, dv);
            MicroKernels<TVec, TOps>.Accumulate(output, dv, weights + x, weightStride, buffer, dv, n);
        }
    }

    /// <summary>Rows widened at a time by the chunked staging: 16 KiB of floats (stays in L1 while it is read), whole 4-row blocks.</summary>
    private static int WidenChunk(int columns) => Math.Max(4, 4096 / columns / 4 * 4);

    /// <summary>
    /// Keys or values not in fp32: the rows of the slice that some query row may see (index masks) are widened into
    /// <paramref name="staging"/> (keys, then values, both dense), and the pointers set so that row j of the slice
    /// is at keys + j·keyStride as for fp32 inputs. Rows no query sees are neither read nor widened.
    /// </summary>
    private static void StageSlice(in KernelArguments args, int b, int kvh, int start, int count, float* staging,
        out float* keys, out nint keyStride, out float* values, out nint valueStride)
    {
        int first = count, end = 0;
        for (int query = 0; query < args.QueryCount; query++)
        {
            args.VisibleKeys(b, query, out int lo, out int hi);
            lo = Math.Clamp(lo - start, 0, count);
            hi = Math.Clamp(hi - start, lo, count);
            if (lo >= hi) continue;
            first = Math.Min(first, lo);
            end = Math.Max(end, hi);
        }
        Stage(args.Key, b, kvh, start, count, first, end, args.HeadSize, ref staging, out keys, out keyStride);
        Stage(args.Value, b, kvh, start, count, first, end, args.ValueHeadSize, ref staging, out values, out valueStride);
    }

    /// <summary>One tensor of <see cref="StageSlice"/>: fp32 in place, otherwise rows [first, end) widened at <paramref name="next"/>, which then moves past the slice.</summary>
    private static void Stage(in Operand source, int b, int kvh, int start, int count, int first, int end, int columns, ref float* next, out float* rows, out nint stride)
    {
        if (source.IsFloat32)
        {
            rows = source.Floats(b, kvh, start);
            stride = source.RowStride;
            return;
        }
        if (end > first) ElementConversion<TVec, TOps>.WidenRows(source, b, kvh, start + first, end - first, columns, next + (long)first * columns, columns);
        rows = next;
        stride = columns;
        next += (long)count * columns;
    }

    /// <summary>Merges the slices of one (batch, key-value head) in slice order and writes the output rows.</summary>
    public static void Merge(in KernelArguments args, in AttentionPlan plan, float* partials, int pair)
    {
        int b = pair / args.KeyValueHeads, kvh = pair % args.KeyValueHeads;
        int dv = args.ValueHeadSize, group = args.GroupSize, queries = args.QueryCount;
        int rows = group * queries, stride = PartialStride(args);
        float* first = partials + (long)pair * plan.Splits * rows * stride;
        for (int r = 0; r < rows; r++)
        {
            int head = kvh * group + r / queries, query = r % queries;
            float max = float.NegativeInfinity;
            for (int s = 0; s < plan.Splits; s++) max = MathF.Max(max, first[((long)s * rows + r) * stride]);
            float sum = 0f;
            float* merged = first + (long)r * stride + 2; // the first contributing slice's accumulators take the sum
            if (max != float.NegativeInfinity)
            {
                bool any = false;
                for (int s = 0; s < plan.Splits; s++)
                {
                    float* state = first + ((long)s * rows + r) * stride;
                    if (state[1] == 0f) continue; // no visible key in this slice: nothing to add, not even 0·∞
                    float factor = VectorMath.Exp(state[0] - max);
                    sum += state[1] * factor;
                    if (!any)
                    {
                        merged = state + 2;
                        MicroKernels<TVec, TOps>.Scale(merged, merged, dv, factor);
                        any = true;
                    }
                    else
                    {
                        MultiplyAddInto(merged, state + 2, dv, factor);
                    }
                }
            }
            RowOutput<TVec, TOps>.Write(args, b, head, query, merged, max, sum);
        }
    }

    /// <summary>
    /// Softmax numerators of one row over its visible scores s[from..to) in place, its state (m, l) written.
    /// Returns whether the row has any weight to add (false: no visible key, or every visible score −∞).
    /// </summary>
    private static bool RowWeights(float* s, int from, int to, float* state)
    {
        float m = to > from ? RowMax(s + from, to - from) : float.NegativeInfinity;
        if (m == float.NegativeInfinity)
        {
            // Turned into zeros and a log-sum-exp of −∞ at the end, never 0·∞.
            state[0] = float.NegativeInfinity;
            state[1] = 0f;
            return false;
        }
        state[0] = m;
        state[1] = SoftmaxNumerators(s + from, to - from, m);
        return true;
    }

    /// <summary>
    /// s[j] = q · k_j for one row and <paramref name="count"/> keys stored as <typeparamref name="TLoad"/> (widened as
    /// they are read; int8 without its scale, which multiplies each finished score: scales[j]·(q · k_j)): 4 keys per step, four reductions at once. Each key row is read
    /// whole before the next (measured here: walking 4 rows side by side halves the bandwidth the hardware
    /// prefetcher delivers, 9.9 against 22 GB/s), and the rows a few KiB ahead are prefetched as they go (see
    /// <see cref="CacheHints.StreamAheadRows"/> and <see cref="CacheHints.Float32KeyAheadRows"/>). <paramref name="keyStride"/> counts elements.
    /// </summary>
    private static void DotRow<TLoad>(float* query, int d, byte* keys, nint keyStride, int count, float* scores, float* scales = null)
        where TLoad : IElementLoader
    {
        nint rowBytes = keyStride * TLoad.Size;
        nint ahead = (TLoad.Size == 4 ? CacheHints.Float32KeyAheadRows(d * 4) : CacheHints.StreamAheadRows(d * TLoad.Size)) * rowBytes;
        int j = 0;
        for (; j + 4 <= count; j += 4)
        {
            byte* k0 = keys + j * rowBytes;
            if (TLoad.Size == 1)
            {
                // The rows ahead prefetched from inside the tile, a line per row every 64 bytes read: a separate
                // prefetch loop per row cost as many instructions again as the loads it served (int8 dec32k at 1
                // thread on Zen 5, with the scale multiply below: medians 3.6-4.1 -> 3.25-3.46 ms over 5 alternated
                // processes; in-process alternation of the two variants in one build said 3.37 -> 2.31 ms, but such
                // builds also change the code around the old variant, so the figures across builds are the ones to use).
                TVec unused = TOps.Zero;
                DotPartial4<TLoad>(query, k0, rowBytes, d, false, ref unused, out TVec s0, out TVec s1, out TVec s2, out TVec s3, ahead);
                TOps.StoreSums4(s0, s1, s2, s3, scores + j);
            }
            else
            {
                if (TLoad.Size == 4)
                {
                    for (int i = 0; i < 4; i++) CacheHints.PrefetchLines(k0 + i * rowBytes + ahead, d * 4);
                }
                TOps.StoreSums4(DotPartial<TLoad>(query, k0, d), DotPartial<TLoad>(query, k0 + rowBytes, d),
                    DotPartial<TLoad>(query, k0 + 2 * rowBytes, d), DotPartial<TLoad>(query, k0 + 3 * rowBytes, d), scores + j);
            }
            for (int t = d - d % TOps.Count; t < d; t++)
            {
                for (int i = 0; i < 4; i++)
                    scores[j + i] = float.MultiplyAddEstimate(query[t], Element<TLoad>(k0 + i * rowBytes, t), scores[j + i]);
            }
            if (TLoad.FoldsRowScale)
            {
                // The 4 scores times their rows' scales: the same products as one multiply per key.
                (Vector128.Load(scores + j) * Vector128.Load(scales + j)).Store(scores + j);
            }
        }
        for (; j < count; j++)
        {
            byte* key = keys + j * rowBytes;
            float sum = TOps.SumAcross(DotPartial<TLoad>(query, key, d));
            for (int t = d - d % TOps.Count; t < d; t++) sum = float.MultiplyAddEstimate(query[t], Element<TLoad>(key, t), sum);
            scores[j] = TLoad.FoldsRowScale ? sum * scales[j] : sum;
        }
    }

    /// <summary>
    /// <see cref="DotRow{TLoad}"/> for IEEE half keys read as their bits (<see cref="HalfBitsLoader"/>) against a query
    /// that carries 2¹¹², with the check for ±∞ and NaN fused in: the largest magnitude read is tracked, and only a
    /// half with exponent 31 reads as 2⁻⁹⁶ or more. Returns false when some half of the rows is ±∞ or NaN; the scores
    /// written are then not valid and the caller computes them again.
    /// </summary>
    private static bool DotRowHalfBits(float* query, int d, byte* keys, nint keyStride, int count, float* scores)
    {
        nint rowBytes = keyStride * 2;
        int vectorEnd = d - d % TOps.Count, j = 0;
        TVec tracker = TOps.Zero;
        float tail = 0f;
        nint ahead = CacheHints.StreamAheadRows(d * 2) * rowBytes;
        for (; j + 4 <= count; j += 4)
        {
            byte* k0 = keys + j * rowBytes;
            for (int i = 0; i < 4; i++) CacheHints.Prefetch(k0 + i * rowBytes + ahead, d * 2);
            DotPartial4<HalfBitsLoader>(query, k0, rowBytes, d, true, ref tracker, out TVec s0, out TVec s1, out TVec s2, out TVec s3);
            TOps.StoreSums4(s0, s1, s2, s3, scores + j);
            for (int t = vectorEnd; t < d; t++)
            {
                for (int i = 0; i < 4; i++)
                {
                    float x = Element<HalfBitsLoader>(k0 + i * rowBytes, t);
                    tail = MathF.Max(tail, MathF.Abs(x));
                    scores[j + i] = float.MultiplyAddEstimate(query[t], x, scores[j + i]);
                }
            }
        }
        for (; j < count; j++)
        {
            byte* key = keys + j * rowBytes;
            float sum = TOps.SumAcross(DotPartial<HalfBitsLoader>(query, key, d, true, ref tracker));
            for (int t = vectorEnd; t < d; t++)
            {
                float x = Element<HalfBitsLoader>(key, t);
                tail = MathF.Max(tail, MathF.Abs(x));
                sum = float.MultiplyAddEstimate(query[t], x, sum);
            }
            scores[j] = sum;
        }
        return MathF.Max(TOps.MaxAcross(tracker), tail) < HalfBitsLoader.NonFinite;
    }

    /// <summary><see cref="DotRow{TLoad}"/> over <paramref name="count"/> key rows of (b, kvh) from <paramref name="first"/>, in their stored type.</summary>
    [SkipLocalsInit]
    private static void DotRowInPlace(in Operand key, int b, int kvh, int first, float* query, int d, int count, float* scores)
    {
        byte* rows = key.Row(b, kvh, first);
        float* scales = RowScales(key, b, kvh, first);
        switch (key.Type)
        {
            case ElementType.Float32: DotRow<Float32Loader>(query, d, rows, key.RowStride, count, scores); break;
            case ElementType.Float16:
            {
                // Finite chunks read the halves' bits (the value times 2⁻¹¹²) against the query times 2¹¹², which is
                // exact while |q| < 2¹⁶ (the usual case: q is already scaled); the rebias multiply is saved per element.
                float* rebiased = stackalloc float[Math.Min(d, MaxRebiasedQuery)];
                if (d > MaxRebiasedQuery || !Rebias(query, rebiased, d)) rebiased = null;
                if (rebiased != null)
                {
                    // The check for ±∞ and NaN fused into the dot products; a chunk that has one is done again.
                    for (int j = 0; j < count; j += HalfCheckRows)
                    {
                        byte* chunk = rows + j * key.RowStride * 2;
                        int n = Math.Min(HalfCheckRows, count - j);
                        if (!DotRowHalfBits(rebiased, d, chunk, key.RowStride, n, scores + j)) DotRow<HalfLoader>(query, d, chunk, key.RowStride, n, scores + j);
                    }
                    break;
                }
                // A few keys at a time, so that the scan brings them into L1 for the dot products right after it.
                for (int j = 0; j < count; j += HalfScanRows)
                {
                    byte* chunk = rows + j * key.RowStride * 2;
                    int n = Math.Min(HalfScanRows, count - j);
                    if (!ElementConversion<TVec, TOps>.AllHalvesFinite(chunk, key.RowStride, n, d)) DotRow<HalfLoader>(query, d, chunk, key.RowStride, n, scores + j);
                    else DotRow<FiniteHalfLoader>(query, d, chunk, key.RowStride, n, scores + j);
                }
                break;
            }
            case ElementType.BFloat16: DotRow<BFloat16Loader>(query, d, rows, key.RowStride, count, scores); break;
            default:
                // The row's scale times q · k over the exact int8 values: one multiply per key, not per element.
                DotRow<Int8ValueLoader>(query, d, rows, key.RowStride, count, scores, scales);
                break;
        }
    }

    /// <summary>The weighted sum of <paramref name="count"/> value rows of (b, kvh) from <paramref name="first"/>, in their stored type.</summary>
    [SkipLocalsInit]
    private static void AccumulateRowInPlace(in Operand value, int b, int kvh, int first, float* output, int dv, float* weights, int count)
    {
        byte* rows = value.Row(b, kvh, first);
        float* scales = RowScales(value, b, kvh, first);
        switch (value.Type)
        {
            case ElementType.Float32: MicroKernels<TVec, TOps>.AccumulateRow<Float32Loader>(output, dv, weights, rows, value.RowStride, count); break;
            case ElementType.Float16:
            {
                // Value rows a chunk at a time (in key order: the same sums). The weights (at most 1) carry the 2¹¹²
                // and the value rows are read as their bits, checked for ±∞ and NaN in the same pass.
                float* rebiased = stackalloc float[HalfCheckRows];
                for (int j = 0; j < count; j += HalfCheckRows)
                {
                    int n = Math.Min(HalfCheckRows, count - j);
                    TensorPrimitives.Multiply(new ReadOnlySpan<float>(weights + j, n), HalfBitsLoader.Rebias, new Span<float>(rebiased, n));
                    MicroKernels<TVec, TOps>.AccumulateRowHalfBits(output, dv, rebiased, weights + j, rows + j * value.RowStride * 2, value.RowStride, n);
                }
                break;
            }
            case ElementType.BFloat16: MicroKernels<TVec, TOps>.AccumulateRow<BFloat16Loader>(output, dv, weights, rows, value.RowStride, count); break;
            default:
                // Each weight times its row's scale, against the exact int8 values: one multiply per key, not per element.
                MicroKernels<TVec, TOps>.AccumulateRow<Int8ValueLoader>(output, dv, weights, rows, value.RowStride, count, scales);
                break;
        }
    }

    // Half rows scanned for ±∞/NaN at a time before they are used: few enough to stay in L1 in between.
    private const int HalfScanRows = 16;

    // Half rows read at a time with the ±∞/NaN check fused in: a chunk that has one is read again, widened with the fix-up.
    private const int HalfCheckRows = 64;

    // Head sizes up to which DotRowInPlace keeps a rebiased copy of the query row on the stack.
    private const int MaxRebiasedQuery = 1024;

    /// <summary>
    /// destination = source · 2¹¹², exactly, when every |source| &lt; 2¹⁶ (so nothing overflows); false otherwise
    /// (also for NaN), and the caller keeps the plain path.
    /// </summary>
    private static bool Rebias(float* source, float* destination, int count)
    {
        for (int i = 0; i < count; i++)
        {
            if (!(MathF.Abs(source[i]) < 65536f)) return false;
            destination[i] = source[i] * HalfBitsLoader.Rebias;
        }
        return true;
    }

    /// <summary>The int8 scales of rows first.. of (b, h), or null for the other types.</summary>
    private static float* RowScales(in Operand tensor, int b, int h, int first) =>
        tensor.Scales == null ? null : tensor.Scales + b * tensor.ScaleBatchStride + h * tensor.ScaleHeadStride + first;

    /// <summary>Lane-wise partial sums of q · k over the whole vectors of a row (the scalar tail is left to the caller).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVec DotPartial<TLoad>(float* query, byte* key, int d) where TLoad : IElementLoader
    {
        TVec unused = TOps.Zero;
        return DotPartial<TLoad>(query, key, d, false, ref unused);
    }

    /// <summary>
    /// <see cref="DotPartial{TLoad}(float*, byte*, int)"/>, and with <paramref name="track"/> the largest magnitude
    /// read folded into <paramref name="tracker"/> (half bits: see <see cref="DotRowHalfBits"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVec DotPartial<TLoad>(float* query, byte* key, int d, bool track, ref TVec tracker) where TLoad : IElementLoader
    {
        int w = TOps.Count, t = 0, size = TLoad.Size;
        TVec a = TOps.Zero, b = TOps.Zero, even = tracker, odd = TOps.Zero;
        for (; t + 2 * w <= d; t += 2 * w)
            StepPair<TLoad>(TOps.Load(query + t), TOps.Load(query + t + w), key + t * size, ref a, ref b, track, ref even, ref odd);
        if (t + w <= d) Step<TLoad>(TOps.Load(query + t), key + t * size, ref a, track, ref even);
        if (track) tracker = TOps.Max(even, odd);
        return TOps.Add(a, b);
    }

    /// <summary>
    /// <see cref="DotPartial{TLoad}(float*, byte*, int)"/> of 4 consecutive key rows at once, each query vector loaded once for the 4: the
    /// same per-row sums in the same order. For rows of one or two bytes per element, whose 4 rows lie in a few cache
    /// lines (4 fp32 rows walked side by side slow the prefetcher: see <see cref="DotRow{TLoad}"/>). With
    /// <paramref name="track"/>, the largest magnitude read is folded into <paramref name="tracker"/> (half bits: see
    /// <see cref="DotRowHalfBits"/>). A nonzero <paramref name="prefetchAhead"/> (bytes) prefetches each row that far on,
    /// a line per row every 64 bytes read.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void DotPartial4<TLoad>(float* query, byte* k0, nint rowBytes, int d, bool track, ref TVec tracker,
        out TVec s0, out TVec s1, out TVec s2, out TVec s3, nint prefetchAhead = 0)
        where TLoad : IElementLoader
    {
        int w = TOps.Count, t = 0, size = TLoad.Size;
        byte* k1 = k0 + rowBytes, k2 = k1 + rowBytes, k3 = k2 + rowBytes;
        TVec a0 = TOps.Zero, b0 = TOps.Zero, a1 = TOps.Zero, b1 = TOps.Zero, a2 = TOps.Zero, b2 = TOps.Zero, a3 = TOps.Zero, b3 = TOps.Zero;
        TVec even = tracker, odd = TOps.Zero;
        if (typeof(TLoad) == typeof(Int8ValueLoader))
        {
            // int8 rows 4·Count bytes at a time, one vector-wide load each (a 64-byte line per load at 512 bits, not
            // four 16-byte loads), with the same in the value pass: dec32k int8 at 1 thread, 3 processes per build,
            // 0.34-0.35 -> 0.33 of the fp32 time (4-9 % faster in-process, see DotRow on such figures). The same
            // sums: even vectors into the first accumulator, odd into the second.
            for (; t + 4 * w <= d; t += 4 * w)
            {
                if (prefetchAhead != 0 && ((t * size) & 63) == 0) CacheHints.PrefetchLine4(k0 + t * size + prefetchAhead, rowBytes);
                TVec q0 = TOps.Load(query + t), q1 = TOps.Load(query + t + w), q2 = TOps.Load(query + t + 2 * w), q3 = TOps.Load(query + t + 3 * w);
                Int8Quad(q0, q1, q2, q3, k0 + t, ref a0, ref b0);
                Int8Quad(q0, q1, q2, q3, k1 + t, ref a1, ref b1);
                Int8Quad(q0, q1, q2, q3, k2 + t, ref a2, ref b2);
                Int8Quad(q0, q1, q2, q3, k3 + t, ref a3, ref b3);
            }
        }
        for (; t + 2 * w <= d; t += 2 * w)
        {
            if (prefetchAhead != 0 && ((t * size) & 63) == 0) CacheHints.PrefetchLine4(k0 + t * size + prefetchAhead, rowBytes);
            TVec q = TOps.Load(query + t), r = TOps.Load(query + t + w);
            StepPair<TLoad>(q, r, k0 + t * size, ref a0, ref b0, track, ref even, ref odd); StepPair<TLoad>(q, r, k1 + t * size, ref a1, ref b1, track, ref even, ref odd);
            StepPair<TLoad>(q, r, k2 + t * size, ref a2, ref b2, track, ref even, ref odd); StepPair<TLoad>(q, r, k3 + t * size, ref a3, ref b3, track, ref even, ref odd);
        }
        if (t + w <= d)
        {
            TVec q = TOps.Load(query + t);
            Step<TLoad>(q, k0 + t * size, ref a0, track, ref even); Step<TLoad>(q, k1 + t * size, ref a1, track, ref even);
            Step<TLoad>(q, k2 + t * size, ref a2, track, ref even); Step<TLoad>(q, k3 + t * size, ref a3, track, ref even);
        }
        if (track) tracker = TOps.Max(even, odd);
        s0 = TOps.Add(a0, b0); s1 = TOps.Add(a1, b1); s2 = TOps.Add(a2, b2); s3 = TOps.Add(a3, b3);
    }

    /// <summary>
    /// 4·Count int8 values of a row (one <see cref="IVectorOps{TVec}.LoadInt8Block"/>, or a load per quarter: see
    /// <see cref="IVectorOps{TVec}.ReadsInt8InBlocks"/>) against q0..q3: the first and third quarters into
    /// <paramref name="even"/>, the second and fourth into <paramref name="odd"/>, in that order.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Int8Quad(TVec q0, TVec q1, TVec q2, TVec q3, byte* key, ref TVec even, ref TVec odd)
    {
        if (!TOps.ReadsInt8InBlocks)
        {
            even = TOps.MultiplyAdd(q0, TOps.LoadInt8((sbyte*)key), even);
            odd = TOps.MultiplyAdd(q1, TOps.LoadInt8((sbyte*)key + TOps.Count), odd);
            even = TOps.MultiplyAdd(q2, TOps.LoadInt8((sbyte*)key + 2 * TOps.Count), even);
            odd = TOps.MultiplyAdd(q3, TOps.LoadInt8((sbyte*)key + 3 * TOps.Count), odd);
            return;
        }
        TVec block = TOps.LoadInt8Block((sbyte*)key);
        even = TOps.MultiplyAdd(q0, TOps.Int8Part(block, 0), even);
        odd = TOps.MultiplyAdd(q1, TOps.Int8Part(block, 1), odd);
        even = TOps.MultiplyAdd(q2, TOps.Int8Part(block, 2), even);
        odd = TOps.MultiplyAdd(q3, TOps.Int8Part(block, 3), odd);
    }

    /// <summary>sum += q · (one vector of a stored row), and the magnitudes read folded into <paramref name="tracker"/> when <paramref name="track"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step<TLoad>(TVec q, byte* key, ref TVec sum, bool track, ref TVec tracker) where TLoad : IElementLoader
    {
        TVec x = TLoad.Load<TVec, TOps>(key, TOps.Zero);
        sum = TOps.MultiplyAdd(q, x, sum);
        if (track) tracker = TOps.MaxMagnitude(tracker, x);
    }

    /// <summary>
    /// <see cref="Step{TLoad}"/> over two adjacent vectors of a stored row (<see cref="LoadPair{TLoad}"/>):
    /// <paramref name="q"/> against the first into <paramref name="sumLow"/>, <paramref name="r"/> against the second
    /// into <paramref name="sumHigh"/>; the magnitudes into <paramref name="trackLow"/> and <paramref name="trackHigh"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StepPair<TLoad>(TVec q, TVec r, byte* key, ref TVec sumLow, ref TVec sumHigh, bool track, ref TVec trackLow, ref TVec trackHigh)
        where TLoad : IElementLoader
    {
        if (TLoad.Size != 2 && !track)
        {
            // In a method of its own: with the loads below in the same body (LoadPair's out parameters), the JIT kept
            // every loaded vector in a stack slot, a store and a reload per vector (fp32 and int8 rows).
            StepPairDirect<TLoad>(q, r, key, ref sumLow, ref sumHigh);
            return;
        }
        LoadPair<TLoad>(key, out TVec x, out TVec y);
        sumLow = TOps.MultiplyAdd(q, x, sumLow);
        sumHigh = TOps.MultiplyAdd(r, y, sumHigh);
        if (track)
        {
            trackLow = TOps.MaxMagnitude(trackLow, x);
            trackHigh = TOps.MaxMagnitude(trackHigh, y);
        }
    }

    /// <summary><see cref="StepPair{TLoad}"/> without tracking, for rows loaded a vector at a time: no locals in between.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StepPairDirect<TLoad>(TVec q, TVec r, byte* key, ref TVec sumLow, ref TVec sumHigh) where TLoad : IElementLoader
    {
        sumLow = TOps.MultiplyAdd(q, TLoad.Load<TVec, TOps>(key, TOps.Zero), sumLow);
        sumHigh = TOps.MultiplyAdd(r, TLoad.Load<TVec, TOps>(key + TOps.Count * TLoad.Size, TOps.Zero), sumHigh);
    }

    /// <summary>
    /// Two adjacent vectors of a stored row, at <paramref name="source"/> and Count elements on, as
    /// <typeparamref name="TLoad"/> loads them one by one; 16-bit rows in one load of both. Keys streamed from memory
    /// read faster so where vectors are 512 bits wide (one 64-byte load per line, as fp32 rows get from LoadStreamed:
    /// dec32k with Half keys and values, medians of 15 interleaved runs, 5.80 -> 5.45 ms at 1 thread, Zen 5) at the
    /// cost of one more shuffle per pair (with K and V in L3, up to 5 % slower). Value rows read the same way gained
    /// nothing measurable, so AccumulateRowHalfBits keeps two loads.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void LoadPair<TLoad>(byte* source, out TVec low, out TVec high) where TLoad : IElementLoader
    {
        if (TLoad.Size == 2)
        {
            TOps.LoadInt16BitsPair((short*)source, out TVec lowBits, out TVec highBits);
            low = TLoad.FromInt16Bits<TVec, TOps>(lowBits);
            high = TLoad.FromInt16Bits<TVec, TOps>(highBits);
        }
        else
        {
            low = TLoad.Load<TVec, TOps>(source, TOps.Zero);
            high = TLoad.Load<TVec, TOps>(source + TOps.Count * TLoad.Size, TOps.Zero);
        }
    }

    /// <summary>Element t of a stored row, widened.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Element<TLoad>(byte* row, int t) where TLoad : IElementLoader =>
        TLoad.Load<float, ScalarOps>(row + t * TLoad.Size, 1f);

    /// <summary>
    /// s[r, j] = q_r · k_j for 4 rows and <paramref name="count"/> keys, straight from the key rows: 4 × 4 register
    /// blocks, the rest one key at a time. Keys streamed from memory go a chunk at a time, the next chunk's rows
    /// prefetched while this one is computed from L1 (measured on Zen 5, dec4k: 1.18 ms → 0.88 ms against walking
    /// each key row whole for two rows at a time, twice). The prefetches are spread through the blocks, one per line
    /// read, not issued as a burst before the chunk: a burst of 128 fills the core's miss buffers and stalls it
    /// (perf: 31 % of dec4k's samples on the prefetch loops); spread, dec4k at 1 thread went 1.6 → 1.0 ms and at 2
    /// threads 0.89 → 0.73 ms (medians of 5-11 runs alternated, Zen 5). One and two chunks ahead measured alike.
    /// Where the CPU has 32 vector registers and a key row is 4 or 8 vectors (head size 64 or 128 at 16 lanes), streamed
    /// keys take <see cref="DotRowPair{TEight}"/> instead, rows 0-1 and then rows 2-3 on each 4 keys (8 vectors) or on
    /// each chunk (4 vectors: on each 4 keys there, 1-2 % slower at 8192 keys of head size 64), without software
    /// prefetch: on Zen 4 the 4 × 4 block's side-by-side walk of 4 rows left the loads waiting on memory, and prefetching
    /// made every variant tried slower (see DotRowPair). That path has not been measured on Zen 5.
    /// </summary>
    private static void DotScores(float* query, int d, float* keys, nint keyStride, int count, float* scores, int scoreStride)
    {
        int j = 0;
        if ((long)count * d > CachedKeyFloats && d == 8 * TOps.Count && StreamsWholeKeyRows(d))
        {
            // Per 4 keys, rows 0-1 (each key row read whole in address order, from memory) and then rows 2-3 (the
            // same 4 rows again, from L1).
            for (; j + 4 <= count; j += 4)
            {
                float* k = keys + j * keyStride, s = scores + j;
                DotRowPair<Yes>(query, query + d, k, keyStride, s, s + scoreStride);
                DotRowPair<Yes>(query + 2 * d, query + 3 * d, k, keyStride, s + 2 * scoreStride, s + 3 * scoreStride);
            }
        }
        else if ((long)count * d > CachedKeyFloats && StreamsWholeKeyRows(d))
        {
            // Rows of 4 vectors: rows 0-1 against the chunk's keys, each key row read whole in address order, then
            // rows 2-3 from L1.
            int chunk = StreamChunk(d);
            for (; j + chunk <= count; j += chunk)
            {
                for (int r = 0; r < Rows; r += 2)
                {
                    for (int x = j; x < j + chunk; x += 4)
                    {
                        float* q = query + r * d;
                        DotRowPair<No>(q, q + d, keys + x * keyStride, keyStride, scores + r * scoreStride + x, scores + (r + 1) * scoreStride + x);
                    }
                }
            }
        }
        else if ((long)count * d > CachedKeyFloats)
        {
            int chunk = StreamChunk(d);
            for (; j + chunk <= count; j += chunk)
            {
                nint ahead = j + 2 * chunk <= count ? chunk * keyStride : 0; // the next chunk's rows, as long as there is one
                for (int x = j; x < j + chunk; x += 4) DotBlock<Float32Loader>(query, d, (byte*)(keys + x * keyStride), keyStride * sizeof(float), scores + x, scoreStride, ahead * sizeof(float));
            }
        }
        for (; j + 4 <= count; j += 4) DotBlock<Float32Loader>(query, d, (byte*)(keys + j * keyStride), keyStride * sizeof(float), scores + j, scoreStride);
        for (; j < count; j++) DotColumn(query, d, keys + j * keyStride, scores + j, scoreStride);
    }

    /// <summary>
    /// Keys per chunk of the 4-row paths over streamed rows of <paramref name="columns"/> floats, which is also the
    /// prefetch distance: about 8 KiB, whole blocks of 4 (at 128 floats, 8 and 12 keys measured the same as 16,
    /// 32 and 64 slower, as was prefetching two chunks ahead).
    /// </summary>
    private static int StreamChunk(int columns) => Math.Max(4, 2048 / columns / 4 * 4);

    // Keys × head size below which a slice's keys are taken to be cache-resident (16 KiB of floats: half an L1).
    private const int CachedKeyFloats = 4096;

    /// <summary>
    /// The 4 rows × 4 keys block: per step, one vector of each of the 4 key rows and of each of the 4 query rows,
    /// 16 FMAs into 16 accumulators, then the four lane reductions of a row at once. <paramref name="k0"/> is the first
    /// of 4 key rows <paramref name="rowBytes"/> apart, stored as <typeparamref name="TLoad"/>: fp32, IEEE half bits
    /// (<see cref="HalfBitsLoader"/>, against query rows that carry 2¹¹², finite rows whose head size is whole vectors),
    /// or int8 (<see cref="Int8Loader"/>, each row times its scale in <paramref name="rowScales"/>, whole vectors too).
    /// A nonzero <paramref name="prefetchAhead"/> (bytes) prefetches a line of each row that far on per 64 bytes read.
    /// </summary>
    private static void DotBlock<TLoad>(float* query, int d, byte* k0, nint rowBytes, float* scores, int scoreStride, nint prefetchAhead = 0, float* rowScales = null)
        where TLoad : IElementLoader
    {
        Debug.Assert(typeof(TLoad) == typeof(Float32Loader) || (d % TOps.Count == 0 && (typeof(TLoad) == typeof(HalfBitsLoader) || (typeof(TLoad) == typeof(Int8Loader) && rowScales != null))));
        int w = TOps.Count, vectorEnd = d - d % w, size = TLoad.Size;
        // int8 rows: each row's scale multiplies its widened values, as the widened copy has them.
        TVec c0 = TOps.Zero, c1 = TOps.Zero, c2 = TOps.Zero, c3 = TOps.Zero;
        if (typeof(TLoad) == typeof(Int8Loader)) (c0, c1, c2, c3) = (TOps.Create(rowScales[0]), TOps.Create(rowScales[1]), TOps.Create(rowScales[2]), TOps.Create(rowScales[3]));
        float* q0 = query, q1 = query + d, q2 = query + 2 * d, q3 = query + 3 * d;
        byte* k1 = k0 + rowBytes, k2 = k1 + rowBytes, k3 = k2 + rowBytes;
        TVec a00 = TOps.Zero, a01 = TOps.Zero, a02 = TOps.Zero, a03 = TOps.Zero;
        TVec a10 = TOps.Zero, a11 = TOps.Zero, a12 = TOps.Zero, a13 = TOps.Zero;
        TVec a20 = TOps.Zero, a21 = TOps.Zero, a22 = TOps.Zero, a23 = TOps.Zero;
        TVec a30 = TOps.Zero, a31 = TOps.Zero, a32 = TOps.Zero, a33 = TOps.Zero;
        for (int t = 0; t < vectorEnd; t += w)
        {
            if (prefetchAhead != 0 && ((t * size) & 63) == 0) CacheHints.PrefetchLine4(k0 + t * size + prefetchAhead, rowBytes); // a line of each key row
            TVec x0 = KeyVector<TLoad>(k0 + t * size, c0), x1 = KeyVector<TLoad>(k1 + t * size, c1), x2 = KeyVector<TLoad>(k2 + t * size, c2), x3 = KeyVector<TLoad>(k3 + t * size, c3);
            TVec q = TOps.Load(q0 + t);
            a00 = TOps.MultiplyAdd(q, x0, a00); a01 = TOps.MultiplyAdd(q, x1, a01); a02 = TOps.MultiplyAdd(q, x2, a02); a03 = TOps.MultiplyAdd(q, x3, a03);
            q = TOps.Load(q1 + t);
            a10 = TOps.MultiplyAdd(q, x0, a10); a11 = TOps.MultiplyAdd(q, x1, a11); a12 = TOps.MultiplyAdd(q, x2, a12); a13 = TOps.MultiplyAdd(q, x3, a13);
            q = TOps.Load(q2 + t);
            a20 = TOps.MultiplyAdd(q, x0, a20); a21 = TOps.MultiplyAdd(q, x1, a21); a22 = TOps.MultiplyAdd(q, x2, a22); a23 = TOps.MultiplyAdd(q, x3, a23);
            q = TOps.Load(q3 + t);
            a30 = TOps.MultiplyAdd(q, x0, a30); a31 = TOps.MultiplyAdd(q, x1, a31); a32 = TOps.MultiplyAdd(q, x2, a32); a33 = TOps.MultiplyAdd(q, x3, a33);
        }
        StoreBlock(query, d, (float*)k0, rowBytes / sizeof(float), vectorEnd, scores, scoreStride, // a tail only for fp32 rows
            a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33);
    }

    /// <summary>
    /// Whether <see cref="DotScores"/> streams key rows of <paramref name="d"/> floats through <see cref="DotRowPair{TEight}"/>:
    /// rows of 4 or 8 vectors where the CPU has 32 vector registers (head size 64 or 128 at 16 lanes).
    /// </summary>
    private static bool StreamsWholeKeyRows(int d) => Avx512F.IsSupported && (d == 8 * TOps.Count || d == 4 * TOps.Count);

    /// <summary>
    /// Two query rows, held in registers (8 vectors each with <typeparamref name="TEight"/>, else 4), against 4 key rows
    /// <paramref name="keyStride"/> floats apart, each key row read whole and in address order: a load per 2 FMAs, the
    /// same sums in the same order as <see cref="DotBlock{TLoad}"/> (lane-wise partial sums over the head size, then
    /// StoreSums4), which reads a vector of each of its 4 rows in turn. Over rows streamed from memory that side-by-side
    /// walk left Zen 4's prefetchers behind: dec4k at 1 thread took 3 times dec4kH8's time, the samples on the key and
    /// value loads; with this and <see cref="MicroKernels{TVec, TOps}.AccumulateStreamed"/>, 0.47× the time (both builds
    /// in one process). Software prefetch 2 to 32 KiB ahead, into L1 or L2, issued in the pass that reads memory or in
    /// the one that reads L1, measured 3-28 % slower (again with the pairs taken on each 4 keys, as below, 1 and 2 KiB
    /// ahead: 11 and 4.5 % slower). The second pair 16 keys behind the first measured no better than the two pairs one
    /// after the other over a 16-key chunk; the two pairs one after the other on each 4 keys (rows 2-3 read the 4 key rows
    /// the first pair has just brought in) up to 5 % faster than that, for rows of 8 vectors (Zen 4, both builds in one
    /// process, listed first in turn: dec4k at 1 thread 0.95-0.97×, 2 threads 0.98×; 32768 keys, K and V from memory,
    /// 0.97× at 1 thread, 0.98-1.0× at 2; later, with the host's L3 contended and dec4k 10-25 % slower for both,
    /// 0.99-1.01×). For int8 and Half rows the 4 × 4 block stays: each key vector is widened once for 4 rows there, twice
    /// here (measured this way: int8 1.21× the time, Half 0.93-1.01×).
    /// </summary>
    private static void DotRowPair<TEight>(float* q0, float* q1, float* k0, nint keyStride, float* s0, float* s1) where TEight : struct, IFlag
    {
        int w = TOps.Count;
        bool eight = TEight.On;
        TVec a0 = TOps.Load(q0), a1 = TOps.Load(q0 + w), a2 = TOps.Load(q0 + 2 * w), a3 = TOps.Load(q0 + 3 * w);
        TVec b0 = TOps.Load(q1), b1 = TOps.Load(q1 + w), b2 = TOps.Load(q1 + 2 * w), b3 = TOps.Load(q1 + 3 * w);
        TVec a4 = eight ? TOps.Load(q0 + 4 * w) : default, a5 = eight ? TOps.Load(q0 + 5 * w) : default;
        TVec a6 = eight ? TOps.Load(q0 + 6 * w) : default, a7 = eight ? TOps.Load(q0 + 7 * w) : default;
        TVec b4 = eight ? TOps.Load(q1 + 4 * w) : default, b5 = eight ? TOps.Load(q1 + 5 * w) : default;
        TVec b6 = eight ? TOps.Load(q1 + 6 * w) : default, b7 = eight ? TOps.Load(q1 + 7 * w) : default;
        KeyAgainstPair<TEight>(k0, a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7, out TVec x0, out TVec y0);
        KeyAgainstPair<TEight>(k0 + keyStride, a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7, out TVec x1, out TVec y1);
        KeyAgainstPair<TEight>(k0 + 2 * keyStride, a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7, out TVec x2, out TVec y2);
        KeyAgainstPair<TEight>(k0 + 3 * keyStride, a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7, out TVec x3, out TVec y3);
        TOps.StoreSums4(x0, x1, x2, x3, s0);
        TOps.StoreSums4(y0, y1, y2, y3, s1);
    }

    /// <summary>Lane-wise partial sums of one key row of 8 vectors (4 without <typeparamref name="TEight"/>) against two query rows held in registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void KeyAgainstPair<TEight>(float* k, TVec a0, TVec a1, TVec a2, TVec a3, TVec a4, TVec a5, TVec a6, TVec a7,
        TVec b0, TVec b1, TVec b2, TVec b3, TVec b4, TVec b5, TVec b6, TVec b7, out TVec x, out TVec y) where TEight : struct, IFlag
    {
        int w = TOps.Count;
        TVec v = TOps.Load(k);
        x = TOps.MultiplyAdd(a0, v, TOps.Zero); y = TOps.MultiplyAdd(b0, v, TOps.Zero);
        v = TOps.Load(k + w); x = TOps.MultiplyAdd(a1, v, x); y = TOps.MultiplyAdd(b1, v, y);
        v = TOps.Load(k + 2 * w); x = TOps.MultiplyAdd(a2, v, x); y = TOps.MultiplyAdd(b2, v, y);
        v = TOps.Load(k + 3 * w); x = TOps.MultiplyAdd(a3, v, x); y = TOps.MultiplyAdd(b3, v, y);
        if (!TEight.On) return;
        v = TOps.Load(k + 4 * w); x = TOps.MultiplyAdd(a4, v, x); y = TOps.MultiplyAdd(b4, v, y);
        v = TOps.Load(k + 5 * w); x = TOps.MultiplyAdd(a5, v, x); y = TOps.MultiplyAdd(b5, v, y);
        v = TOps.Load(k + 6 * w); x = TOps.MultiplyAdd(a6, v, x); y = TOps.MultiplyAdd(b6, v, y);
        v = TOps.Load(k + 7 * w); x = TOps.MultiplyAdd(a7, v, x); y = TOps.MultiplyAdd(b7, v, y);
    }

    /// <summary>One vector of a key row for <see cref="DotBlock{TLoad}"/>: fp32 in one load, half bits or int8 (times <paramref name="scale"/>) widened.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVec KeyVector<TLoad>(byte* source, TVec scale) where TLoad : IElementLoader =>
        typeof(TLoad) == typeof(Float32Loader) ? TOps.Load((float*)source) : TLoad.Load<TVec, TOps>(source, scale);

    /// <summary>The four lane reductions of each row of a 4 × 4 block, then the scalar tail of the head size.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreBlock(float* query, int d, float* k0, nint keyStride, int vectorEnd, float* scores, int scoreStride,
        TVec a00, TVec a01, TVec a02, TVec a03, TVec a10, TVec a11, TVec a12, TVec a13,
        TVec a20, TVec a21, TVec a22, TVec a23, TVec a30, TVec a31, TVec a32, TVec a33)
    {
        TOps.StoreSums4(a00, a01, a02, a03, scores);
        TOps.StoreSums4(a10, a11, a12, a13, scores + scoreStride);
        TOps.StoreSums4(a20, a21, a22, a23, scores + 2 * scoreStride);
        TOps.StoreSums4(a30, a31, a32, a33, scores + 3 * scoreStride);
        if (vectorEnd == d) return;
        for (int r = 0; r < 4; r++)
        {
            float* q = query + r * d, s = scores + r * scoreStride;
            for (int t = vectorEnd; t < d; t++)
            {
                for (int i = 0; i < 4; i++) s[i] = float.MultiplyAddEstimate(q[t], k0[i * keyStride + t], s[i]);
            }
        }
    }

    /// <summary>Lane-wise partial sums of one key row against 4 query rows, over the whole vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void KeyAgainstRows(float* q0, float* q1, float* q2, float* q3, float* k, int vectorEnd,
        out TVec a0, out TVec a1, out TVec a2, out TVec a3)
    {
        a0 = TOps.Zero; a1 = TOps.Zero; a2 = TOps.Zero; a3 = TOps.Zero;
        for (int t = 0; t < vectorEnd; t += TOps.Count)
        {
            TVec x = TOps.LoadStreamed(k + t);
            a0 = TOps.MultiplyAdd(TOps.Load(q0 + t), x, a0);
            a1 = TOps.MultiplyAdd(TOps.Load(q1 + t), x, a1);
            a2 = TOps.MultiplyAdd(TOps.Load(q2 + t), x, a2);
            a3 = TOps.MultiplyAdd(TOps.Load(q3 + t), x, a3);
        }
    }

    /// <summary>One key against 4 rows.</summary>
    private static void DotColumn(float* query, int d, float* k, float* scores, int scoreStride)
    {
        int w = TOps.Count, vectorEnd = d - d % w;
        float* q0 = query, q1 = query + d, q2 = query + 2 * d, q3 = query + 3 * d;
        KeyAgainstRows(q0, q1, q2, q3, k, vectorEnd, out TVec a0, out TVec a1, out TVec a2, out TVec a3);
        float r0 = TOps.SumAcross(a0), r1 = TOps.SumAcross(a1), r2 = TOps.SumAcross(a2), r3 = TOps.SumAcross(a3);
        for (int t = vectorEnd; t < d; t++)
        {
            r0 = float.MultiplyAddEstimate(q0[t], k[t], r0);
            r1 = float.MultiplyAddEstimate(q1[t], k[t], r1);
            r2 = float.MultiplyAddEstimate(q2[t], k[t], r2);
            r3 = float.MultiplyAddEstimate(q3[t], k[t], r3);
        }
        scores[0] = r0;
        scores[scoreStride] = r1;
        scores[2 * scoreStride] = r2;
        scores[3 * scoreStride] = r3;
    }

    /// <summary>
    /// The maximum of s[0..count), −∞ for none; a NaN score may or may not win, it reaches the output either way.
    /// Reads whole vectors: the row's storage extends to a multiple of the lane count, and lanes past
    /// <paramref name="count"/> are replaced by −∞ before they count.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float RowMax(float* s, int count)
    {
        int w = TOps.Count, j = 0;
        TVec minusInfinity = TOps.Create(float.NegativeInfinity), max = minusInfinity;
        for (; j + w <= count; j += w) max = TOps.Max(max, TOps.Load(s + j));
        if (j < count) max = TOps.Max(max, TOps.SelectFirst(count - j, TOps.Load(s + j), minusInfinity));
        return TOps.MaxAcross(max);
    }

    /// <summary>
    /// s[j] ← e^(s[j] − m) over <paramref name="count"/> entries, zeros up to the next multiple of the lane count;
    /// returns their sum. Not inlined: inside the large Slice method the JIT's inlining budget would run out before
    /// the exp's own vector operations are inlined (measured: MultiplyAdd left as a call).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float SoftmaxNumerators(float* s, int count, float m)
    {
        int w = TOps.Count, j = 0;
        TVec mv = TOps.Create(m), sum = TOps.Zero;
        for (; j + w <= count; j += w)
        {
            TVec p = VectorMath.ExpBelowOverflow<TVec, TOps>(TOps.Subtract(TOps.Load(s + j), mv));
            TOps.Store(p, s + j);
            sum = TOps.Add(sum, p);
        }
        if (j < count)
        {
            // The tail as one vector: lanes past the end (whatever the scratch held) become exact zeros.
            TVec p = TOps.SelectFirst(count - j, VectorMath.ExpBelowOverflow<TVec, TOps>(TOps.Subtract(TOps.Load(s + j), mv)), TOps.Zero);
            TOps.Store(p, s + j);
            sum = TOps.Add(sum, p);
        }
        return TOps.SumAcross(sum);
    }

    private static void MultiplyAddInto(float* destination, float* source, int count, float factor)
    {
        int w = TOps.Count;
        TVec f = TOps.Create(factor);
        int c = 0;
        for (; c + w <= count; c += w) TOps.Store(TOps.MultiplyAdd(TOps.Load(source + c), f, TOps.Load(destination + c)), destination + c);
        for (; c < count; c++) destination[c] = float.MultiplyAddEstimate(source[c], factor, destination[c]);
    }
}
