using System.Numerics.Tensors;

namespace FastAttention.Bench;

/// <summary>
/// What a .NET developer writes first with TensorPrimitives: a Dot per key, a softmax, a MultiplyAdd per key.
/// TensorPrimitives.SoftMax subtracts no maximum (scores like [1000, 999] come back NaN), so the max is subtracted
/// here by hand to keep the baseline correct. Multi-threaded over (head, query row) with Parallel.For.
/// </summary>
public static class NaiveAttention
{
    public static void Compute(float[] query, float[] key, float[] value, float[] output, BenchCase c, int threads)
    {
        int d = c.HeadSize, lq = c.QueryCount, lk = c.KeyCount, group = c.QueryHeads / c.KeyValueHeads;
        float scale = 1f / MathF.Sqrt(d);
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = threads };
        Parallel.For(0, c.QueryHeads * lq, parallel, () => new float[lk], (row, _, scores) =>
        {
            int h = row / lq, i = row % lq, g = h / group;
            int visible = c.Causal ? Math.Min(lk, i + lk - lq + 1) : lk;
            ReadOnlySpan<float> q = query.AsSpan((h * lq + i) * d, d);
            for (int j = 0; j < visible; j++)
                scores[j] = TensorPrimitives.Dot(q, key.AsSpan((g * lk + j) * d, d)) * scale;
            Span<float> s = scores.AsSpan(0, visible);
            float max = TensorPrimitives.Max(s);
            TensorPrimitives.Subtract(s, max, s);
            TensorPrimitives.Exp(s, s);
            TensorPrimitives.Divide(s, TensorPrimitives.Sum(s), s);
            Span<float> o = output.AsSpan((h * lq + i) * d, d);
            o.Clear();
            for (int j = 0; j < visible; j++)
                TensorPrimitives.MultiplyAdd(value.AsSpan((g * lk + j) * d, d), s[j], o, o);
            return scores;
        }, static _ => { });
    }
}
