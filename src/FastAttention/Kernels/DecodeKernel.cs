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
        float* partial = partials + ((long)pair * plan.Splits + slice) * rows * stride;

        fixed (float* queryScratch = workspace.Get(0, paddedRows * d))
        fixed (float* accumulators = workspace.Get(1, paddedRows * dv))
        fixed (float* scores = workspace.Get(2, paddedRows * plan.SplitSize))
        {
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
            int sliceStride = plan.SplitSize;
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
                    float m = float.NegativeInfinity;
                    for (int j = 0; j < visible[r]; j++) m = MathF.Max(m, s[j]);
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
            long lseIndex = ((long)b * args.QueryHeads + head) * args.QueryCount + query;
            if (sum == 0f)
            {
                new Span<float>(output, dv).Clear();
                if (args.LogSumExp != null) args.LogSumExp[lseIndex] = float.NegativeInfinity;
                continue;
            }
            MicroKernels<TVec, TOps>.Scale(output, output, dv, 1f / sum);
            if (args.LogSumExp != null) args.LogSumExp[lseIndex] = (float)(max + Math.Log(sum));
        }
    }

    /// <summary>s[r, j] = q_r · k_j for 4 rows and <paramref name="count"/> keys: each key row is loaded once for all 4.</summary>
    private static void DotScores(float* query, int d, float* keys, nint keyStride, int count, float* scores, int scoreStride)
    {
        int w = TOps.Count;
        float* q0 = query, q1 = query + d, q2 = query + 2 * d, q3 = query + 3 * d;
        for (int j = 0; j < count; j++)
        {
            float* k = keys + j * keyStride;
            TVec a0 = TOps.Zero, a1 = TOps.Zero, a2 = TOps.Zero, a3 = TOps.Zero;
            int t = 0;
            for (; t + w <= d; t += w)
            {
                TVec kv = TOps.Load(k + t);
                a0 = TOps.MultiplyAdd(TOps.Load(q0 + t), kv, a0);
                a1 = TOps.MultiplyAdd(TOps.Load(q1 + t), kv, a1);
                a2 = TOps.MultiplyAdd(TOps.Load(q2 + t), kv, a2);
                a3 = TOps.MultiplyAdd(TOps.Load(q3 + t), kv, a3);
            }
            float s0 = TOps.SumAcross(a0), s1 = TOps.SumAcross(a1), s2 = TOps.SumAcross(a2), s3 = TOps.SumAcross(a3);
            for (; t < d; t++)
            {
                s0 = float.MultiplyAddEstimate(q0[t], k[t], s0);
                s1 = float.MultiplyAddEstimate(q1[t], k[t], s1);
                s2 = float.MultiplyAddEstimate(q2[t], k[t], s2);
                s3 = float.MultiplyAddEstimate(q3[t], k[t], s3);
            }
            scores[j] = s0;
            scores[scoreStride + j] = s1;
            scores[2 * scoreStride + j] = s2;
            scores[3 * scoreStride + j] = s3;
        }
    }

    /// <summary>s[j] ← e^(s[j] − m) over <paramref name="count"/> entries; returns their sum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float SoftmaxNumerators(float* s, int count, float m)
    {
        int w = TOps.Count;
        TVec mv = TOps.Create(m), sum = TOps.Zero;
        int j = 0;
        for (; j + w <= count; j += w)
        {
            TVec p = VectorMath.Exp<TVec, TOps>(TOps.Subtract(TOps.Load(s + j), mv));
            TOps.Store(p, s + j);
            sum = TOps.Add(sum, p);
        }
        float total = TOps.SumAcross(sum);
        for (; j < count; j++)
        {
            float p = VectorMath.Exp(s[j] - m);
            s[j] = p;
            total += p;
        }
        return total;
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
