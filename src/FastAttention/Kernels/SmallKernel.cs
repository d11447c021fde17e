using System.Runtime.CompilerServices;
using FastAttention.Buffers;
using FastAttention.Planning;

namespace FastAttention.Kernels;

/// <summary>
/// Small unmasked problems (every key of a head in one tile, no mask or score term): one item per (batch,
/// key-value head) does it all in one pass, without the tile machinery the general kernels need for long or masked
/// problems. Keys and values not in fp32 are widened first, exactly as the other kernels widen them.
/// <code>
///  K[b, kvh] ──transpose──► Kᵀ [headSize, keys rounded up to whole vectors]
///  Q rows (all heads of the group; fp32 read in place, other types widened)
///  S = Q·Kᵀ (4-row register tiles) ─► per row m = max(S·scale), P = e^(S·scale − m), l = Σ P ─► O = P·V (4-row tiles) ─► O / l
/// </code>
/// No online rescaling: each row's maximum is known before its first weight.
/// </summary>
internal static unsafe class SmallKernel<TVec, TOps>
    where TVec : unmanaged
    where TOps : IVectorOps<TVec>
{
    private const int Rows = MicroKernels<TVec, TOps>.Rows;

    /// <summary>Runs item <paramref name="pair"/>: every query row of every head of one (batch, key-value head).</summary>
    [SkipLocalsInit]
    public static void Compute(in KernelArguments args, Workspace workspace, int pair)
    {
        int b = pair / args.KeyValueHeads, kvh = pair % args.KeyValueHeads;
        int d = args.HeadSize, dv = args.ValueHeadSize, group = args.GroupSize, queries = args.QueryCount, keys = args.KeyCount;
        int rows = group * queries, paddedRows = Planner.RoundUp(rows, Rows);
        int stride = Planner.RoundUp(keys, TOps.Count);

        fixed (float* queryScratch = &workspace.Get(0, paddedRows * d))
        fixed (float* accumulators = &workspace.Get(1, paddedRows * dv))
        fixed (float* scores = &workspace.Get(2, paddedRows * stride))
        fixed (float* stats = &workspace.Get(3, 2 * paddedRows))
        fixed (float* staging = &workspace.Get(4, Planner.SmallStagingLength(args, TOps.Count)))
        {
            // Slot 4: Kᵀ, then (for narrower types) the widened key rows and the widened value rows.
            float* keysT = staging, widened = staging + d * stride;
            float* keyRows = args.Key.IsFloat32 ? args.Key.Floats(b, kvh, 0) : widened;
            nint keyStride = args.Key.IsFloat32 ? args.Key.RowStride : d;
            if (!args.Key.IsFloat32) ElementConversion<TVec, TOps>.WidenRows(args.Key, b, kvh, 0, keys, d, widened, d);
            PrefillKernel<TVec, TOps>.Transpose(keyRows, keyStride, keys, d, keysT, stride);
            float* values = args.Value.IsFloat32 ? args.Value.Floats(b, kvh, 0) : widened;
            nint valueStride = args.Value.IsFloat32 ? args.Value.RowStride : dv;
            if (!args.Value.IsFloat32) ElementConversion<TVec, TOps>.WidenRows(args.Value, b, kvh, 0, keys, dv, widened, dv); // the widened keys are transposed by now
            // Row r is query r % queries of head kvh·group + r / queries, counted rather than divided (an idiv per row
            // is a visible share of a microsecond call).
            // Three passes over the 4-row blocks rather than one: each block's softmax is a chain of dependent
            // latencies (maximum, exp, sum), and the blocks' chains overlap only when nothing waits on them in between.
            for (int r0 = 0, head = kvh * group, query = 0; r0 < paddedRows; r0 += Rows)
            {
                float* q0 = QueryBlock(args, b, ref head, ref query, Math.Min(Rows, rows - r0), queryScratch + r0 * d, out nint queryStride);
                if (stride == TOps.Count && r0 + Rows < paddedRows)
                {
                    // One vector of keys: two blocks at once (the same sums), so that their FMA chains overlap.
                    int r1 = r0 + Rows;
                    float* q1 = QueryBlock(args, b, ref head, ref query, Math.Min(Rows, rows - r1), queryScratch + r1 * d, out nint queryStride1);
                    MicroKernels<TVec, TOps>.ScoresOneVector(q0, queryStride, q1, queryStride1, d, keysT, stride, scores + r0 * stride, scores + r1 * stride, stride);
                    r0 = r1;
                    continue;
                }
                MicroKernels<TVec, TOps>.Scores(q0, queryStride, d, keysT, stride, scores + r0 * stride, stride, stride);
            }
            for (int r0 = 0; r0 < paddedRows; r0 += Rows)
                Weights(scores + r0 * stride, stride, keys, args.Scale, stats + 2 * r0); // padded rows get finite weights into sums nobody reads
            for (int r0 = 0; r0 < paddedRows; r0 += Rows)
                MicroKernels<TVec, TOps>.Accumulate(accumulators + r0 * dv, dv, scores + r0 * stride, stride, values, valueStride, keys, fresh: true);
            for (int r = 0, head = kvh * group, query = 0; r < rows; r++)
            {
                RowOutput<TVec, TOps>.Write(args, b, head, query, accumulators + r * dv, stats[2 * r], stats[2 * r + 1]);
                if (++query == queries) { query = 0; head++; }
            }
        }
    }

    /// <summary>
    /// The 4 query rows of a block, from row (<paramref name="head"/>, <paramref name="query"/>) on, which both move
    /// past them: fp32 rows evenly spaced in the caller's tensor are read where they are (rows <paramref name="queryStride"/>
    /// floats apart), any others are widened into <paramref name="scratch"/>, dense, with zero rows past the
    /// <paramref name="real"/> ones. Unscaled: the scale multiplies the scores (see <see cref="Weights"/>).
    /// </summary>
    private static float* QueryBlock(in KernelArguments args, int b, ref int head, ref int query, int real, float* scratch, out nint queryStride)
    {
        int queries = args.QueryCount, d = args.HeadSize;
        byte* r0 = null, r1 = null, r2 = null, r3 = null;
        for (int r = 0; r < real; r++)
        {
            byte* row = args.Query.Row(b, head, query);
            if (r == 0) r0 = row; else if (r == 1) r1 = row; else if (r == 2) r2 = row; else r3 = row;
            if (++query == queries) { query = 0; head++; }
        }
        nint step = (nint)(r1 - r0);
        if (args.Query.IsFloat32 && real == Rows && r2 - r1 == step && r3 - r2 == step && step % sizeof(float) == 0)
        {
            queryStride = step / sizeof(float);
            return (float*)r0;
        }
        for (int r = 0; r < Rows; r++)
        {
            byte* row = r == 0 ? r0 : r == 1 ? r1 : r == 2 ? r2 : r3;
            if (r < real) ElementConversion<TVec, TOps>.Widen(args.Query.Type, row, scratch + r * d, d, 1f);
            else new Span<float>(scratch + r * d, d).Clear();
        }
        queryStride = d;
        return scratch;
    }

    /// <summary>
    /// For 4 rows of unscaled scores <paramref name="stride"/> apart: s[0..count) ← e^(s·scale − m) with m the row's
    /// maximum of s·scale, and the row's state (m, Σ e^(s·scale − m)). The rows go side by side, so that their exps
    /// overlap rather than wait on each other. A row whose scaled scores are all −∞ gets zero weights and the state
    /// (−∞, 0): never e^(−∞ + ∞).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Weights(float* s0, int stride, int count, float scale, float* state)
    {
        int w = TOps.Count, tail = count % w, whole = count - tail;
        float* s1 = s0 + stride, s2 = s1 + stride, s3 = s2 + stride;
        TVec minusInfinity = TOps.Create(float.NegativeInfinity);
        TVec x0 = minusInfinity, x1 = minusInfinity, x2 = minusInfinity, x3 = minusInfinity;
        TVec k = TOps.Create(scale);
        for (int j = 0; j < whole; j += w)
        {
            x0 = TOps.Max(x0, TOps.Multiply(TOps.Load(s0 + j), k)); x1 = TOps.Max(x1, TOps.Multiply(TOps.Load(s1 + j), k));
            x2 = TOps.Max(x2, TOps.Multiply(TOps.Load(s2 + j), k)); x3 = TOps.Max(x3, TOps.Multiply(TOps.Load(s3 + j), k));
        }
        if (tail > 0)
        {
            x0 = TOps.Max(x0, TOps.SelectFirst(tail, TOps.Multiply(TOps.Load(s0 + whole), k), minusInfinity)); x1 = TOps.Max(x1, TOps.SelectFirst(tail, TOps.Multiply(TOps.Load(s1 + whole), k), minusInfinity));
            x2 = TOps.Max(x2, TOps.SelectFirst(tail, TOps.Multiply(TOps.Load(s2 + whole), k), minusInfinity)); x3 = TOps.Max(x3, TOps.SelectFirst(tail, TOps.Multiply(TOps.Load(s3 + whole), k), minusInfinity));
        }
        float m0 = TOps.MaxAcross(x0), m1 = TOps.MaxAcross(x1), m2 = TOps.MaxAcross(x2), m3 = TOps.MaxAcross(x3);
        // An all −∞ row subtracts 0 instead (its e^(−∞) are zeros), keeping the others' work branch-free. e^(s·scale − m)
        // with one rounding (a fused multiply-add).
        TVec v0 = TOps.Create(-Finite(m0)), v1 = TOps.Create(-Finite(m1)), v2 = TOps.Create(-Finite(m2)), v3 = TOps.Create(-Finite(m3));
        TVec l0 = TOps.Zero, l1 = TOps.Zero, l2 = TOps.Zero, l3 = TOps.Zero;
        for (int j = 0; j < whole; j += w)
        {
            TVec p0 = VectorMath.ExpBelowOverflow<TVec, TOps>(TOps.MultiplyAdd(TOps.Load(s0 + j), k, v0)), p1 = VectorMath.ExpBelowOverflow<TVec, TOps>(TOps.MultiplyAdd(TOps.Load(s1 + j), k, v1));
            TVec p2 = VectorMath.ExpBelowOverflow<TVec, TOps>(TOps.MultiplyAdd(TOps.Load(s2 + j), k, v2)), p3 = VectorMath.ExpBelowOverflow<TVec, TOps>(TOps.MultiplyAdd(TOps.Load(s3 + j), k, v3));
            TOps.Store(p0, s0 + j); TOps.Store(p1, s1 + j); TOps.Store(p2, s2 + j); TOps.Store(p3, s3 + j);
            l0 = TOps.Add(l0, p0); l1 = TOps.Add(l1, p1); l2 = TOps.Add(l2, p2); l3 = TOps.Add(l3, p3);
        }
        if (tail > 0)
        {
            // The tail as one vector each: lanes past the end become exact zeros.
            TVec p0 = TOps.SelectFirst(tail, VectorMath.ExpBelowOverflow<TVec, TOps>(TOps.MultiplyAdd(TOps.Load(s0 + whole), k, v0)), TOps.Zero);
            TVec p1 = TOps.SelectFirst(tail, VectorMath.ExpBelowOverflow<TVec, TOps>(TOps.MultiplyAdd(TOps.Load(s1 + whole), k, v1)), TOps.Zero);
            TVec p2 = TOps.SelectFirst(tail, VectorMath.ExpBelowOverflow<TVec, TOps>(TOps.MultiplyAdd(TOps.Load(s2 + whole), k, v2)), TOps.Zero);
            TVec p3 = TOps.SelectFirst(tail, VectorMath.ExpBelowOverflow<TVec, TOps>(TOps.MultiplyAdd(TOps.Load(s3 + whole), k, v3)), TOps.Zero);
            TOps.Store(p0, s0 + whole); TOps.Store(p1, s1 + whole); TOps.Store(p2, s2 + whole); TOps.Store(p3, s3 + whole);
            l0 = TOps.Add(l0, p0); l1 = TOps.Add(l1, p1); l2 = TOps.Add(l2, p2); l3 = TOps.Add(l3, p3);
        }
        state[0] = m0; state[1] = TOps.SumAcross(l0);
        state[2] = m1; state[3] = TOps.SumAcross(l1);
        state[4] = m2; state[5] = TOps.SumAcross(l2);
        state[6] = m3; state[7] = TOps.SumAcross(l3);
    }

    private static float Finite(float max) => max == float.NegativeInfinity ? 0f : max;
}
