using FastAttention.Planning;
using FastAttention.Tests.Support;
using Xunit;

namespace FastAttention.Tests.Kernels;

/// <summary>Decode slices longer than the minimum (large problems), chosen from the sizes alone.</summary>
public class DecodeSliceTests
{
    [Theory]
    [InlineData(8, 4096, 512)]     // dec4k: 64 items of 512 keys
    [InlineData(8, 8191, 512)]
    [InlineData(8, 8192, 1024)]
    [InlineData(8, 16384, 2048)]
    [InlineData(8, 32768, 2048)]   // dec32k: never longer than 2048
    [InlineData(1, 65536, 1024)]
    [InlineData(1, 700, 512)]
    [InlineData(64, 300, 300)]     // never more than the keys
    public void DecodeSplitSize_FromSizesAlone(int headPairs, int keyCount, int expected) =>
        Assert.Equal(expected, Planner.DecodeSplitSize(headPairs, keyCount));

    /// <summary>Slices of 1024 and 2048 keys with a partial last one: the reference, and the same bits on any thread count.</summary>
    [Theory]
    [InlineData(9000, CausalMask.None)]
    [InlineData(17000, CausalMask.BottomRight)]
    public void Compute_LongSlices_MatchReferenceOnAnyThreadCount(int keyCount, CausalMask causal)
    {
        Assert.True(Planner.DecodeSplitSize(8, keyCount) > Planner.DecodeMinSplit);
        var problem = TestProblem.Create(new ProblemSpec(2, 8, 4, 3, keyCount, 16, 24, LayoutKind.Bshd, causal, null, 2f, keyCount));
        var (first, firstLse) = problem.Run(threads: 1);
        Tolerance.AssertClose(problem, first, firstLse);
        foreach (int? threads in new int?[] { 2, 3, 7, null })
        {
            var (output, lse) = problem.Run(threads: threads);
            Assert.True(first.AsSpan().SequenceEqual(output), $"output differs at {threads} threads");
            Assert.True(firstLse.AsSpan().SequenceEqual(lse), $"log-sum-exp differs at {threads} threads");
        }
    }
}
