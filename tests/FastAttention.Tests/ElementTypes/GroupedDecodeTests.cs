using FastAttention.Kernels;
using Xunit;

namespace FastAttention.Tests.ElementTypes;

/// <summary>
/// Grouped-query decode over Half and int8 keys and values (4 query heads per key-value head, one query position):
/// widened a chunk at a time, it must give the bits of fp32 inputs holding the widened values, including when a
/// score of −∞ from the inputs sends a slice back to being widened whole.
/// </summary>
public class GroupedDecodeTests
{
    [Theory]
    [InlineData(false, 1)]
    [InlineData(false, 2)]
    [InlineData(true, 1)]  // a −∞ key element and ALiBi: some scores −∞, counted as removed
    [InlineData(true, 2)]
    public void Half_EqualsFp32OnTheWidenedValues(bool minusInfinity, int threads)
    {
        const int kvHeads = 2, group = 4, keys = 1300, d = 40;
        var random = new Random(11);
        float[] q = Fill(random, kvHeads * group * d), k = Fill(random, kvHeads * keys * d), v = Fill(random, kvHeads * keys * d);
        for (int i = 0; i < q.Length; i++) q[i] = Math.Abs(q[i]) + 0.01f; // positive: q · k = −∞ where k has −∞
        Half[] kh = Array.ConvertAll(k, x => (Half)x), vh = Array.ConvertAll(v, x => (Half)x);
        if (minusInfinity)
        {
            kh[(1 * keys + 617) * d + 5] = Half.NegativeInfinity; // head 1, key 617
            kh[(0 * keys + 1299) * d + 39] = Half.NegativeInfinity; // head 0, the last key
        }
        float[] kw = Array.ConvertAll(kh, x => (float)x), vw = Array.ConvertAll(vh, x => (float)x);
        float[] slopes = minusInfinity ? [0.5f, 0.25f, 0.125f, 0.0625f, 0.03f, 0.02f, 0.01f, 0.005f] : [];
        var shape = new AttentionShape(1, kvHeads * group, kvHeads, 1, keys, d, d,
            TensorLayout.Bhsd(kvHeads * group, 1, d), TensorLayout.Bhsd(kvHeads, keys, d), TensorLayout.Bhsd(kvHeads, keys, d), TensorLayout.Bhsd(kvHeads * group, 1, d));
        var options = new AttentionOptions { MaxDegreeOfParallelism = threads };
        var masks = new AttentionMasks { AlibiSlopes = slopes };
        float[] expected = new float[kvHeads * group * d], actual = new float[expected.Length];
        Attention.Compute(q, kw, vw, expected, shape, options, masks);
        Attention.Compute(q, kh, vh, actual, shape, options, masks);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]), $"output {i}: {actual[i]} against {expected[i]}");
        Assert.All(actual, x => Assert.True(float.IsFinite(x)));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Int8_EqualsFp32OnTheDequantizedValues(int threads)
    {
        const int kvHeads = 2, group = 8, keys = 2100, d = 64;
        var random = new Random(5);
        float[] q = Fill(random, kvHeads * group * d), k = Fill(random, kvHeads * keys * d), v = Fill(random, kvHeads * keys * d);
        sbyte[] ki = new sbyte[k.Length], vi = new sbyte[v.Length];
        float[] ks = new float[kvHeads * keys], vs = new float[kvHeads * keys], kw = new float[k.Length], vw = new float[v.Length];
        Int8Quantization.QuantizeRows(k, d, ki, ks);
        Int8Quantization.QuantizeRows(v, d, vi, vs);
        Int8Quantization.DequantizeRows(ki, ks, d, kw);
        Int8Quantization.DequantizeRows(vi, vs, d, vw);
        var shape = new AttentionShape(1, kvHeads * group, kvHeads, 1, keys, d, d,
            TensorLayout.Bhsd(kvHeads * group, 1, d), TensorLayout.Bhsd(kvHeads, keys, d), TensorLayout.Bhsd(kvHeads, keys, d), TensorLayout.Bhsd(kvHeads * group, 1, d));
        var options = new AttentionOptions { MaxDegreeOfParallelism = threads, Causal = CausalMask.BottomRight, Window = new SlidingWindow(1500, 0) };
        float[] expected = new float[kvHeads * group * d], actual = new float[expected.Length];
        Attention.Compute(q, kw, vw, expected, shape, options);
        Attention.Compute(q, AttentionTensor.Int8(ki, ks), AttentionTensor.Int8(vi, vs), actual, shape, options);
        Assert.True(expected.AsSpan().SequenceEqual(actual), "int8 grouped decode differs from fp32 on the dequantized values");
    }

    private static float[] Fill(Random random, int length)
    {
        var a = new float[length];
        for (int i = 0; i < a.Length; i++) a[i] = random.NextSingle() * 2 - 1;
        return a;
    }
}
