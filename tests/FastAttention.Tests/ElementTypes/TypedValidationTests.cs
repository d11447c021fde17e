using FastAttention.Tests.Allocation;
using Xunit;

namespace FastAttention.Tests.ElementTypes;

/// <summary>Validation of typed inputs, the quantisation helper, and allocation of typed calls.</summary>
[Collection(nameof(SerialCollection))]
public class TypedValidationTests
{
    private static readonly AttentionShape Shape = AttentionShape.Bhsd(2, 4, 2, 5, 7, 8, 6);

    private static Half[] Output()
    {
        var o = new Half[Shape.OutputLength];
        Array.Fill(o, (Half)7f);
        return o;
    }

    private static void AssertUntouched(Half[] output) => Assert.All(output, x => Assert.Equal((Half)7f, x));

    private static ArgumentException Throws(string param, Action action)
    {
        var e = Assert.ThrowsAny<ArgumentException>(action);
        Assert.Equal(param, e.ParamName);
        return e;
    }

    [Fact]
    public void Compute_Int8Query_ThrowsNamingQuery()
    {
        var o = Output();
        var e = Throws("query", () => Attention.Compute(AttentionTensor.Int8(new sbyte[Shape.QueryLength], new float[2 * 4 * 5]),
            new Half[Shape.KeyLength], new Half[Shape.ValueLength], o, Shape));
        Assert.Contains("int8", e.Message);
        AssertUntouched(o);
    }

    [Fact]
    public void Compute_Int8ScalesTooShort_ThrowsNamingKeyAndScaleShape()
    {
        var o = Output();
        var e = Throws("key", () => Attention.Compute(new Half[Shape.QueryLength],
            AttentionTensor.Int8(new sbyte[Shape.KeyLength], new float[2 * 2 * 7 - 1]), new Half[Shape.ValueLength], o, Shape));
        Assert.Contains("[2, 2, 7]", e.Message);
        Assert.Contains("key.Scales", e.Message);
        AssertUntouched(o);
    }

    [Fact]
    public void Compute_Int8ScaleRowsBelowKeyCount_ThrowsNamingValue()
    {
        var o = Output();
        var e = Throws("value", () => Attention.Compute(new Half[Shape.QueryLength], new Half[Shape.KeyLength],
            AttentionTensor.Int8(new sbyte[Shape.ValueLength], new float[100], scaleRows: 6), o, Shape));
        Assert.Contains("key count 7", e.Message);
        AssertUntouched(o);
    }

    [Fact]
    public void Compute_Int8WithScaleRowsAboveKeyCount_ReadsTheScalesOfEachHead()
    {
        // A cache of capacity 9 holding 7 keys: scales [B, Hkv, 9]; the scale of (b, h, j) is at (b·2 + h)·9 + j.
        var shape = AttentionShape.Bhsd(2, 2, 2, 1, 7, 4);
        var values = new sbyte[shape.ValueLength];
        Array.Fill(values, (sbyte)1);
        var scales = new float[2 * 2 * 9];
        for (int i = 0; i < scales.Length; i++) scales[i] = 1 + i / 9; // head-pair p has scale p + 1 on every row
        var o = new float[shape.OutputLength];
        Attention.Compute(new float[shape.QueryLength], AttentionTensor.Int8(new sbyte[shape.KeyLength], new float[36], 9),
            AttentionTensor.Int8(values, scales, 9), o, shape);
        for (int p = 0; p < 4; p++) Assert.All(o.AsSpan(p * 4, 4).ToArray(), x => Assert.Equal(p + 1f, x, (p + 1f) * 1e-6f)); // uniform weights over equal rows: (p + 1) up to the division's rounding
    }

    [Fact]
    public void Compute_Int8Scales_NeedOnlyTheRowsTheKeysUse()
    {
        // scaleRows 9 for 7 keys over 2·2 heads: the last head reads scales 27..33, so 34 suffice and 33 do not.
        var shape = AttentionShape.Bhsd(2, 2, 2, 1, 7, 4);
        var k = new sbyte[shape.KeyLength];
        var o = new float[shape.OutputLength];
        Attention.Compute(new float[shape.QueryLength], AttentionTensor.Int8(k, new float[34], 9), AttentionTensor.Int8(new sbyte[shape.ValueLength], new float[34], 9), o, shape);
        var e = Throws("key", () => Attention.Compute(new float[shape.QueryLength], AttentionTensor.Int8(k, new float[33], 9),
            AttentionTensor.Int8(new sbyte[shape.ValueLength], new float[34], 9), o, shape));
        Assert.Contains("34", e.Message);
    }

