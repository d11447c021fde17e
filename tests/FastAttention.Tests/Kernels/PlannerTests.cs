using FastAttention.Planning;
using Xunit;

namespace FastAttention.Tests.Kernels;

/// <summary>The planner's layout choices that the kernels' speed depends on.</summary>
public class PlannerTests
{
    /// <summary>
    /// Packed key rows: room for every key, whole cache lines, and an odd number of them, so that the rows a score
    /// chunk reads spread over all of the L1's sets (an even count, 72 lines at L1024d128, measured 12 % slower).
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(15)]
    [InlineData(16)]
    [InlineData(100)]
    [InlineData(384)]
    [InlineData(1152)]
    [InlineData(2048)]
    [InlineData(4096)]
    [InlineData(32768)]
    public void PackedStride_HoldsTheKeysInAnOddNumberOfCacheLines(int keys)
    {
        int stride = Planner.PackedStride(keys);
        Assert.True(stride >= keys, $"stride {stride} < {keys} keys");
        Assert.Equal(0, stride % 16);
        Assert.Equal(1, stride / 16 % 2);
        Assert.True(stride - keys < 32, $"stride {stride} wastes more than a line and a half for {keys} keys");
    }
}
