using Xunit;

namespace FastAttention.Tests.Validation;

/// <summary>One test per validation rule: the exception names the parameter, and nothing is written.</summary>
public class ValidationTests
{
    private static readonly AttentionShape Shape = AttentionShape.Bhsd(2, 4, 2, 5, 7, 8, 6);

    private static float[] Q => new float[Shape.QueryLength];
    private static float[] K => new float[Shape.KeyLength];
    private static float[] V => new float[Shape.ValueLength];

    private static T Throws<T>(string param, Action action) where T : ArgumentException
    {
        var e = Assert.Throws<T>(action);
        Assert.Equal(param, e.ParamName);
        return e;
    }

    private static void AssertUntouched(float[] output)
    {
        Assert.All(output, x => Assert.Equal(7f, x));
    }

    private static float[] Output(long length)
    {
        var o = new float[length];
        Array.Fill(o, 7f);
        return o;
    }

    [Fact]
    public void Compute_QueryTooShort_ThrowsNamingQueryAndSizes()
    {
        var o = Output(Shape.OutputLength);
        var e = Throws<ArgumentException>("query", () => Attention.Compute(new float[Shape.QueryLength - 1], K, V, o, Shape));
        Assert.Contains($"{Shape.QueryLength}", e.Message);
        Assert.Contains($"{Shape.QueryLength - 1}", e.Message);
        Assert.Contains("[2, 4, 5, 8]", e.Message);
        AssertUntouched(o);
    }

    [Fact]
    public void Compute_KeyTooShort_ThrowsNamingKey()
    {
        var o = Output(Shape.OutputLength);
        var e = Throws<ArgumentException>("key", () => Attention.Compute(Q, new float[3], V, o, Shape));
        Assert.Contains("[2, 2, 7, 8]", e.Message);
        AssertUntouched(o);
    }

    [Fact]
    public void Compute_ValueTooShort_ThrowsNamingValue()
    {
        var o = Output(Shape.OutputLength);
        var e = Throws<ArgumentException>("value", () => Attention.Compute(Q, K, new float[Shape.ValueLength - 1], o, Shape));
        Assert.Contains("[2, 2, 7, 6]", e.Message);
        AssertUntouched(o);
    }

    [Fact]
    public void Compute_OutputTooShort_ThrowsNamingOutput()
    {
        var o = Output(Shape.OutputLength - 1);
        Throws<ArgumentException>("output", () => Attention.Compute(Q, K, V, o, Shape));
        AssertUntouched(o);
    }

    [Fact]
    public void Compute_LogSumExpTooShort_ThrowsNamingLogSumExp()
    {
        var o = Output(Shape.OutputLength);
        var e = Throws<ArgumentException>("logSumExp", () => Attention.Compute(Q, K, V, o, new float[Shape.LogSumExpLength - 1], Shape));
        Assert.Contains("[2, 4, 5]", e.Message);
        AssertUntouched(o);
    }

    [Fact]
    public void Compute_OutputOverlapsQuery_ThrowsNamingOutput()
    {
        var buffer = Output(Shape.QueryLength + Shape.OutputLength);
        var e = Throws<ArgumentException>("output", () => Attention.Compute(buffer, K, V, buffer.AsSpan(10), Shape));
        Assert.Contains("query", e.Message);
        AssertUntouched(buffer);
    }

    [Fact]
    public void Compute_OutputOverlapsKey_ThrowsNamingOutput()
    {
        var buffer = Output(Shape.KeyLength + Shape.OutputLength);
        var e = Throws<ArgumentException>("output", () => Attention.Compute(Q, buffer, V, buffer.AsSpan((int)Shape.KeyLength - 1), Shape));
        Assert.Contains("key", e.Message);
        AssertUntouched(buffer);
    }

    [Fact]
    public void Compute_OutputOverlapsValue_ThrowsNamingOutput()
    {
        var buffer = Output(Shape.ValueLength + Shape.OutputLength);
        var e = Throws<ArgumentException>("output", () => Attention.Compute(Q, K, buffer, buffer, Shape));
        Assert.Contains("value", e.Message);
        AssertUntouched(buffer);
    }

