using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace FastAttention.Kernels;

/// <summary>
/// What a score needs beyond scale·(q·k), applied in place on a row of a score tile, in the contract's order:
/// soft-cap c·tanh(s/c), then the additive bias and ALiBi, then the boolean mask (and −∞ bias entries) as −∞.
/// Index masks (causal, window, key lengths) are not applied here: they bound the range the kernels compute at all.
/// </summary>
internal static unsafe class ScoreTerms<TVec, TOps>
    where TVec : unmanaged
    where TOps : IVectorOps<TVec>
{
    /// <summary>
    /// Applies the terms to s[from..to), where s[x] is the score of key <paramref name="keyStart"/> + x for query
    /// row <paramref name="query"/> of head <paramref name="head"/> in batch <paramref name="b"/>. Returns how many of
    /// those keys a tensor mask removed (their scores are now −∞). Scores are in units of <paramref name="logitUnit"/>
    /// (log₂e for a kernel whose softmax takes 2^x), and so are the terms added: soft-cap, bias and ALiBi slope times
    /// it. With 1 every term is added as it is (a multiply by 1 is exact). Where the scores change, a non-null
    /// <paramref name="maxOut"/> gets their lane-wise maximum over the range, which must then be whole vectors; where
    /// they do not (a mask that shows the whole range), it is left as it is. <paramref name="rowBlocks"/> says the caller
    /// walks blocks of consecutive query rows a key tile at a time (the prefill kernel), which sets what is prefetched.
    /// </summary>
    public static int Apply(in KernelArguments args, int b, int head, int query, float* s, int keyStart, int from, int to, float logitUnit = 1f, float* maxOut = null,
        bool rowBlocks = false)
    {
        long rowOffset = (long)query * args.KeyCount + keyStart;
        float* bias = args.Bias == null ? null : args.Bias + b * args.BiasBatchStride + head * args.BiasHeadStride + rowOffset;
        byte* mask = args.Mask == null ? null : args.Mask + b * args.MaskBatchStride + head * args.MaskHeadStride + rowOffset;
        float slope = args.AlibiSlopes == null ? 0f : args.AlibiSlopes[head];
        // A mask alone changes nothing where it shows every key of the range (most rows of a causal-shaped mask):
        // one vectorised scan of its bytes instead of a pass over the scores.
        if (mask != null && bias == null && args.SoftCap == 0f && args.AlibiSlopes == null && new ReadOnlySpan<byte>(mask + from, to - from).IndexOf((byte)0) < 0)
        {
            CacheHints.Prefetch(mask + to, to - from);
            return 0;
        }
        var terms = new Terms(args.SoftCap * logitUnit, bias, logitUnit, mask, args.AlibiSlopes != null, slope * logitUnit, (float)args.AlignedPosition(b, query), keyStart);

        int w = TOps.Count, x = from;
        Debug.Assert(maxOut == null || (to - from) % w == 0);
        TVec masked = TOps.Zero, minusInfinity = TOps.Create(float.NegativeInfinity), one = TOps.Create(1f), max = minusInfinity;
        // A soft-cap alone maps every score into [−c, c] (or NaN): none can come out −∞, so none is counted.
        bool mayRemove = args.SoftCap == 0f || bias != null || mask != null;
        for (; x + w <= to; x += w)
        {
            TVec v = terms.At<TVec, TOps>(TOps.Load(s + x), x);
            TOps.Store(v, s + x);
            if (mayRemove) masked = TOps.Add(masked, TOps.SelectEqual(v, minusInfinity, one, TOps.Zero));
            max = TOps.Max(max, v);
        }
        if (maxOut != null) TOps.Store(max, maxOut);
        int count = (int)TOps.SumAcross(masked);
        for (; x < to; x++)
        {
            float v = terms.At<float, ScalarOps>(s[x], x);
            s[x] = v;
            if (v == float.NegativeInfinity) count++;
        }
        // Bias and mask rows are read from memory, in more interleaved streams than the hardware prefetcher follows,
        // so ask for them ahead. Decode (one slice of keys after another): this row's next keys. The prefill kernel
        // (rowBlocks: blocks of 4 consecutive queries, a key tile at a time for all of them): the same keys of the rows
        // 2 and 8 query positions on, into L1 and into L2, whose blocks come next in this tile. L2048d64 with a bias,
        // both builds in one process: 4.8 % faster at 1 thread and 5.6 % at 2 than the next tile of this row and the
        // next row's same keys (into L1) were; 1, 2 or 4 rows into L1 with 4 to 16 into L2 measured within 2 % of it,
        // and no prefetch 5 % slower than those two.
        if (bias != null)
        {
            int bytes = (to - from) * sizeof(float);
            if (rowBlocks)
            {
                CacheHints.Prefetch(bias + 2L * args.KeyCount + from, bytes);
                CacheHints.PrefetchToL2(bias + 8L * args.KeyCount + from, bytes);
            }
            else
            {
                CacheHints.Prefetch(bias + to, bytes);
            }
        }
        if (mask != null) CacheHints.Prefetch(mask + to, to - from);
        return count;
    }

    /// <summary>
    /// Score terms of one row over its range [from, to) (when the call has any): returns how many keys a tensor mask
    /// removed and marks them in <paramref name="codes"/> with <paramref name="bit"/>, which the caller has cleared
    /// over the range. A row that lost every key gets an empty range.
    /// </summary>
    public static int ApplyToRange(in KernelArguments args, int b, int head, int query, float* s, int keyStart, int from, ref int to, byte* codes, int bit, float logitUnit = 1f,
        float* maxOut = null, bool rowBlocks = false)
    {
        if (!args.HasScoreTerms || to <= from) return 0;
        int removed = Apply(args, b, head, query, s, keyStart, from, to, logitUnit, maxOut, rowBlocks);
        if (removed == to - from)
        {
            to = from; // nothing left to see here
            return 0;
        }
        if (removed > 0) MarkMasked(s, from, to, codes, (byte)bit);
        return removed;
    }

    /// <summary>
    /// With a boolean mask, shrinks [from, to) (relative to <paramref name="keyStart"/>) to the row's first..last
    /// visible key there, empty when it has none: tiles a mask hides wholly are then skipped like those above the
    /// causal diagonal, and mask edges cost nothing. A vectorised byte scan, much cheaper than the scores it saves.
    /// </summary>
    public static void TrimToMask(in KernelArguments args, int b, int head, int query, int keyStart, ref int from, ref int to)
    {
        if (args.Mask == null || from >= to) return;
        byte* row = args.Mask + b * args.MaskBatchStride + head * args.MaskHeadStride + (long)query * args.KeyCount + keyStart;
        var flags = new ReadOnlySpan<byte>(row + from, to - from);
        int first = flags.IndexOfAnyExcept((byte)0);
        if (first < 0)
        {
            to = from;
            return;
        }
        to = from + flags.LastIndexOfAnyExcept((byte)0) + 1;
        from += first;
    }

    /// <summary>Sets bit <paramref name="bit"/> of codes[x] for every x in [from, to) whose score is −∞ (a masked key).</summary>
    public static void MarkMasked(float* s, int from, int to, byte* codes, byte bit)
    {
        for (int x = from; x < to; x++)
            if (s[x] == float.NegativeInfinity) codes[x] |= bit;
    }

    /// <summary>The terms of one row, for vector lanes or a single key alike (written once, instantiated twice).</summary>
    private readonly struct Terms(float softCap, float* bias, float biasUnit, byte* mask, bool alibi, float slope, float aligned, int keyStart)
    {
        private readonly float capFactor = softCap == 0f ? 0f : VectorMath.SoftCapFactor(softCap);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public TV At<TV, TO>(TV v, int x)
            where TV : unmanaged
            where TO : IVectorOps<TV>
        {
            TV minusInfinity = TO.Create(float.NegativeInfinity);
            if (softCap != 0f)
            {
                v = VectorMath.SoftCap<TV, TO>(v, softCap, capFactor);
            }
            if (bias != null)
            {
                TV term = TO.Load(bias + x);
                v = TO.SelectEqual(term, minusInfinity, minusInfinity, TO.MultiplyAdd(term, TO.Create(biasUnit), v)); // −∞ masks even a NaN score
            }
            if (alibi)
            {
                TV key = TO.Add(TO.Create(keyStart + x), TO.Indices);
                v = TO.MultiplyAdd(TO.Abs(TO.Subtract(TO.Create(aligned), key)), TO.Create(-slope), v);
            }
            if (mask != null) v = TO.SelectByBytes(mask + x, v, minusInfinity);
            return v;
        }
    }
}
