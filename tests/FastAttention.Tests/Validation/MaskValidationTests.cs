using Xunit;

namespace FastAttention.Tests.Validation;

/// <summary>Invalid masks and variant options: the exception names the parameter and the expected shape, nothing is written.</summary>
public class MaskValidationTests
{
    private static readonly AttentionShape Shape = AttentionShape.Bhsd(2, 4, 2, 5, 7, 8, 6);
    private static readonly float[] Q = new float[Shape.QueryLength], K = new float[Shape.KeyLength], V = new float[Shape.ValueLength];

    private static float[] Output()
    {
        var o = new float[Shape.OutputLength];
        Array.Fill(o, 7f);
        return o;
    }

    private delegate void Call(float[] output);

    private static ArgumentException Rejects(string param, Call call)
    {
        var o = Output();
        var e = Assert.ThrowsAny<ArgumentException>(() => call(o));
        Assert.Equal(param, e.ParamName);
        Assert.All(o, x => Assert.Equal(7f, x));
        return e;
    }

    [Fact]
    public void Bias_TooShortForItsBroadcastShape_NamesMasksAndShape()
    {
        var bias = new float[4 * 5 * 7]; // fits [1, 4, 5, 7], not the [2, 4, 5, 7] that no broadcast needs
        var e = Rejects("masks", o => Attention.Compute(Q, K, V, o, Shape, default, new AttentionMasks { Bias = bias }));
        Assert.Contains("masks.Bias", e.Message);
        Assert.Contains("[2, 4, 5, 7]", e.Message);
        Attention.Compute(Q, K, V, Output(), Shape, default, new AttentionMasks { Bias = bias, BiasBroadcast = MaskBroadcast.Batch }); // fits when broadcast
    }

    [Fact]
    public void Mask_TooShort_NamesMasksAndShape()
    {
        var e = Rejects("masks", o => Attention.Compute(Q, K, V, o, Shape, default, new AttentionMasks { Mask = new bool[34], MaskBroadcast = MaskBroadcast.All }));
        Assert.Contains("masks.Mask", e.Message);
        Assert.Contains("[1, 1, 5, 7]", e.Message);
    }

    [Fact]
    public void Broadcast_UndefinedValue_Rejected() =>
        Rejects("masks", o => Attention.Compute(Q, K, V, o, Shape, default, new AttentionMasks { Bias = new float[280], BiasBroadcast = (MaskBroadcast)4 }));

    [Theory]
    [InlineData(-1)]
    [InlineData(8)]
    public void KeyLengths_OutsideZeroToKeyCount_NamesMasks(int length)
    {
        var e = Rejects("masks", o => Attention.Compute(Q, K, V, o, Shape, default, new AttentionMasks { KeyLengths = new[] { 3, length } }));
        Assert.Contains("masks.KeyLengths[1]", e.Message);
        Assert.Contains("0..7", e.Message);
    }

    [Fact]
    public void KeyLengths_FewerThanBatch_NamesMasks()
    {
        var e = Rejects("masks", o => Attention.Compute(Q, K, V, o, Shape, default, new AttentionMasks { KeyLengths = new[] { 3 } }));
        Assert.Contains("[2]", e.Message);
    }

    [Fact]
    public void AlibiSlopesAndSinks_FewerThanQueryHeads_NameMasks()
    {
        Rejects("masks", o => Attention.Compute(Q, K, V, o, Shape, default, new AttentionMasks { AlibiSlopes = new float[3] }));
        Rejects("masks", o => Attention.Compute(Q, K, V, o, Shape, default, new AttentionMasks { Sinks = new float[3] }));
        Rejects("masks", o => Attention.Compute(Q, K, V, o, Shape, default, new AttentionMasks { Sinks = [0f, float.NaN, 0f, 0f] }));
        Rejects("masks", o => Attention.Compute(Q, K, V, o, Shape, default, new AttentionMasks { AlibiSlopes = [0f, float.PositiveInfinity, 0f, 0f] }));
    }

    [Theory]
    [InlineData(-1, 0)]
    [InlineData(0, -3)]
    public void Window_NegativeBound_NamesOptions(int left, int right) =>
        Rejects("options", o => Attention.Compute(Q, K, V, o, Shape, new AttentionOptions { Window = new SlidingWindow(left, right) }));

    [Theory]
    [InlineData(0f)]
    [InlineData(-2f)]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void SoftCap_NotPositiveAndFinite_NamesOptions(float cap) =>
        Rejects("options", o => Attention.Compute(Q, K, V, o, Shape, new AttentionOptions { SoftCap = cap }));

    [Fact]
    public void Alignment_DisagreeingWithCausal_NamesOptions()
    {
        var e = Rejects("options", o => Attention.Compute(Q, K, V, o, Shape, new AttentionOptions { Causal = CausalMask.BottomRight, Alignment = DiagonalAlignment.TopLeft }));
        Assert.Contains("disagrees", e.Message);
        Attention.Compute(Q, K, V, Output(), Shape, new AttentionOptions { Causal = CausalMask.BottomRight, Alignment = DiagonalAlignment.BottomRight });
    }

    [Fact]
    public void OutputOverlappingBias_NamesMasks()
    {
        var buffer = new float[Shape.OutputLength + 280];
        Array.Fill(buffer, 7f);
        var e = Assert.Throws<ArgumentException>(() => Attention.Compute(Q, K, V, buffer, Shape, default, new AttentionMasks { Bias = buffer.AsSpan(10, 280) }));
        Assert.Equal("masks", e.ParamName);
        Assert.All(buffer, x => Assert.Equal(7f, x));
    }
}