    [Fact]
    public void Compute_HalfOutputOverlapsHalfQuery_ThrowsNamingOutput()
    {
        var shared = new Half[Shape.QueryLength + Shape.OutputLength];
        Throws("output", () => Attention.Compute(shared, new Half[Shape.KeyLength], new Half[Shape.ValueLength], shared.AsSpan(3), Shape));
    }

    [Fact]
    public void Compute_OutputOverlapsInt8Scales_ThrowsNamingOutput()
    {
        var o = new float[Shape.OutputLength + 28];
        Throws("output", () => Attention.Compute(new float[Shape.QueryLength],
            AttentionTensor.Int8(new sbyte[Shape.KeyLength], o.AsSpan((int)Shape.OutputLength - 4, 28)), new float[Shape.ValueLength], o, Shape));
    }

    [Fact]
    public void Compute_HalfValueTooShort_ThrowsNamingValueAndShape()
    {
        var o = Output();
        var e = Throws("value", () => Attention.Compute(new Half[Shape.QueryLength], new Half[Shape.KeyLength], new Half[Shape.ValueLength - 1], o, Shape));
        Assert.Contains("[2, 2, 7, 6]", e.Message);
        AssertUntouched(o);
    }

    [Fact]
    public void QuantizeRows_EveryElement_WithinHalfAScaleOfItsValue()
    {
        var random = new Random(11);
        const int rowLength = 67;
        var rows = new float[rowLength * 50];
        for (int i = 0; i < rows.Length; i++) rows[i] = (float)(random.NextDouble() * 2 - 1) * MathF.Pow(10, i / rowLength % 9 - 4);
        rows.AsSpan(rowLength * 3, rowLength).Clear(); // a row of zeros
        var values = new sbyte[rows.Length];
        var scales = new float[50];
        Int8Quantization.QuantizeRows(rows, rowLength, values, scales);
        var back = new float[rows.Length];
        Int8Quantization.DequantizeRows(values, scales, rowLength, back);
        Assert.Equal(0f, scales[3]);
        for (int i = 0; i < rows.Length; i++)
        {
            float scale = scales[i / rowLength];
            Assert.InRange(values[i], (sbyte)-127, (sbyte)127);
            Assert.True(Math.Abs((double)rows[i] - back[i]) <= scale * (0.5 + 1e-6), $"element {i}: {rows[i]} came back as {back[i]} (scale {scale})");
        }
        for (int r = 0; r < 50; r++)
            Assert.Contains(values.AsSpan(r * rowLength, rowLength).ToArray(), v => Math.Abs((int)v) == (r == 3 ? 0 : 127)); // the largest maps to ±127
    }

    [Fact]
    public void QuantizeRows_NonFiniteOrBadLengths_ThrowNamingTheParameterAndWriteNothing()
    {
        var values = new sbyte[8];
        Array.Fill(values, (sbyte)5);
        var scales = new float[2];
        var rows = new float[8];
        rows[6] = float.NaN;
        Assert.Contains("rows[6]", Throws("rows", () => Int8Quantization.QuantizeRows(rows, 4, values, scales)).Message);
        Assert.All(values, v => Assert.Equal((sbyte)5, v));
        Throws("rowLength", () => Int8Quantization.QuantizeRows(new float[8], 3, values, scales));
        Throws("rowLength", () => Int8Quantization.QuantizeRows(new float[8], 0, values, scales));
        Throws("values", () => Int8Quantization.QuantizeRows(new float[8], 4, new sbyte[7], scales));
        Throws("scales", () => Int8Quantization.QuantizeRows(new float[8], 4, values, new float[1]));
    }

    [Theory]
    [InlineData(1, 2048)]   // decode: slices widened into worker scratch
    [InlineData(64, 256)]   // prefill: values widened once, keys widened while packing
    public void Compute_HalfAndInt8Inputs_AllocateZeroBytes(int queryCount, int keyCount)
    {
        var shape = AttentionShape.Bhsd(1, 8, 2, queryCount, keyCount, 64);
        var q = new Half[shape.QueryLength];
        var k = new Half[shape.KeyLength];
        var v = new sbyte[shape.ValueLength];
        var scales = new float[2 * keyCount];
        for (int i = 0; i < k.Length; i++) k[i] = (Half)MathF.Cos(i);
        for (int i = 0; i < v.Length; i++) v[i] = (sbyte)(i % 13);
        Array.Fill(scales, 0.01f);
        var o = new BFloat16[shape.OutputLength];
        var lse = new float[shape.LogSumExpLength];
        var options = new AttentionOptions { Causal = CausalMask.BottomRight, MaxDegreeOfParallelism = 2 };
        for (int i = 0; i < 5; i++) Attention.Compute(q, k, AttentionTensor.Int8(v, scales), o, lse, shape, options);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 20; i++) Attention.Compute(q, k, AttentionTensor.Int8(v, scales), o, lse, shape, options);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
