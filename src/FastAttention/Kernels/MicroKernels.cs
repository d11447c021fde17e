using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace FastAttention.Kernels;

/// <summary>
/// Register-blocked tiles, written once over a vector width. A block is 4 query rows; the Q·Kᵀ tile keeps
/// 4 rows × 3 key vectors of scores in 12 accumulators, the P·V tile 4 rows × 3 column vectors of output,
/// so each loaded vector feeds 4 FMAs and each broadcast 3; where a row ends in 2 vectors (or 3 + 1), a 4 × 2 panel
/// takes them, never a single-vector pass, whose 4 broadcasts per load make it load-bound. With AVX-512's 32
/// registers both tiles are 4 rows × 4 vectors (16 accumulators): each broadcast feeds 4; decode over value rows of 8
/// vectors streamed from memory takes a 2-row × 8-vector tile instead (<see cref="AccumulateStreamed"/>).
/// </summary>
internal static unsafe class MicroKernels<TVec, TOps>
    where TVec : unmanaged
    where TOps : IVectorOps<TVec>
{
    public const int Rows = 4;

    /// <summary>
    /// scores[r, j] = Σ_d query[r, d] · keysT[d, j] for 4 rows and j &lt; <paramref name="columns"/>
    /// (a multiple of the vector width). <paramref name="query"/> is [4, headSize] with rows <paramref name="queryStride"/>
    /// floats apart; <paramref name="keysT"/> is the transposed key tile [headSize, keyStride]; <paramref name="scores"/> is [4, scoreStride].
    /// </summary>
    /// <remarks>
    /// A non-null <paramref name="rowMax"/> ([4, Count] floats, one vector per row) gets the lane-wise maximum of the
    /// scores computed here folded in while they are still in registers, so that a softmax over exactly these
    /// columns needs no pass over them for its maximum.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Scores(float* query, nint queryStride, int headSize, float* keysT, int keyStride, float* scores, int scoreStride, int columns, float* rowMax = null)
    {
        int w = TOps.Count;
        float* q0 = query, q1 = query + queryStride, q2 = query + 2 * queryStride, q3 = query + 3 * queryStride;
        float* s0 = scores, s1 = scores + scoreStride, s2 = scores + 2 * scoreStride, s3 = scores + 3 * scoreStride;
        int j = 0;
        if (Avx512F.IsSupported)
        {
            // 32 vector registers: 4 rows × 4 key vectors (16 accumulators), each query broadcast feeding 4 FMAs. The
            // P·V tile computes the same sums: rows of Q against rows of Kᵀ, from zero, in order of the head size.
            for (; j + 4 * w <= columns; j += 4 * w) {
                if (rowMax == null) AccumulateColumns4<Yes, No, No, Float32Loader>(scores + j, scoreStride, query, queryStride, keysT + j, keyStride, headSize);
                else AccumulateColumns4<Yes, No, Yes, Float32Loader>(scores + j, scoreStride, query, queryStride, keysT + j, keyStride, headSize, rowMax: rowMax);
            }
        }
        for (; j + 3 * w <= columns; j += 3 * w)
        {
            if (rowMax == null) AccumulateColumns3Or2<No, No, No>(scores + j, scoreStride, query, queryStride, keysT + j, keyStride, headSize, fresh: true);
            else AccumulateColumns3Or2<No, No, Yes>(scores + j, scoreStride, query, queryStride, keysT + j, keyStride, headSize, fresh: true, rowMax: rowMax);
        }
        if (!Avx512F.IsSupported && j + 2 * w <= columns)
        {
            // Two key vectors left (16 keys at 8 lanes: the tiny case): 8 FMA chains, where two single-vector passes
            // wait on the FMA latency with 4 each.
            if (rowMax == null) AccumulateColumns3Or2<Yes, No, No>(scores + j, scoreStride, query, queryStride, keysT + j, keyStride, headSize, fresh: true);
            else AccumulateColumns3Or2<Yes, No, Yes>(scores + j, scoreStride, query, queryStride, keysT + j, keyStride, headSize, fresh: true, rowMax: rowMax);
            j += 2 * w;
        }
        for (; j < columns; j += w)
        {
            TVec a0 = TOps.Zero, a1 = TOps.Zero, a2 = TOps.Zero, a3 = TOps.Zero;
            float* k = keysT + j;
            for (int d = 0; d < headSize; d++, k += keyStride) RowsTimesVector(query, queryStride, d, TOps.Load(k), ref a0, ref a1, ref a2, ref a3);
            TOps.Store(a0, s0 + j); TOps.Store(a1, s1 + j); TOps.Store(a2, s2 + j); TOps.Store(a3, s3 + j);
            if (rowMax != null)
            {
                FoldMax(rowMax, a0); FoldMax(rowMax + w, a1); FoldMax(rowMax + 2 * w, a2); FoldMax(rowMax + 3 * w, a3);
            }
        }
    }

    /// <summary>
    /// <see cref="Scores"/> for one chunk of key columns: where the CPU has 32 vector registers and the chunk is the
    /// 4-vector tile, straight into that tile's loop (no call through Scores' dispatch, a few percent of a prefill's
    /// score time at head size 64).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ScoreChunk(float* query, nint queryStride, int headSize, float* keysT, int keyStride, float* scores, int scoreStride, int columns, float* rowMax)
    {
        if (Avx512F.IsSupported && columns == 4 * TOps.Count)
        {
            if (rowMax == null) AccumulateColumns4<Yes, No, No, Float32Loader>(scores, scoreStride, query, queryStride, keysT, keyStride, headSize);
            else AccumulateColumns4<Yes, No, Yes, Float32Loader>(scores, scoreStride, query, queryStride, keysT, keyStride, headSize, rowMax: rowMax);
            return;
        }
        Scores(query, queryStride, headSize, keysT, keyStride, scores, scoreStride, columns, rowMax);
    }

    /// <summary>rowMax's vector = the lane-wise maximum of it and <paramref name="value"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FoldMax(float* rowMax, TVec value) => TOps.Store(TOps.Max(TOps.Load(rowMax), value), rowMax);

    /// <summary>a_r += query[r, d] · k for the 4 rows at <paramref name="query"/>, <paramref name="queryStride"/> floats apart.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RowsTimesVector(float* query, nint queryStride, int d, TVec k, ref TVec a0, ref TVec a1, ref TVec a2, ref TVec a3)
    {
        a0 = TOps.MultiplyAdd(TOps.Create(query[d]), k, a0);
        a1 = TOps.MultiplyAdd(TOps.Create(query[queryStride + d]), k, a1);
        a2 = TOps.MultiplyAdd(TOps.Create(query[2 * queryStride + d]), k, a2);
        a3 = TOps.MultiplyAdd(TOps.Create(query[3 * queryStride + d]), k, a3);
    }

    /// <summary>
    /// <see cref="Scores"/> for two 4-row blocks (query rows at <paramref name="queryA"/> and <paramref name="queryB"/>,
    /// their scores at <paramref name="scoresA"/> and <paramref name="scoresB"/>) against a single vector of keys: the
    /// same sums in the same order, 8 independent FMA chains instead of 4. One block's 4 chains, one FMA per element
    /// of the head size each, wait on the FMA latency (the tiny case's largest cost).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ScoresOneVector(float* queryA, nint strideA, float* queryB, nint strideB, int headSize, float* keysT, int keyStride,
        float* scoresA, float* scoresB, int scoreStride)
    {
        TVec a0 = TOps.Zero, a1 = TOps.Zero, a2 = TOps.Zero, a3 = TOps.Zero, a4 = TOps.Zero, a5 = TOps.Zero, a6 = TOps.Zero, a7 = TOps.Zero;
        float* k = keysT;
        for (int d = 0; d < headSize; d++, k += keyStride)
        {
            TVec k0 = TOps.Load(k);
            RowsTimesVector(queryA, strideA, d, k0, ref a0, ref a1, ref a2, ref a3);
            RowsTimesVector(queryB, strideB, d, k0, ref a4, ref a5, ref a6, ref a7);
        }
        TOps.Store(a0, scoresA); TOps.Store(a1, scoresA + scoreStride); TOps.Store(a2, scoresA + 2 * scoreStride); TOps.Store(a3, scoresA + 3 * scoreStride);
        TOps.Store(a4, scoresB); TOps.Store(a5, scoresB + scoreStride); TOps.Store(a6, scoresB + 2 * scoreStride); TOps.Store(a7, scoresB + 3 * scoreStride);
    }

    /// <summary>Key vectors per chunk of <see cref="Scores"/>: 4 where the CPU has 32 vector registers, else 3.</summary>
    public static int ScoreChunkVectors => Avx512F.IsSupported ? 4 : 3;

    /// <summary>
    /// output[r, c] += Σ_{j &lt; count} weights[r, j] · value[j, c] for 4 rows; <paramref name="output"/> is
    /// [4, columns] dense, <paramref name="weights"/> [4, weightStride], <paramref name="value"/> rows
    /// <paramref name="valueStride"/> apart. Reads exactly <paramref name="count"/> value rows. With
    /// <paramref name="fresh"/> the sums start from zero instead of the output's contents (which are not read).
    /// A nonzero <paramref name="prefetchAhead"/> (floats) prefetches the lines that many floats past each value row's
    /// part as the row is read: value rows streamed from memory, the prefetches spread through the FMAs instead of
    /// issued in a burst (the single-vector passes do not prefetch).
    /// </summary>
    public static void Accumulate(float* output, int columns, float* weights, int weightStride, float* value, nint valueStride, int count, bool fresh = false, nint prefetchAhead = 0) =>
        AccumulateBlocks(output, columns, 1, 0, weights, weightStride, 0, value, valueStride, count, fresh, prefetchAhead);

    /// <summary>
    /// <see cref="Accumulate"/> for <paramref name="blocks"/> 4-row blocks, block i's output at
    /// <paramref name="output"/> + i·<paramref name="blockOutputStride"/> and its weights at <paramref name="weights"/> +
    /// i·<paramref name="blockWeightStride"/>, all over the same value rows: column panel by column panel, each panel
    /// through every block in turn, so that a block's accumulators are loaded and stored once per panel for all
    /// <paramref name="count"/> keys while the panel's part of the value rows is reused by every block (L1024d128 on a
    /// Zen 4: 4 % faster than blocks over both panels a 32-key chunk at a time). Each output element gets the same
    /// sum, key by key in order, whichever panel or call computes it.
    /// </summary>
    public static void AccumulateBlocks(float* output, int columns, int blocks, int blockOutputStride, float* weights, int weightStride, int blockWeightStride,
        float* value, nint valueStride, int count, bool fresh = false, nint prefetchAhead = 0)
    {
        int w = TOps.Count;
        for (int c = 0; c < columns;)
        {
            int vectors = PanelVectors(c, columns);
            for (int block = 0; block < blocks; block++)
            {
                AccumulatePanel(vectors, output + block * blockOutputStride + c, columns, weights + block * blockWeightStride, weightStride, value + c, valueStride, count,
                    columns - c, fresh, prefetchAhead);
            }
            c += vectors == 0 ? columns - c : vectors * w;
        }
    }

    /// <summary>
    /// Vectors in the panel of <see cref="Accumulate"/> at column <paramref name="c"/>; 0 for the columns past the
    /// last whole vector. With AVX-512's 32 registers 4-vector panels (16 accumulators), so that a head size of 4 or 8
    /// vectors (64 or 128 at 16 lanes) needs no single-vector pass, whose 4 broadcasts per value load make it
    /// load-bound; without, 3-vector panels, two 2-vector panels where 3 + 1 would be left (head size 128 at 8 lanes:
    /// 16 = 3·4 + 2 + 2), and a 2-vector panel for two left (head size 64 at 8 lanes: 3 + 3 + 2).
    /// </summary>
    private static int PanelVectors(int c, int columns)
    {
        int w = TOps.Count, left = (columns - c) / w;
        if (Avx512F.IsSupported)
        {
            if (left >= 4) return 4;
            return left >= 3 ? 3 : left;
        }
        if (left >= 3 && left != 4) return 3;
        return Math.Min(left, 2);
    }

    /// <summary>One panel of <see cref="Accumulate"/> (rows <paramref name="outputStride"/> apart): <paramref name="vectors"/> column vectors, or for 0 the <paramref name="tail"/> columns left, one at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AccumulatePanel(int vectors, float* output, int outputStride, float* weights, int weightStride, float* value, nint valueStride, int count, int tail,
        bool fresh, nint prefetchAhead)
    {
        // Each combination of the options its own instantiation, so that the loop tests none of them.
        switch (vectors)
        {
            case 4:
                if (prefetchAhead != 0)
                {
                    if (fresh) AccumulateColumns4<Yes, Yes, No, Float32Loader>(output, outputStride, weights, weightStride, value, valueStride, count, prefetchAhead);
                    else AccumulateColumns4<No, Yes, No, Float32Loader>(output, outputStride, weights, weightStride, value, valueStride, count, prefetchAhead);
                }
                else if (fresh) AccumulateColumns4<Yes, No, No, Float32Loader>(output, outputStride, weights, weightStride, value, valueStride, count);
                else AccumulateColumns4<No, No, No, Float32Loader>(output, outputStride, weights, weightStride, value, valueStride, count);
                return;
            case 3:
                if (prefetchAhead != 0) AccumulateColumns3Or2<No, Yes, No>(output, outputStride, weights, weightStride, value, valueStride, count, fresh, prefetchAhead);
                else AccumulateColumns3Or2<No, No, No>(output, outputStride, weights, weightStride, value, valueStride, count, fresh);
                return;
            case 2:
                if (prefetchAhead != 0) AccumulateColumns3Or2<Yes, Yes, No>(output, outputStride, weights, weightStride, value, valueStride, count, fresh, prefetchAhead);
                else AccumulateColumns3Or2<Yes, No, No>(output, outputStride, weights, weightStride, value, valueStride, count, fresh);
                return;
        }
        float* o0 = output, o1 = output + outputStride, o2 = output + 2 * outputStride, o3 = output + 3 * outputStride;
        float* p0 = weights, p1 = weights + weightStride, p2 = weights + 2 * weightStride, p3 = weights + 3 * weightStride;
        if (vectors == 1)
        {
            TVec a0 = Start(o0, fresh), a1 = Start(o1, fresh), a2 = Start(o2, fresh), a3 = Start(o3, fresh);
            float* v = value;
            for (int j = 0; j < count; j++, v += valueStride)
            {
                TVec v0 = TOps.Load(v);
                a0 = TOps.MultiplyAdd(TOps.Create(p0[j]), v0, a0);
                a1 = TOps.MultiplyAdd(TOps.Create(p1[j]), v0, a1);
                a2 = TOps.MultiplyAdd(TOps.Create(p2[j]), v0, a2);
                a3 = TOps.MultiplyAdd(TOps.Create(p3[j]), v0, a3);
            }
            TOps.Store(a0, o0); TOps.Store(a1, o1); TOps.Store(a2, o2); TOps.Store(a3, o3);
            return;
        }
        for (int c = 0; c < tail; c++)
        {
            float a0 = fresh ? 0f : o0[c], a1 = fresh ? 0f : o1[c], a2 = fresh ? 0f : o2[c], a3 = fresh ? 0f : o3[c];
            float* v = value + c;
            for (int j = 0; j < count; j++, v += valueStride)
            {
                float v0 = *v;
                a0 = float.MultiplyAddEstimate(p0[j], v0, a0);
                a1 = float.MultiplyAddEstimate(p1[j], v0, a1);
                a2 = float.MultiplyAddEstimate(p2[j], v0, a2);
                a3 = float.MultiplyAddEstimate(p3[j], v0, a3);
            }
            o0[c] = a0; o1[c] = a1; o2[c] = a2; o3[c] = a3;
        }
    }

    /// <summary>
    /// The 4 rows × 3 column vectors (2 with <typeparamref name="TPair"/>) of <see cref="Accumulate"/> at
    /// <paramref name="output"/> (rows <paramref name="outputStride"/> apart): 12 accumulators, per key 3 value loads
    /// and 4 broadcasts for 12 FMAs (8 accumulators, 2 loads and 4 broadcasts for 8). The tile of CPUs with 16 vector
    /// registers, and the 3-vector tail after the 4-vector tiles of those with 32. <see cref="Scores"/> runs it too,
    /// with query rows as the weights and rows of Kᵀ as the values.
    /// </summary>
    /// <typeparam name="TPair">Two column vectors instead of three (the panel that ends a row of 8, 16 or 4 vectors).</typeparam>
    /// <typeparam name="TPrefetch">
    /// Prefetch the panel's part of the value row <paramref name="prefetchAhead"/> floats on as each row is read (value
    /// rows streamed from memory: decode for a group of query heads). Its own instantiation, so that the prefill's loop
    /// tests nothing (a test of a zero distance per key cost it 2 %).
    /// </typeparam>
    /// <typeparam name="TMax">Fold each row's maximum into <paramref name="rowMax"/>, as <see cref="Scores"/> describes.</typeparam>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AccumulateColumns3Or2<TPair, TPrefetch, TMax>(float* output, int outputStride, float* weights, nint weightStride, float* value, nint valueStride, int count,
        bool fresh, nint prefetchAhead = 0, float* rowMax = null)
        where TPair : struct, IFlag
        where TPrefetch : struct, IFlag
        where TMax : struct, IFlag
    {
        int w = TOps.Count;
        bool three = !TPair.On; // a constant in each instantiation: the third vector's code is dropped from the pair's
        float* o0 = output, o1 = output + outputStride, o2 = output + 2 * outputStride, o3 = output + 3 * outputStride;
        float* p0 = weights, p1 = weights + weightStride, p2 = weights + 2 * weightStride, p3 = weights + 3 * weightStride;
        TVec a00 = Start(o0, fresh), a01 = Start(o0 + w, fresh), a02 = three ? Start(o0 + 2 * w, fresh) : default;
        TVec a10 = Start(o1, fresh), a11 = Start(o1 + w, fresh), a12 = three ? Start(o1 + 2 * w, fresh) : default;
        TVec a20 = Start(o2, fresh), a21 = Start(o2 + w, fresh), a22 = three ? Start(o2 + 2 * w, fresh) : default;
        TVec a30 = Start(o3, fresh), a31 = Start(o3 + w, fresh), a32 = three ? Start(o3 + 2 * w, fresh) : default;
        float* v = value;
        for (int j = 0; j < count; j++, v += valueStride)
        {
            if (TPrefetch.On) CacheHints.Prefetch(v + prefetchAhead, (three ? 3 : 2) * w * sizeof(float));
            TVec v0 = TOps.Load(v), v1 = TOps.Load(v + w), v2 = three ? TOps.Load(v + 2 * w) : default;
            TVec b = TOps.Create(p0[j]);
            a00 = TOps.MultiplyAdd(b, v0, a00); a01 = TOps.MultiplyAdd(b, v1, a01); if (three) a02 = TOps.MultiplyAdd(b, v2, a02);
            b = TOps.Create(p1[j]);
            a10 = TOps.MultiplyAdd(b, v0, a10); a11 = TOps.MultiplyAdd(b, v1, a11); if (three) a12 = TOps.MultiplyAdd(b, v2, a12);
            b = TOps.Create(p2[j]);
            a20 = TOps.MultiplyAdd(b, v0, a20); a21 = TOps.MultiplyAdd(b, v1, a21); if (three) a22 = TOps.MultiplyAdd(b, v2, a22);
            b = TOps.Create(p3[j]);
            a30 = TOps.MultiplyAdd(b, v0, a30); a31 = TOps.MultiplyAdd(b, v1, a31); if (three) a32 = TOps.MultiplyAdd(b, v2, a32);
        }
        TOps.Store(a00, o0); TOps.Store(a01, o0 + w);
        TOps.Store(a10, o1); TOps.Store(a11, o1 + w);
        TOps.Store(a20, o2); TOps.Store(a21, o2 + w);
        TOps.Store(a30, o3); TOps.Store(a31, o3 + w);
        if (three)
        {
            TOps.Store(a02, o0 + 2 * w); TOps.Store(a12, o1 + 2 * w); TOps.Store(a22, o2 + 2 * w); TOps.Store(a32, o3 + 2 * w);
        }
        if (TMax.On)
        {
            // The pair's third vectors are its second ones again: the maximum is the same.
            FoldMax(rowMax, TOps.Max(TOps.Max(a00, a01), three ? a02 : a01));
            FoldMax(rowMax + w, TOps.Max(TOps.Max(a10, a11), three ? a12 : a11));
            FoldMax(rowMax + 2 * w, TOps.Max(TOps.Max(a20, a21), three ? a22 : a21));
            FoldMax(rowMax + 3 * w, TOps.Max(TOps.Max(a30, a31), three ? a32 : a31));
        }
    }

    /// <summary>
    /// Whether <see cref="AccumulateStreamed"/> reads value rows of <paramref name="columns"/> floats whole: rows of a
    /// multiple of 8 vectors where the CPU has 32 vector registers (head size 128 at 16 lanes).
    /// </summary>
    public static bool StreamsWholeValueRows(int columns) => Avx512F.IsSupported && columns % (8 * TOps.Count) == 0;

    /// <summary>
    /// <see cref="Accumulate"/> (not fresh) for value rows streamed from memory, where <see cref="StreamsWholeValueRows"/>:
    /// per 8-vector column block, rows 0-1 then rows 2-3 through a 2-row × 8-vector tile (16 accumulators; per key 8
    /// value loads and 2 broadcasts for 16 FMAs), so that each value row's block is read whole and in address order,
    /// from memory by the first pair and from L1 by the second. The same sums in the same order as the 4 × 4 tile,
    /// which walks rows of 8 vectors in two strided halves.
    /// </summary>
    public static void AccumulateStreamed(float* output, int columns, float* weights, int weightStride, float* value, nint valueStride, int count)
    {
        Debug.Assert(StreamsWholeValueRows(columns));
        int w = TOps.Count;
        for (int c = 0; c < columns; c += 8 * w)
        {
            for (int r = 0; r < Rows; r += 2)
                AccumulateRowPair8(output + r * columns + c, columns, weights + r * weightStride, weightStride, value + c, valueStride, count);
        }
    }

    /// <summary>The 2-row × 8-vector tile of <see cref="AccumulateStreamed"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AccumulateRowPair8(float* output, int outputStride, float* weights, nint weightStride, float* value, nint valueStride, int count)
    {
        int w = TOps.Count;
        float* o0 = output, o1 = output + outputStride;
        float* p0 = weights, p1 = weights + weightStride;
        TVec a0 = TOps.Load(o0), a1 = TOps.Load(o0 + w), a2 = TOps.Load(o0 + 2 * w), a3 = TOps.Load(o0 + 3 * w);
        TVec a4 = TOps.Load(o0 + 4 * w), a5 = TOps.Load(o0 + 5 * w), a6 = TOps.Load(o0 + 6 * w), a7 = TOps.Load(o0 + 7 * w);
        TVec b0 = TOps.Load(o1), b1 = TOps.Load(o1 + w), b2 = TOps.Load(o1 + 2 * w), b3 = TOps.Load(o1 + 3 * w);
        TVec b4 = TOps.Load(o1 + 4 * w), b5 = TOps.Load(o1 + 5 * w), b6 = TOps.Load(o1 + 6 * w), b7 = TOps.Load(o1 + 7 * w);
        float* v = value;
        for (int j = 0; j < count; j++, v += valueStride)
        {
            TVec x = TOps.Create(p0[j]), y = TOps.Create(p1[j]);
            TVec u = TOps.Load(v); a0 = TOps.MultiplyAdd(x, u, a0); b0 = TOps.MultiplyAdd(y, u, b0);
            u = TOps.Load(v + w); a1 = TOps.MultiplyAdd(x, u, a1); b1 = TOps.MultiplyAdd(y, u, b1);
            u = TOps.Load(v + 2 * w); a2 = TOps.MultiplyAdd(x, u, a2); b2 = TOps.MultiplyAdd(y, u, b2);
            u = TOps.Load(v + 3 * w); a3 = TOps.MultiplyAdd(x, u, a3); b3 = TOps.MultiplyAdd(y, u, b3);
            u = TOps.Load(v + 4 * w); a4 = TOps.MultiplyAdd(x, u, a4); b4 = TOps.MultiplyAdd(y, u, b4);
            u = TOps.Load(v + 5 * w); a5 = TOps.MultiplyAdd(x, u, a5); b5 = TOps.MultiplyAdd(y, u, b5);
            u = TOps.Load(v + 6 * w); a6 = TOps.MultiplyAdd(x, u, a6); b6 = TOps.MultiplyAdd(y, u, b6);
            u = TOps.Load(v + 7 * w); a7 = TOps.MultiplyAdd(x, u, a7); b7 = TOps.MultiplyAdd(y, u, b7);
        }
        TOps.Store(a0, o0); TOps.Store(a1, o0 + w); TOps.Store(a2, o0 + 2 * w); TOps.Store(a3, o0 + 3 * w);
        TOps.Store(a4, o0 + 4 * w); TOps.Store(a5, o0 + 5 * w); TOps.Store(a6, o0 + 6 * w); TOps.Store(a7, o0 + 7 * w);
        TOps.Store(b0, o1); TOps.Store(b1, o1 + w); TOps.Store(b2, o1 + 2 * w); TOps.Store(b3, o1 + 3 * w);
        TOps.Store(b4, o1 + 4 * w); TOps.Store(b5, o1 + 5 * w); TOps.Store(b6, o1 + 6 * w); TOps.Store(b7, o1 + 7 * w);
    }

    /// <summary>An accumulator's start: the output's vector, or zeros for a fresh sum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVec Start(float* output, bool fresh) => fresh ? TOps.Zero : TOps.Load(output);

    /// <summary>
    /// The 4 rows × 4 column vectors of <see cref="Accumulate"/> at <paramref name="output"/> (rows
    /// <paramref name="outputStride"/> apart): per key, 4 value loads and 4 weight broadcasts for 16 FMAs. Each
    /// element gets the same sum, in the same key order, as from the narrower tiles. <see cref="Scores"/> runs it
    /// too, with query rows as the weights and rows of Kᵀ as the values.
    /// </summary>
    /// <typeparam name="TFresh">Sums start from zero instead of the output's contents.</typeparam>
    /// <typeparam name="TPrefetch">Prefetch <paramref name="prefetchAhead"/> floats past each value row.</typeparam>
    /// <typeparam name="TMax">Fold each row's maximum into <paramref name="rowMax"/>, as <see cref="Scores"/> describes.</typeparam>
    /// <typeparam name="TValues">
    /// How the value rows are stored (see <see cref="AccumulateStored{TLoad}"/>): fp32 (<see cref="Float32Loader"/>),
    /// finite IEEE halves read as their bits (<see cref="HalfBitsLoader"/>) or int8 times the row's scale in
    /// <paramref name="rowScales"/> (<see cref="Int8Loader"/>); <paramref name="valueStride"/> and
    /// <paramref name="prefetchAhead"/> count floats whatever the type.
    /// </typeparam>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AccumulateColumns4<TFresh, TPrefetch, TMax, TValues>(float* output, int outputStride, float* weights, nint weightStride, float* value, nint valueStride, int count,
        nint prefetchAhead = 0, float* rowMax = null, float* rowScales = null)
        where TFresh : struct, IFlag
        where TPrefetch : struct, IFlag
        where TMax : struct, IFlag
        where TValues : IElementLoader
    {
        bool fresh = TFresh.On;
        int w = TOps.Count;
        float* o0 = output, o1 = output + outputStride, o2 = output + 2 * outputStride, o3 = output + 3 * outputStride;
        float* p0 = weights, p1 = weights + weightStride, p2 = weights + 2 * weightStride, p3 = weights + 3 * weightStride;
        TVec a00 = Start(o0, fresh), a01 = Start(o0 + w, fresh), a02 = Start(o0 + 2 * w, fresh), a03 = Start(o0 + 3 * w, fresh);
        TVec a10 = Start(o1, fresh), a11 = Start(o1 + w, fresh), a12 = Start(o1 + 2 * w, fresh), a13 = Start(o1 + 3 * w, fresh);
        TVec a20 = Start(o2, fresh), a21 = Start(o2 + w, fresh), a22 = Start(o2 + 2 * w, fresh), a23 = Start(o2 + 3 * w, fresh);
        TVec a30 = Start(o3, fresh), a31 = Start(o3 + w, fresh), a32 = Start(o3 + 2 * w, fresh), a33 = Start(o3 + 3 * w, fresh);
        float* v = value;
        for (int j = 0; j < count; j++, v += valueStride)
        {
            if (TPrefetch.On)
            {
                float* ahead = v + prefetchAhead;
                CacheHints.PrefetchLines((byte*)ahead, 4 * w * TValues.Size); // the row's 4 vectors, unrolled
            }
            TVec v0, v1, v2, v3;
            if (typeof(TValues) == typeof(HalfBitsLoader))
            {
                TOps.LoadInt16BitsPair((short*)v, out v0, out v1);
                TOps.LoadInt16BitsPair((short*)v + 2 * w, out v2, out v3);
                v0 = HalfBitsLoader.FromInt16Bits<TVec, TOps>(v0); v1 = HalfBitsLoader.FromInt16Bits<TVec, TOps>(v1);
                v2 = HalfBitsLoader.FromInt16Bits<TVec, TOps>(v2); v3 = HalfBitsLoader.FromInt16Bits<TVec, TOps>(v3);
            }
            else if (typeof(TValues) == typeof(Int8Loader))
            {
                TVec scale = TOps.Create(rowScales[j]);
                byte* bytes = (byte*)v;
                v0 = Int8Loader.Load<TVec, TOps>(bytes, scale); v1 = Int8Loader.Load<TVec, TOps>(bytes + w, scale);
                v2 = Int8Loader.Load<TVec, TOps>(bytes + 2 * w, scale); v3 = Int8Loader.Load<TVec, TOps>(bytes + 3 * w, scale);
            }
            else
            {
                v0 = TOps.Load(v); v1 = TOps.Load(v + w); v2 = TOps.Load(v + 2 * w); v3 = TOps.Load(v + 3 * w);
            }
            TVec b = TOps.Create(p0[j]);
            a00 = TOps.MultiplyAdd(b, v0, a00); a01 = TOps.MultiplyAdd(b, v1, a01); a02 = TOps.MultiplyAdd(b, v2, a02); a03 = TOps.MultiplyAdd(b, v3, a03);
            b = TOps.Create(p1[j]);
            a10 = TOps.MultiplyAdd(b, v0, a10); a11 = TOps.MultiplyAdd(b, v1, a11); a12 = TOps.MultiplyAdd(b, v2, a12); a13 = TOps.MultiplyAdd(b, v3, a13);
            b = TOps.Create(p2[j]);
            a20 = TOps.MultiplyAdd(b, v0, a20); a21 = TOps.MultiplyAdd(b, v1, a21); a22 = TOps.MultiplyAdd(b, v2, a22); a23 = TOps.MultiplyAdd(b, v3, a23);
            b = TOps.Create(p3[j]);
            a30 = TOps.MultiplyAdd(b, v0, a30); a31 = TOps.MultiplyAdd(b, v1, a31); a32 = TOps.MultiplyAdd(b, v2, a32); a33 = TOps.MultiplyAdd(b, v3, a33);
        }
        TOps.Store(a00, o0); TOps.Store(a01, o0 + w); TOps.Store(a02, o0 + 2 * w); TOps.Store(a03, o0 + 3 * w);
        TOps.Store(a10, o1); TOps.Store(a11, o1 + w); TOps.Store(a12, o1 + 2 * w); TOps.Store(a13, o1 + 3 * w);
        TOps.Store(a20, o2); TOps.Store(a21, o2 + w); TOps.Store(a22, o2 + 2 * w); TOps.Store(a23, o2 + 3 * w);
        TOps.Store(a30, o3); TOps.Store(a31, o3 + w); TOps.Store(a32, o3 + 2 * w); TOps.Store(a33, o3 + 3 * w);
        if (TMax.On)
        {
            FoldMax(rowMax, TOps.Max(TOps.Max(a00, a01), TOps.Max(a02, a03)));
            FoldMax(rowMax + w, TOps.Max(TOps.Max(a10, a11), TOps.Max(a12, a13)));
            FoldMax(rowMax + 2 * w, TOps.Max(TOps.Max(a20, a21), TOps.Max(a22, a23)));
            FoldMax(rowMax + 3 * w, TOps.Max(TOps.Max(a30, a31), TOps.Max(a32, a33)));
        }
    }

    /// <summary>
    /// output[c] += Σ_{j &lt; count} weights[j] · value[j, c] for one row (decode rows, edges of masked tiles).
    /// Keys run inside column chunks of 8 or 4 vectors held in registers, so each value row is read as one
    /// sequential run per chunk and the accumulators form independent FMA chains.
    /// </summary>
    public static void AccumulateRow(float* output, int columns, float* weights, float* value, nint valueStride, int count) =>
        AccumulateRow<Float32Loader>(output, columns, weights, (byte*)value, valueStride, count);

    /// <summary>
    /// <see cref="AccumulateRow(float*, int, float*, float*, nint, int)"/> over value rows stored as <typeparamref name="TLoad"/>,
    /// widened as they are read; <paramref name="valueStride"/> counts elements. A loader that leaves the row's scale
    /// out (<see cref="IElementLoader.FoldsRowScale"/>) weighs row j by weights[j]·scales[j] instead, one multiply per
    /// row; <paramref name="scales"/> is read by no other loader.
    /// </summary>
    public static void AccumulateRow<TLoad>(float* output, int columns, float* weights, byte* value, nint valueStride, int count, float* scales = null)
        where TLoad : IElementLoader
    {
        int w = TOps.Count, size = TLoad.Size;
        nint rowBytes = valueStride * size;
        int c = 0;
        for (; c + 8 * w <= columns; c += 8 * w)
        {
            float* o = output + c;
            TVec a0 = TOps.Load(o), a1 = TOps.Load(o + w), a2 = TOps.Load(o + 2 * w), a3 = TOps.Load(o + 3 * w);
            TVec a4 = TOps.Load(o + 4 * w), a5 = TOps.Load(o + 5 * w), a6 = TOps.Load(o + 6 * w), a7 = TOps.Load(o + 7 * w);
            byte* v = value + c * size;
            nint ahead = CacheHints.StreamAheadRows(8 * w * size) * rowBytes;
            for (int j = 0; j < count; j++, v += rowBytes)
            {
                if (size == 1) CacheHints.PrefetchLines(v + ahead, 8 * w); // unrolled: no loop per row (int8 rows are few instructions each)
                TVec b = TOps.Create(Weight<TLoad>(weights, scales, j)), sc = TOps.Zero; // the loaders used here read no scale
                if (typeof(TLoad) == typeof(Int8ValueLoader) && TOps.ReadsInt8InBlocks)
                {
                    // int8: two vector-wide loads of 4·Count values each instead of eight (see DecodeKernel.DotPartial4).
                    TVec x = TOps.LoadInt8Block((sbyte*)v);
                    a0 = TOps.MultiplyAdd(b, TOps.Int8Part(x, 0), a0); a1 = TOps.MultiplyAdd(b, TOps.Int8Part(x, 1), a1);
                    a2 = TOps.MultiplyAdd(b, TOps.Int8Part(x, 2), a2); a3 = TOps.MultiplyAdd(b, TOps.Int8Part(x, 3), a3);
                    x = TOps.LoadInt8Block((sbyte*)v + 4 * w);
                    a4 = TOps.MultiplyAdd(b, TOps.Int8Part(x, 0), a4); a5 = TOps.MultiplyAdd(b, TOps.Int8Part(x, 1), a5);
                    a6 = TOps.MultiplyAdd(b, TOps.Int8Part(x, 2), a6); a7 = TOps.MultiplyAdd(b, TOps.Int8Part(x, 3), a7);
                    continue;
                }
                a0 = TOps.MultiplyAdd(b, TLoad.Load<TVec, TOps>(v, sc), a0); a1 = TOps.MultiplyAdd(b, TLoad.Load<TVec, TOps>(v + w * size, sc), a1);
                a2 = TOps.MultiplyAdd(b, TLoad.Load<TVec, TOps>(v + 2 * w * size, sc), a2); a3 = TOps.MultiplyAdd(b, TLoad.Load<TVec, TOps>(v + 3 * w * size, sc), a3);
                a4 = TOps.MultiplyAdd(b, TLoad.Load<TVec, TOps>(v + 4 * w * size, sc), a4); a5 = TOps.MultiplyAdd(b, TLoad.Load<TVec, TOps>(v + 5 * w * size, sc), a5);
                a6 = TOps.MultiplyAdd(b, TLoad.Load<TVec, TOps>(v + 6 * w * size, sc), a6); a7 = TOps.MultiplyAdd(b, TLoad.Load<TVec, TOps>(v + 7 * w * size, sc), a7);
            }
            TOps.Store(a0, o); TOps.Store(a1, o + w); TOps.Store(a2, o + 2 * w); TOps.Store(a3, o + 3 * w);
            TOps.Store(a4, o + 4 * w); TOps.Store(a5, o + 5 * w); TOps.Store(a6, o + 6 * w); TOps.Store(a7, o + 7 * w);
        }
        for (; c + 4 * w <= columns; c += 4 * w)
        {
            float* o = output + c;
            TVec a0 = TOps.Load(o), a1 = TOps.Load(o + w), a2 = TOps.Load(o + 2 * w), a3 = TOps.Load(o + 3 * w);
            byte* v = value + c * size;
            for (int j = 0; j < count; j++, v += rowBytes)
            {
                TVec b = TOps.Create(Weight<TLoad>(weights, scales, j)), sc = TOps.Zero; // the loaders used here read no scale
                a0 = TOps.MultiplyAdd(b, TLoad.Load<TVec, TOps>(v, sc), a0); a1 = TOps.MultiplyAdd(b, TLoad.Load<TVec, TOps>(v + w * size, sc), a1);
                a2 = TOps.MultiplyAdd(b, TLoad.Load<TVec, TOps>(v + 2 * w * size, sc), a2); a3 = TOps.MultiplyAdd(b, TLoad.Load<TVec, TOps>(v + 3 * w * size, sc), a3);
            }
            TOps.Store(a0, o); TOps.Store(a1, o + w); TOps.Store(a2, o + 2 * w); TOps.Store(a3, o + 3 * w);
        }
        for (; c + w <= columns; c += w)
        {
            TVec a = TOps.Load(output + c);
            byte* v = value + c * size;
            for (int j = 0; j < count; j++, v += rowBytes)
                a = TOps.MultiplyAdd(TOps.Create(Weight<TLoad>(weights, scales, j)), TLoad.Load<TVec, TOps>(v, TOps.Zero), a);
            TOps.Store(a, output + c);
        }
        for (; c < columns; c++)
        {
            float a = output[c];
            byte* v = value + c * size;
            for (int j = 0; j < count; j++, v += rowBytes)
                a = float.MultiplyAddEstimate(Weight<TLoad>(weights, scales, j), TLoad.Load<float, ScalarOps>(v, 1f), a);
            output[c] = a;
        }
    }

    /// <summary>The weight of row j: times the row's scale for a loader that leaves it out.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Weight<TLoad>(float* weights, float* scales, int j) where TLoad : IElementLoader =>
        TLoad.FoldsRowScale ? weights[j] * scales[j] : weights[j];

    /// <summary>
    /// <see cref="AccumulateRow{TLoad}"/> for IEEE half value rows, read as their bits (<see cref="HalfBitsLoader"/>)
    /// against <paramref name="rebiasedWeights"/> (the weights times 2¹¹²), with the check for ±∞ and NaN fused into
    /// the same pass: the largest magnitude read is tracked, and only a half with exponent 31 reaches 2⁻⁹⁶ as its
    /// bits. A column block that holds one is not stored: it is added again from the output as it was, with
    /// <see cref="HalfLoader"/> and the plain <paramref name="weights"/>, so ±∞ and NaN reach the output as they
    /// would from the widened values, and finite blocks give the same bits either way (each column's sum is its own).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AccumulateRowHalfBits(float* output, int columns, float* rebiasedWeights, float* weights, byte* value, nint valueStride, int count)
    {
        int w = TOps.Count;
        nint rowBytes = valueStride * 2;
        int c = 0;
        for (; c + 8 * w <= columns; c += 8 * w)
        {
            float* o = output + c;
            TVec a0 = TOps.Load(o), a1 = TOps.Load(o + w), a2 = TOps.Load(o + 2 * w), a3 = TOps.Load(o + 3 * w);
            TVec a4 = TOps.Load(o + 4 * w), a5 = TOps.Load(o + 5 * w), a6 = TOps.Load(o + 6 * w), a7 = TOps.Load(o + 7 * w);
            TVec even = TOps.Zero, odd = TOps.Zero;
            byte* v = value + c * 2;
            nint ahead = CacheHints.StreamAheadRows(16 * w) * rowBytes;
            for (int j = 0; j < count; j++, v += rowBytes)
            {
                CacheHints.Prefetch(v + ahead, 16 * w);
                TVec b = TOps.Create(rebiasedWeights[j]), sc = TOps.Zero;
                TVec x = HalfBitsLoader.Load<TVec, TOps>(v, sc); a0 = TOps.MultiplyAdd(b, x, a0); even = TOps.MaxMagnitude(even, x);
                x = HalfBitsLoader.Load<TVec, TOps>(v + 2 * w, sc); a1 = TOps.MultiplyAdd(b, x, a1); odd = TOps.MaxMagnitude(odd, x);
                x = HalfBitsLoader.Load<TVec, TOps>(v + 4 * w, sc); a2 = TOps.MultiplyAdd(b, x, a2); even = TOps.MaxMagnitude(even, x);
                x = HalfBitsLoader.Load<TVec, TOps>(v + 6 * w, sc); a3 = TOps.MultiplyAdd(b, x, a3); odd = TOps.MaxMagnitude(odd, x);
                x = HalfBitsLoader.Load<TVec, TOps>(v + 8 * w, sc); a4 = TOps.MultiplyAdd(b, x, a4); even = TOps.MaxMagnitude(even, x);
                x = HalfBitsLoader.Load<TVec, TOps>(v + 10 * w, sc); a5 = TOps.MultiplyAdd(b, x, a5); odd = TOps.MaxMagnitude(odd, x);
                x = HalfBitsLoader.Load<TVec, TOps>(v + 12 * w, sc); a6 = TOps.MultiplyAdd(b, x, a6); even = TOps.MaxMagnitude(even, x);
                x = HalfBitsLoader.Load<TVec, TOps>(v + 14 * w, sc); a7 = TOps.MultiplyAdd(b, x, a7); odd = TOps.MaxMagnitude(odd, x);
            }
            if (TOps.MaxAcross(TOps.Max(even, odd)) >= HalfBitsLoader.NonFinite)
            {
                AccumulateRow<HalfLoader>(o, 8 * w, weights, value + c * 2, valueStride, count);
                continue;
            }
            TOps.Store(a0, o); TOps.Store(a1, o + w); TOps.Store(a2, o + 2 * w); TOps.Store(a3, o + 3 * w);
            TOps.Store(a4, o + 4 * w); TOps.Store(a5, o + 5 * w); TOps.Store(a6, o + 6 * w); TOps.Store(a7, o + 7 * w);
        }
        if (c < columns)
        {
            // The last columns (fewer than 8 vectors): scanned first, then added the same way.
            byte* rest = value + c * 2;
            if (ElementConversion<TVec, TOps>.AllHalvesFinite(rest, valueStride, count, columns - c)) AccumulateRow<HalfBitsLoader>(output + c, columns - c, rebiasedWeights, rest, valueStride, count);
            else AccumulateRow<HalfLoader>(output + c, columns - c, weights, rest, valueStride, count);
        }
    }

    /// <summary>
    /// <see cref="Accumulate(float*, int, float*, int, float*, nint, int, bool, nint)"/> for 4 rows over value rows
    /// stored narrower, read in the tile (<paramref name="rowBytes"/> apart, a multiple of 4): finite IEEE halves as
    /// their bits (<see cref="HalfBitsLoader"/>) against weights that carry 2¹¹², or int8 times each row's scale in
    /// <paramref name="rowScales"/> (<see cref="Int8Loader"/>). Either way the products, in the same order per
    /// element, of the rows widened. <paramref name="columns"/> is whole 4-vector panels, on a CPU with 32 vector
    /// registers. A nonzero <paramref name="prefetchAhead"/> (bytes, a multiple of 4) prefetches the value rows that
    /// far on, a line per line read.
    /// </summary>
    public static void AccumulateStored<TLoad>(float* output, int columns, float* weights, int weightStride, byte* value, nint rowBytes, int count, nint prefetchAhead,
        float* rowScales = null)
        where TLoad : IElementLoader
    {
        int w = TOps.Count;
        Debug.Assert(Avx512F.IsSupported && columns % (4 * w) == 0 && rowBytes % sizeof(float) == 0);
        Debug.Assert(typeof(TLoad) == typeof(HalfBitsLoader) || (typeof(TLoad) == typeof(Int8Loader) && rowScales != null));
        // The tile walks rows in floats: a stored row's part is reinterpreted, its stride and the prefetch distance in floats.
        for (int c = 0; c < columns; c += 4 * w)
        {
            float* part = (float*)(value + c * TLoad.Size);
            if (prefetchAhead != 0) AccumulateColumns4<No, Yes, No, TLoad>(output + c, columns, weights, weightStride, part, rowBytes / sizeof(float), count, prefetchAhead / sizeof(float), rowScales: rowScales);
            else AccumulateColumns4<No, No, No, TLoad>(output + c, columns, weights, weightStride, part, rowBytes / sizeof(float), count, rowScales: rowScales);
        }
    }

    /// <summary>
    /// <see cref="AccumulateRow"/> over the keys x in [from, to) whose bit <paramref name="bit"/> in codes[x] is clear,
    /// run by run: keys a tensor mask removed are skipped, so NaN or ±∞ in their value rows cannot reach the output.
    /// <paramref name="weights"/> and <paramref name="value"/> are indexed from key 0 of the range's coordinates.
    /// </summary>
    public static void AccumulateRowUnmasked(float* output, int columns, float* weights, float* value, nint valueStride, int from, int to, byte* codes, int bit)
    {
        int x = from;
        while (x < to)
        {
            while (x < to && (codes[x] & bit) != 0) x++;
            int run = x;
            while (x < to && (codes[x] & bit) == 0) x++;
            if (x > run) AccumulateRow(output, columns, weights + run, value + run * valueStride, valueStride, x - run);
        }
    }

    /// <summary>P·V for one row over [from, to), skipping the keys marked in <paramref name="codes"/> when <paramref name="masked"/>.</summary>
    public static void AccumulateRowRange(float* output, int dv, float* weights, float* values, nint valueStride, int from, int to, bool masked, byte* codes, int bit)
    {
        if (from >= to) return;
        if (!masked) AccumulateRow(output, dv, weights + from, values + from * valueStride, valueStride, to - from);
        else AccumulateRowUnmasked(output, dv, weights, values, valueStride, from, to, codes, bit);
    }

    /// <summary>
    /// <see cref="Accumulate"/> for 4 rows over [from, to), skipping each (row, key) whose bit (1 &lt;&lt; row) is set in
    /// codes[key]: runs of keys no row masks go through the 4-row tile, the others row by row.
    /// </summary>
    public static void AccumulateUnmasked(float* output, int columns, float* weights, int weightStride, float* value, nint valueStride, int from, int to, byte* codes)
    {
        int x = from;
        while (x < to)
        {
            int run = x;
            while (x < to && codes[x] == 0) x++;
            if (x > run) Accumulate(output, columns, weights + run, weightStride, value + run * valueStride, valueStride, x - run);
            for (; x < to && codes[x] != 0; x++)
            {
                for (int r = 0; r < Rows; r++)
                {
                    if ((codes[x] & (1 << r)) == 0)
                        AccumulateRow(output + r * columns, columns, weights + r * weightStride + x, value + x * valueStride, valueStride, 1);
                }
            }
        }
    }

    /// <summary>destination[c] = source[c] / <paramref name="divisor"/>: one rounding per element, where multiplying by a rounded reciprocal takes two.</summary>
    public static void Divide(float* source, float* destination, int count, float divisor)
    {
        int w = TOps.Count;
        TVec d = TOps.Create(divisor);
        int c = 0;
        for (; c + w <= count; c += w) TOps.Store(TOps.Divide(TOps.Load(source + c), d), destination + c);
        for (; c < count; c++) destination[c] = source[c] / divisor;
    }

    /// <summary>destination[c] = source[c] · factor over <paramref name="count"/> elements.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Scale(float* source, float* destination, int count, float factor)
    {
        int w = TOps.Count;
        TVec f = TOps.Create(factor);
        int c = 0;
        for (; c + w <= count; c += w) TOps.Store(TOps.Multiply(TOps.Load(source + c), f), destination + c);
        for (; c < count; c++) destination[c] = source[c] * factor;
    }
}

/// <summary>A compile-time option of a generic kernel: each instantiation over <see cref="Yes"/> or <see cref="No"/> is its own code, the test folded away.</summary>
internal interface IFlag
{
    static abstract bool On { get; }
}

internal readonly struct Yes : IFlag
{
    public static bool On => true;
}

internal readonly struct No : IFlag
{
    public static bool On => false;
}