    [Fact]
    public void Compute_LogSumExpOverlapsOutput_ThrowsNamingLogSumExp()
    {
        var o = Output(Shape.OutputLength);
        Throws<ArgumentException>("logSumExp", () => Attention.Compute(Q, K, V, o, o, Shape));
        AssertUntouched(o);
    }

    [Fact]
    public void Compute_OutputLayoutOverlapsItself_ThrowsNamingOutput()
    {
        // Row stride smaller than the row: rows would share elements.
        var shape = new AttentionShape(1, 1, 1, 4, 4, 8, 8, TensorLayout.Bhsd(1, 4, 8), TensorLayout.Bhsd(1, 4, 8), TensorLayout.Bhsd(1, 4, 8),
            new TensorLayout(32, 32, 4));
        var o = Output(shape.OutputLength);
        Throws<ArgumentException>("output", () => Attention.Compute(new float[32], new float[32], new float[32], o, shape));
        AssertUntouched(o);
    }

    [Fact]
    public void Compute_DefaultShape_ThrowsNamingShape() =>
        Throws<ArgumentOutOfRangeException>("shape", () => Attention.Compute(Q, K, V, new float[10], default(AttentionShape)));

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void Compute_NonFiniteScale_ThrowsNamingOptions(float scale)
    {
        var o = Output(Shape.OutputLength);
        var e = Throws<ArgumentOutOfRangeException>("options", () => Attention.Compute(Q, K, V, o, Shape, new AttentionOptions { Scale = scale }));
        Assert.Contains("Scale", e.Message);
        AssertUntouched(o);
    }

    [Fact]
    public void Compute_ZeroDegreeOfParallelism_ThrowsNamingOptions()
    {
        var o = Output(Shape.OutputLength);
        var e = Throws<ArgumentOutOfRangeException>("options", () => Attention.Compute(Q, K, V, o, Shape, new AttentionOptions { MaxDegreeOfParallelism = 0 }));
        Assert.Contains("MaxDegreeOfParallelism", e.Message);
    }

    [Fact]
    public void Compute_UndefinedCausalValue_ThrowsNamingOptions() =>
        Throws<ArgumentOutOfRangeException>("options", () => Attention.Compute(Q, K, V, Output(Shape.OutputLength), Shape, new AttentionOptions { Causal = (CausalMask)7 }));

    [Fact]
    public void Shape_HeadsNotAMultiple_ThrowsNamingQueryHeads()
    {
        var e = Throws<ArgumentOutOfRangeException>("queryHeads", () => AttentionShape.Bhsd(1, 6, 4, 3, 3, 8));
        Assert.Contains("multiple", e.Message);
    }

    [Theory]
    [InlineData(-1, 1, 1, 1, 1, 1, 1, "batch")]
    [InlineData(1, 0, 1, 1, 1, 1, 1, "queryHeads")]
    [InlineData(1, 1, 0, 1, 1, 1, 1, "keyValueHeads")]
    [InlineData(1, 1, 1, -1, 1, 1, 1, "queryCount")]
    [InlineData(1, 1, 1, 1, -1, 1, 1, "keyCount")]
    [InlineData(1, 1, 1, 1, 1, 0, 1, "headSize")]
    [InlineData(1, 1, 1, 1, 1, 1, 0, "valueHeadSize")]
    public void Shape_SizeOutOfRange_ThrowsNamingIt(int b, int hq, int hkv, int lq, int lk, int d, int dv, string name) =>
        Throws<ArgumentOutOfRangeException>(name, () => new AttentionShape(b, hq, hkv, lq, lk, d, dv, default, default, default, default));

    [Fact]
    public void Shape_ProductOverflowsInt_ThrowsArgumentOutOfRange()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => AttentionShape.Bhsd(1 << 10, 64, 64, 1 << 12, 1 << 12, 128));
        Assert.Contains("elements", e.Message);
    }

    [Fact]
    public void Layout_NegativeStride_ThrowsNamingIt()
    {
        Throws<ArgumentOutOfRangeException>("rowStride", () => new TensorLayout(10, 10, -1));
        Throws<ArgumentOutOfRangeException>("headStride", () => new TensorLayout(10, -1, 1));
        Throws<ArgumentOutOfRangeException>("batchStride", () => new TensorLayout(-10, 1, 1));
        Throws<ArgumentOutOfRangeException>("offset", () => new TensorLayout(10, 1, 1, -3));
    }
}
