using FastAttention.Kernels;
using Xunit;

namespace FastAttention.Tests.ElementTypes;

/// <summary>
/// Grouped-query decode over Half and int8 keys and values (4 query heads per key-value head, one query position):
/// read in the 4-row tiles (Half as its bits, int8 times its row scales) or widened a chunk at a time, it must give the bits of fp32 inputs holding the
/// widened values, including when a score of −∞ from the inputs sends a slice back to being widened whole, when a
/// chunk of values holds +∞ or NaN, and when the query rows are too large to carry the rebias.
/// </summary>
public class GroupedDecodeTests
{
    /// <summary>What a Half case puts into its inputs beyond ordinary values.</summary>
    public enum HalfPoison
    {
        None,
        /// <summary>−∞ in two key rows, with ALiBi: some scores −∞, counted as removed (the slice is widened whole).</summary>
        MinusInfinityKey,
        /// <summary>+∞ in a value row: that chunk of value rows is widened with the exact conversion, the others read as bits.</summary>
        InfinityValue,
        /// <summary>NaN in a value row (as above).</summary>
        NaNValue,
        /// <summary>A query element of 70,000: the query rows cannot carry 2¹¹² exactly, so every key chunk is widened.</summary>
        LargeQuery,
    }

    // Head sizes 64 and 128 are whole 4-vector panels at every width, so on a CPU with AVX-512 the tiles read the half
    // rows in place (DecodeKernel.ReadsHalvesInTiles); 40 is not, and always goes through the widened copy. 1301 keys
    // leave a remainder of 1 after the 4-key blocks.
    [Theory]
    [InlineData(40, 1300, HalfPoison.None, 1)]
    [InlineData(40, 1300, HalfPoison.None, 2)]
    [InlineData(40, 1300, HalfPoison.MinusInfinityKey, 1)]
    [InlineData(40, 1300, HalfPoison.MinusInfinityKey, 2)]
    [InlineData(64, 1301, HalfPoison.None, 1)]
    [InlineData(64, 1301, HalfPoison.None, 2)]
    [InlineData(128, 700, HalfPoison.None, 1)]
    [InlineData(64, 1301, HalfPoison.MinusInfinityKey, 2)]
    [InlineData(64, 1301, HalfPoison.InfinityValue, 1)]
    [InlineData(128, 700, HalfPoison.NaNValue, 2)]
    [InlineData(64, 1301, HalfPoison.LargeQuery, 1)]
    public void Half_EqualsFp32OnTheWidenedValues(int d, int keys, HalfPoison poison, int threads)
    {
        const int kvHeads = 2, group = 4;
        var random = new Random(11);
        float[] q = Fill(random, kvHeads * group * d), k = Fill(random, kvHeads * keys * d), v = Fill(random, kvHeads * keys * d);
        for (int i = 0; i < q.Length; i++) q[i] = Math.Abs(q[i]) + 0.01f; // positive: q · k = −∞ where k has −∞
        Half[] kh = Array.ConvertAll(k, x => (Half)x), vh = Array.ConvertAll(v, x => (Half)x);
        switch (poison)
        {
            case HalfPoison.MinusInfinityKey:
                kh[(1 * keys + 617) * d + 5] = Half.NegativeInfinity; // head 1, key 617
                kh[(0 * keys + keys - 1) * d + d - 1] = Half.NegativeInfinity; // head 0, the last key
                break;
            case HalfPoison.InfinityValue:
                vh[(1 * keys + 300) * d + 7] = Half.PositiveInfinity; // head 1, key 300: its rows' outputs become +∞ there
                break;
            case HalfPoison.NaNValue:
                vh[(0 * keys + 45) * d + d - 2] = Half.NaN; // head 0, key 45
                break;
            case HalfPoison.LargeQuery:
                q[3 * d + 1] = 70000f; // head 3 (key-value head 0)
                break;
        }
        float[] kw = Array.ConvertAll(kh, x => (float)x), vw = Array.ConvertAll(vh, x => (float)x);
        float[] slopes = poison == HalfPoison.MinusInfinityKey ? [0.5f, 0.25f, 0.125f, 0.0625f, 0.03f, 0.02f, 0.01f, 0.005f] : [];
        var shape = new AttentionShape(1, kvHeads * group, kvHeads, 1, keys, d, d,
            TensorLayout.Bhsd(kvHeads * group, 1, d), TensorLayout.Bhsd(kvHeads, keys, d), TensorLayout.Bhsd(kvHeads, keys, d), TensorLayout.Bhsd(kvHeads * group, 1, d));
        var options = new AttentionOptions { MaxDegreeOfParallelism = threads };
        var masks = new AttentionMasks { AlibiSlopes = slopes };
        float[] expected = new float[kvHeads * group * d], actual = new float[expected.Length];
        Attention.Compute(q, kw, vw, expected, shape, options, masks);
        Attention.Compute(q, kh, vh, actual, shape, options, masks);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]) || (float.IsNaN(expected[i]) && float.IsNaN(actual[i])),
                $"output {i}: {actual[i]} against {expected[i]}");
        }
        int poisoned = poison switch
        {
            HalfPoison.InfinityValue => actual.Count(float.IsPositiveInfinity),
            HalfPoison.NaNValue => actual.Count(float.IsNaN),
            _ => actual.Count(x => !float.IsFinite(x)),
        };
        // A non-finite value reaches exactly the one column of the 4 query heads that read its key-value head.
        Assert.Equal(poison is HalfPoison.InfinityValue or HalfPoison.NaNValue ? group : 0, poisoned);
    }

    // Head sizes 64 and 128: read in the tiles on a CPU with AVX-512; 40: always widened a chunk at a time.
    [Theory]
    [InlineData(64, 2100, 1)]
    [InlineData(64, 2100, 2)]
    [InlineData(128, 1703, 1)]
    [InlineData(40, 1703, 2)]
    public void Int8_EqualsFp32OnTheDequantizedValues(int d, int keys, int threads)
    {
        const int kvHeads = 2, group = 8;
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
