namespace FastAttention;

/// <summary>
/// The oracle: attention in fp64 with obvious loops, sharing no code with the fast kernels. It materialises the
/// weights, so it is slow and memory-hungry by design; use it to verify your own calls of <see cref="Attention"/>
/// or to inspect which keys a query attends to.
/// </summary>
public static class ReferenceAttention
{
    /// <summary>
    /// Computes attention in fp64. Inputs are read through <paramref name="shape"/>'s layouts; outputs are dense:
    /// <paramref name="output"/> <c>[batch, queryHeads, queryCount, valueHeadSize]</c>,
    /// <paramref name="logSumExp"/> <c>[batch, queryHeads, queryCount]</c> (optional) and
    /// <paramref name="weights"/> <c>[batch, queryHeads, queryCount, keyCount]</c> (optional: pass an empty span to skip).
    /// </summary>
    /// <exception cref="ArgumentException">A buffer is too short for the shape.</exception>
    public static void Compute(ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value, Span<double> output,
        in AttentionShape shape, in AttentionOptions options = default, Span<double> logSumExp = default, Span<double> weights = default) =>
        Compute(query, key, value, output, shape, options, default, logSumExp, weights);

    /// <summary>
    /// Computes attention in fp64 with the masks and per-head terms of <see cref="AttentionMasks"/>, exactly as the
    /// contract states them (see <see cref="AttentionMasks"/>). Outputs are dense as in the overload without masks.
    /// </summary>
    /// <exception cref="ArgumentException">A buffer is too short for the shape.</exception>
    public static void Compute(ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value, Span<double> output,
        in AttentionShape shape, in AttentionOptions options, scoped in AttentionMasks masks, Span<double> logSumExp = default, Span<double> weights = default)
    {
        int batch = shape.Batch, hq = shape.QueryHeads, lq = shape.QueryCount, lk = shape.KeyCount;
        int d = shape.HeadSize, dv = shape.ValueHeadSize, group = shape.QueryHeads / shape.KeyValueHeads;
        Require(query.Length >= shape.QueryLength, nameof(query));
        Require(key.Length >= shape.KeyLength, nameof(key));
        Require(value.Length >= shape.ValueLength, nameof(value));
        Require(output.Length >= (long)batch * hq * lq * dv, nameof(output));
        Require(logSumExp.IsEmpty || logSumExp.Length >= (long)batch * hq * lq, nameof(logSumExp));
        Require(weights.IsEmpty || weights.Length >= (long)batch * hq * lq * lk, nameof(weights));

        double scale = options.Scale ?? 1.0 / Math.Sqrt(d);
        var scores = new double[lk];
        var visible = new bool[lk];
        for (int b = 0; b < batch; b++)
        for (int h = 0; h < hq; h++)
        for (int i = 0; i < lq; i++)
        {
            int g = h / group;
            long row = ((long)b * hq + h) * lq + i;
            double aligned = AlignedPosition(shape, options, masks, b, i);
            bool hasSink = !masks.Sinks.IsEmpty && masks.Sinks[h] != float.NegativeInfinity;
            double max = hasSink ? masks.Sinks[h] : double.NegativeInfinity;
            bool any = false;
            for (int j = 0; j < lk; j++)
            {
                visible[j] = IsVisible(shape, options, masks, b, h, i, j);
                if (!visible[j]) continue;
                double dot = 0;
                for (int t = 0; t < d; t++)
                    dot += (double)query[(int)At(shape.QueryLayout, b, h, i, t)] * key[(int)At(shape.KeyLayout, b, g, j, t)];
                double score = scale * dot;
                if (options.SoftCap is float cap) score = cap * Math.Tanh(score / cap);
                if (!masks.Bias.IsEmpty)
                {
                    double term = masks.Bias[(int)MaskIndex(masks.BiasBroadcast, shape, b, h, i, j)];
                    if (double.IsNegativeInfinity(term))
                    {
                        visible[j] = false; // −∞ bias masks the key, whatever its K and V rows hold
                        continue;
                    }
                    score += term;
                }
                if (!masks.AlibiSlopes.IsEmpty) score -= masks.AlibiSlopes[h] * Math.Abs(aligned - j);
                scores[j] = score;
                max = any || hasSink ? Math.Max(max, score) : score;
                any = true;
            }

            double sum = hasSink ? Math.Exp(masks.Sinks[h] - max) : 0;
            if (any)
            {
                for (int j = 0; j < lk; j++)
                    if (visible[j]) sum += Math.Exp(scores[j] - max);
            }
            for (int c = 0; c < dv; c++) output[(int)(row * dv + c)] = 0;
            if (!logSumExp.IsEmpty) logSumExp[(int)row] = any || hasSink ? max + Math.Log(sum) : double.NegativeInfinity;
            for (int j = 0; j < lk; j++)
            {
                double p = visible[j] ? Math.Exp(scores[j] - max) / sum : 0;
                if (!weights.IsEmpty) weights[(int)(row * lk + j)] = p;
                if (!visible[j]) continue; // a masked key contributes nothing, whatever its value row holds
                for (int c = 0; c < dv; c++)
                    output[(int)(row * dv + c)] += p * value[(int)At(shape.ValueLayout, b, g, j, c)];
            }
        }
    }

