using System.Runtime.CompilerServices;
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

        fixed (float* queryScratch = workspace.Get(0, paddedRows * d))
        fixed (float* accumulators = workspace.Get(1, paddedRows * dv))
        fixed (float* scores = workspace.Get(2, paddedRows * sliceStride))
        fixed (float* rowStates = workspace.Get(3, 2 * rows))
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
                    float* source = args.Query + b * args.QueryBatchStride + (kvh * group + r / queries) * args.QueryHeadStride + (r % queries) * args.QueryRowStride;
                    MicroKernels<TVec, TOps>.Scale(source, destination, d, args.Scale);
                }
                else
                {
                    new Span<float>(destination, d).Clear();
                }
            }
            new Span<float>(accumulators, paddedRows * dv).Clear();

            float* keys = args.Key + b * args.KeyBatchStride + kvh * args.KeyHeadStride + start * args.KeyRowStride;
            float* values = args.Value + b * args.ValueBatchStride + kvh * args.ValueHeadStride + start * args.ValueRowStride;
            Span<int> visible = stackalloc int[Rows];
            for (int r0 = 0; r0 < paddedRows; r0 += Rows)
            {
                // Which keys of this slice each row sees: [0, visible) (causal masks only cut the end).
                int real = Math.Min(Rows, rows - r0);
                int commonVisible = count, maxVisible = 0;
                for (int r = 0; r < Rows; r++)
                {
                    if (r < real)
                    {
                        args.VisibleKeys((r0 + r) % queries, out _, out int hi);
                        visible[r] = Math.Clamp(hi - start, 0, count);
                        commonVisible = Math.Min(commonVisible, visible[r]);
                        maxVisible = Math.Max(maxVisible, visible[r]);
                    }
                    else
                    {
                        visible[r] = 0;
                    }
                }

                float* s0 = scores + r0 * sliceStride;
                DotScores(queryScratch + r0 * d, d, keys, args.KeyRowStride, maxVisible, s0, sliceStride);
                for (int r = 0; r < Rows; r++)
                {
                    float* s = s0 + r * sliceStride;
                    if (r >= real)
                    {
                        new Span<float>(s, maxVisible).Clear();
                        continue;
                    }
                    float* state = partial + (r0 + r) * stride;
                    if (visible[r] == 0)
                    {
                        state[0] = float.NegativeInfinity;
                        state[1] = 0f;
                        continue;
                    }
                    float m = RowMax(s, visible[r]);
                    // Fully −∞ rows keep m = −∞ and are turned into zeros at the merge.
                    float sum = 0f;
                    if (m != float.NegativeInfinity)
                    {
                        sum = SoftmaxNumerators(s, visible[r], m);
                        new Span<float>(s + visible[r], maxVisible - visible[r]).Clear();
                    }
                    else
                    {
                        new Span<float>(s, maxVisible).Clear();
                    }
                    state[0] = m;
                    state[1] = sum;
                }

                if (commonVisible > 0)
                    MicroKernels<TVec, TOps>.Accumulate(accumulators + r0 * dv, dv, s0, sliceStride, values, args.ValueRowStride, commonVisible);
                for (int r = 0; r < real; r++)
                {
                    if (visible[r] > commonVisible)
                        MicroKernels<TVec, TOps>.AccumulateRow(accumulators + (r0 + r) * dv, dv, s0 + r * sliceStride + commonVisible,
                            values + commonVisible * args.ValueRowStride, args.ValueRowStride, visible[r] - commonVisible);
                }
            }

            if (plan.Splits == 1)
            {
                // One slice holds every key: its state is final, normalise straight into the output.
                for (int r = 0; r < rows; r++)
                    WriteRow(args, b, kvh * group + r / queries, r % queries, accumulators + r * dv, partial[r * stride], partial[r * stride + 1]);
                return;
            }
            for (int r = 0; r < rows; r++)
                new Span<float>(accumulators + r * dv, dv).CopyTo(new Span<float>(partial + r * stride + 2, dv));
        }
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
            float* output = args.Output + b * args.OutputBatchStride + head * args.OutputHeadStride + query * args.OutputRowStride;
            float max = float.NegativeInfinity;
            for (int s = 0; s < plan.Splits; s++) max = MathF.Max(max, first[((long)s * rows + r) * stride]);
            float sum = 0f;
            new Span<float>(output, dv).Clear();
            if (max != float.NegativeInfinity)
            {
                for (int s = 0; s < plan.Splits; s++)
                {
                    float* state = first + ((long)s * rows + r) * stride;
                    if (state[1] == 0f) continue; // no visible key in this slice: nothing to add, not even 0·∞
                    float factor = VectorMath.Exp(state[0] - max);
                    sum += state[1] * factor;
                    MultiplyAddInto(output, state + 2, dv, factor);
                }
            }
            WriteRow(args, b, head, query, output, max, sum);
        }
    }

    /// <summary>
    /// Output row ← accumulated / l (zeros when no key was visible), log-sum-exp ← m + ln l (−∞ then).
    /// <paramref name="accumulated"/> may be the output row itself.
    /// </summary>
    private static void WriteRow(in KernelArguments args, int b, int head, int query, float* accumulated, float max, float sum)
    {
        float* output = args.Output + b * args.OutputBatchStride + head * args.OutputHeadStride + query * args.OutputRowStride;
        long lseIndex = ((long)b * args.QueryHeads + head) * args.QueryCount + query;
        if (sum == 0f)
        {
            new Span<float>(output, args.ValueHeadSize).Clear(); // never 0·∞ = NaN
            if (args.LogSumExp != null) args.LogSumExp[lseIndex] = float.NegativeInfinity;
            return;
        }
        MicroKernels<TVec, TOps>.Scale(accumulated, output, args.ValueHeadSize, 1f / sum);
        if (args.LogSumExp != null) args.LogSumExp[lseIndex] = (float)(max + Math.Log(sum)); // one rounding: ln l in double
    }

    /// <summary>
    /// s[r, j] = q_r · k_j for 4 rows and <paramref name="count"/> keys, straight from the key rows: 4 keys at a
    /// time in a 4 × 4 register block, the rest one at a time.
    /// </summary>
    private static void DotScores(float* query, int d, float* keys, nint keyStride, int count, float* scores, int scoreStride)
    {
        int j = 0;
        for (; j + 4 <= count; j += 4) DotBlock(query, d, keys + j * keyStride, keyStride, scores + j, scoreStride);
        for (; j < count; j++) DotColumn(query, d, keys + j * keyStride, scores + j, scoreStride);
    }

    /// <summary>
    /// The 4 rows × 4 keys block: 16 accumulators, each loaded vector feeding 4 FMAs, then the four lane reductions
    /// of a row at once. Its own method: unrolled inside a larger one, the JIT runs out of locals for inlining and
    /// leaves vector operations as calls.
    /// </summary>
    private static void DotBlock(float* query, int d, float* k0, nint keyStride, float* scores, int scoreStride)
    {
        int w = TOps.Count, vectorEnd = d - d % w;
        float* q0 = query, q1 = query + d, q2 = query + 2 * d, q3 = query + 3 * d;
        float* k1 = k0 + keyStride, k2 = k1 + keyStride, k3 = k2 + keyStride;
        TVec a00 = TOps.Zero, a01 = TOps.Zero, a02 = TOps.Zero, a03 = TOps.Zero;
        TVec a10 = TOps.Zero, a11 = TOps.Zero, a12 = TOps.Zero, a13 = TOps.Zero;
        TVec a20 = TOps.Zero, a21 = TOps.Zero, a22 = TOps.Zero, a23 = TOps.Zero;
        TVec a30 = TOps.Zero, a31 = TOps.Zero, a32 = TOps.Zero, a33 = TOps.Zero;
        for (int t = 0; t < vectorEnd; t += w)
        {
            TVec x0 = TOps.Load(k0 + t), x1 = TOps.Load(k1 + t), x2 = TOps.Load(k2 + t), x3 = TOps.Load(k3 + t);
            TVec q = TOps.Load(q0 + t);
            a00 = TOps.MultiplyAdd(q, x0, a00); a01 = TOps.MultiplyAdd(q, x1, a01); a02 = TOps.MultiplyAdd(q, x2, a02); a03 = TOps.MultiplyAdd(q, x3, a03);
            q = TOps.Load(q1 + t);
            a10 = TOps.MultiplyAdd(q, x0, a10); a11 = TOps.MultiplyAdd(q, x1, a11); a12 = TOps.MultiplyAdd(q, x2, a12); a13 = TOps.MultiplyAdd(q, x3, a13);
            q = TOps.Load(q2 + t);
            a20 = TOps.MultiplyAdd(q, x0, a20); a21 = TOps.MultiplyAdd(q, x1, a21); a22 = TOps.MultiplyAdd(q, x2, a22); a23 = TOps.MultiplyAdd(q, x3, a23);
            q = TOps.Load(q3 + t);
            a30 = TOps.MultiplyAdd(q, x0, a30); a31 = TOps.MultiplyAdd(q, x1, a31); a32 = TOps.MultiplyAdd(q, x2, a32); a33 = TOps.MultiplyAdd(q, x3, a33);
        }
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
                s[0] = float.MultiplyAddEstimate(q[t], k0[t], s[0]);
                s[1] = float.MultiplyAddEstimate(q[t], k1[t], s[1]);
                s[2] = float.MultiplyAddEstimate(q[t], k2[t], s[2]);
                s[3] = float.MultiplyAddEstimate(q[t], k3[t], s[3]);
            }
        }
    }

    /// <summary>One key against 4 rows.</summary>
    private static void DotColumn(float* query, int d, float* k, float* scores, int scoreStride)
    {
        int w = TOps.Count, vectorEnd = d - d % w;
        float* q0 = query, q1 = query + d, q2 = query + 2 * d, q3 = query + 3 * d;
        TVec a0 = TOps.Zero, a1 = TOps.Zero, a2 = TOps.Zero, a3 = TOps.Zero;
        for (int t = 0; t < vectorEnd; t += w)
        {
            TVec kv = TOps.Load(k + t);
            a0 = TOps.MultiplyAdd(TOps.Load(q0 + t), kv, a0);
            a1 = TOps.MultiplyAdd(TOps.Load(q1 + t), kv, a1);
            a2 = TOps.MultiplyAdd(TOps.Load(q2 + t), kv, a2);
            a3 = TOps.MultiplyAdd(TOps.Load(q3 + t), kv, a3);
        }
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
            TVec p = VectorMath.Exp<TVec, TOps>(TOps.Subtract(TOps.Load(s + j), mv));
            TOps.Store(p, s + j);
            sum = TOps.Add(sum, p);
        }
        if (j < count)
        {
            // The tail as one vector: lanes past the end (whatever the scratch held) become exact zeros.
            TVec p = TOps.SelectFirst(count - j, VectorMath.Exp<TVec, TOps>(TOps.Subtract(TOps.Load(s + j), mv)), TOps.Zero);
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
