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
        in AttentionShape shape, in AttentionOptions options = default, Span<double> logSumExp = default, Span<double> weights = default)
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
            double max = double.NegativeInfinity;
            bool any = false;
            for (int j = 0; j < lk; j++)
            {
                visible[j] = IsVisible(options.Causal, i, j, lq, lk);
                if (!visible[j]) continue;
                double dot = 0;
                for (int t = 0; t < d; t++)
                    dot += (double)query[(int)At(shape.QueryLayout, b, h, i, t)] * key[(int)At(shape.KeyLayout, b, g, j, t)];
                scores[j] = scale * dot;
                max = any ? Math.Max(max, scores[j]) : scores[j];
                any = true;
            }

            double sum = 0;
            if (any)
            {
                for (int j = 0; j < lk; j++)
                    if (visible[j]) sum += Math.Exp(scores[j] - max);
            }
            for (int c = 0; c < dv; c++) output[(int)(row * dv + c)] = 0;
            if (!logSumExp.IsEmpty) logSumExp[(int)row] = any ? max + Math.Log(sum) : double.NegativeInfinity;
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