    /// <summary>
    /// Whether key <paramref name="j"/> is visible to query row <paramref name="i"/> of head <paramref name="h"/> in
    /// batch <paramref name="b"/> under the index masks (key length, causal, window) and the boolean mask. A −∞
    /// bias entry masks too; that is a score, so the reference's Compute applies it.
    /// </summary>
    public static bool IsVisible(in AttentionShape shape, in AttentionOptions options, scoped in AttentionMasks masks, int b, int h, int i, int j)
    {
        int length = masks.KeyLengths.IsEmpty ? shape.KeyCount : masks.KeyLengths[b];
        if (j >= length) return false;
        double aligned = AlignedPosition(shape, options, masks, b, i);
        if (options.Causal != CausalMask.None && j > aligned) return false;
        if (options.Window is SlidingWindow window && (j < aligned - window.Left || j > aligned + window.Right)) return false;
        return masks.Mask.IsEmpty || masks.Mask[(int)MaskIndex(masks.MaskBroadcast, shape, b, h, i, j)];
    }

    private static double AlignedPosition(in AttentionShape shape, in AttentionOptions options, scoped in AttentionMasks masks, int b, int i)
    {
        int length = masks.KeyLengths.IsEmpty ? shape.KeyCount : masks.KeyLengths[b];
        bool bottomRight = options.Causal == CausalMask.BottomRight || (options.Causal == CausalMask.None && options.Alignment == DiagonalAlignment.BottomRight);
        return bottomRight ? (double)i + length - shape.QueryCount : i;
    }

    private static long MaskIndex(MaskBroadcast broadcast, in AttentionShape shape, int b, int h, int i, int j)
    {
        long heads = (broadcast & MaskBroadcast.Heads) != 0 ? 1 : shape.QueryHeads;
        long bb = (broadcast & MaskBroadcast.Batch) != 0 ? 0 : b, hh = (broadcast & MaskBroadcast.Heads) != 0 ? 0 : h;
        return ((bb * heads + hh) * shape.QueryCount + i) * shape.KeyCount + j;
    }

    /// <summary>Whether key <paramref name="j"/> is visible to query row <paramref name="i"/> under the causal mask.</summary>
    public static bool IsVisible(CausalMask causal, int i, int j, int queryCount, int keyCount) => causal switch
    {
        CausalMask.None => true,
        CausalMask.TopLeft => j <= i,
        CausalMask.BottomRight => j <= (long)i + keyCount - queryCount,
        _ => throw new ArgumentOutOfRangeException(nameof(causal)),
    };

    private static long At(TensorLayout layout, int b, int h, int r, int c) =>
        layout.Offset + b * layout.BatchStride + h * layout.HeadStride + r * layout.RowStride + c;

    private static void Require(bool condition, string name)
    {
        if (!condition) throw new ArgumentException($"'{name}' is too short for the shape.", name);
    }
}

/// <summary>
/// The accuracy contract of <see cref="Attention"/> as a number, for verification runs: the largest error of an
/// output against <see cref="ReferenceAttention"/> in units of the stated bound
/// <c>max|V| · 2⁻²⁴ · (1 + C_i) · (1 + (√keyCount + √headSize) / 2)</c>, where C_i is the largest logit magnitude
/// |scale|·Σ_t |q_it·k_jt| over the keys row i sees. A result of at most 1 meets the contract.
/// </summary>
public static class AttentionAccuracy
{
    /// <summary>Runs the reference and returns the largest error of <paramref name="output"/> (read through the shape's output layout) in bound units.</summary>
    public static double ErrorInBoundUnits(ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value, ReadOnlySpan<float> output,
        in AttentionShape shape, in AttentionOptions options = default)
    {
        int b = shape.Batch, hq = shape.QueryHeads, lq = shape.QueryCount, lk = shape.KeyCount, d = shape.HeadSize, dv = shape.ValueHeadSize;
        int group = hq / shape.KeyValueHeads;
        var expected = new double[(long)b * hq * lq * dv];
        ReferenceAttention.Compute(query, key, value, expected, shape, options);
        double scale = Math.Abs(options.Scale ?? 1.0 / Math.Sqrt(d));
        double maxV = 0;
        for (int x = 0; x < b; x++)
        for (int g = 0; g < shape.KeyValueHeads; g++)
        for (int j = 0; j < lk; j++)
        for (int c = 0; c < dv; c++)
            maxV = Math.Max(maxV, Math.Abs(value[(int)At(shape.ValueLayout, x, g, j, c)]));
        double length = 1 + (Math.Sqrt(lk) + Math.Sqrt(d)) / 2;
        double worst = 0;
        for (int x = 0; x < b; x++)
        for (int h = 0; h < hq; h++)
        for (int i = 0; i < lq; i++)
        {
            double c = 0;
            for (int j = 0; j < lk; j++)
            {
                if (!ReferenceAttention.IsVisible(options.Causal, i, j, lq, lk)) continue;
                double sum = 0;
                for (int t = 0; t < d; t++)
                    sum += Math.Abs((double)query[(int)At(shape.QueryLayout, x, h, i, t)] * key[(int)At(shape.KeyLayout, x, h / group, j, t)]);
                c = Math.Max(c, scale * sum);
            }
            double bound = maxV * Math.Pow(2, -24) * (1 + c) * length;
            for (int col = 0; col < dv; col++)
            {
                double actual = output[(int)At(shape.OutputLayout, x, h, i, col)];
                double error = Math.Abs(actual - expected[(((long)x * hq + h) * lq + i) * dv + col]);
                if (double.IsNaN(error)) return double.PositiveInfinity;
                if (error > 0) worst = Math.Max(worst, bound > 0 ? error / bound : double.PositiveInfinity);
            }
        }
        return worst;
    }

    private static long At(TensorLayout layout, int b, int h, int r, int c) =>
        layout.Offset + b * layout.BatchStride + h * layout.HeadStride + r * layout.RowStride + c;
}
