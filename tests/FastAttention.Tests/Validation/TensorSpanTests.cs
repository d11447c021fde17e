using System.Numerics.Tensors;
using FastAttention.Tests.Support;
using Xunit;

namespace FastAttention.Tests.Validation;

public class TensorSpanTests
{
    [Fact]
    public void Compute_Tensors_MatchSpanOverload()
    {
        var problem = TestProblem.Create(new ProblemSpec(2, 4, 2, 9, 13, 24, 16, LayoutKind.Bhsd, CausalMask.BottomRight, null, 1f, 11));
        var s = problem.Shape;
        var (expected, _) = problem.Run();
        var q = new ReadOnlyTensorSpan<float>(problem.Query.AsSpan(0, (int)s.QueryLength), [2, 4, 9, 24], []);
        var k = new ReadOnlyTensorSpan<float>(problem.Key.AsSpan(0, (int)s.KeyLength), [2, 2, 13, 24], []);
        var v = new ReadOnlyTensorSpan<float>(problem.Value.AsSpan(0, (int)s.ValueLength), [2, 2, 13, 16], []);
        var outputArray = new float[s.OutputLength];
        var o = new TensorSpan<float>(outputArray.AsSpan(), [2, 4, 9, 16], []);
        Attention.Compute(q, k, v, o, problem.Options);
        Assert.Equal(expected, outputArray);
    }

    [Fact]
    public void Compute_TensorsWithMasks_MatchSpanOverload()
    {
        var problem = TestProblem.Create(new ProblemSpec(2, 4, 2, 9, 13, 24, 16, LayoutKind.Bhsd, CausalMask.None, null, 1f, 12));
        var s = problem.Shape;
        var options = problem.Options with { Window = new SlidingWindow(4, 2), SoftCap = 3f };
        int[] lengths = [13, 7];
        float[] slopes = Alibi.Slopes(4);
        var expected = new float[s.OutputLength];
        Attention.Compute(problem.Query, problem.Key, problem.Value, expected, s, options, new AttentionMasks { KeyLengths = lengths, AlibiSlopes = slopes });
        var q = new ReadOnlyTensorSpan<float>(problem.Query.AsSpan(0, (int)s.QueryLength), [2, 4, 9, 24], []);
        var k = new ReadOnlyTensorSpan<float>(problem.Key.AsSpan(0, (int)s.KeyLength), [2, 2, 13, 24], []);
        var v = new ReadOnlyTensorSpan<float>(problem.Value.AsSpan(0, (int)s.ValueLength), [2, 2, 13, 16], []);
        var outputArray = new float[s.OutputLength];
        Attention.Compute(q, k, v, new TensorSpan<float>(outputArray.AsSpan(), [2, 4, 9, 16], []), options,
            new AttentionMasks { KeyLengths = lengths, AlibiSlopes = slopes });
        Assert.Equal(expected, outputArray);
        Assert.Contains(outputArray, x => x != 0f);
    }

    private static void Call(int keyColumns, int[] outputLengths)
    {
        var q = new ReadOnlyTensorSpan<float>(new float[2 * 8 * 4], [1, 2, 8, 4], []);
        var k = new ReadOnlyTensorSpan<float>(new float[2 * 8 * keyColumns], [1, 2, 8, keyColumns], []);
        var v = new ReadOnlyTensorSpan<float>(new float[2 * 8 * 4], [1, 2, 8, 4], []);
        var output = new float[2 * 8 * 4];
        Attention.Compute(q, k, v, new TensorSpan<float>(output, outputLengths.Select(x => (nint)x).ToArray(), []), default);
    }

    [Fact]
    public void Compute_TensorSizesDisagree_ThrowsNamingTheTensor()
    {
        Assert.Equal("key", Assert.Throws<ArgumentException>(() => Call(5, [1, 2, 8, 4])).ParamName);
        Assert.Equal("output", Assert.Throws<ArgumentException>(() => Call(4, [1, 2, 8, 3, 1])).ParamName);
        Assert.Equal("output", Assert.Throws<ArgumentException>(() => Call(4, [1, 2, 4, 8])).ParamName);
    }
}
