using FastAttention.Kernels;
using FastAttention.Tests.Support;
using Xunit;

namespace FastAttention.Tests.Kernels;

/// <summary>The score tiles of every width agree bit for bit where the kernels rely on it.</summary>
public unsafe class ScoreTileTests
{
    /// <summary>
    /// The two-block tile of the small kernel (one vector of keys) gives each block exactly what the 4-row tile gives
    /// it: the small kernel's output must not depend on how many blocks a problem has.
    /// </summary>
    [Fact]
    public void ScoresOneVector_TwoBlocks_SameBitsAsScoresPerBlock() => EveryWidth.Run(new TwoBlocks());

    private readonly struct TwoBlocks : IWidthCheck
    {
        public void Run<TVec, TOps>() where TVec : unmanaged where TOps : IVectorOps<TVec>
        {
            int w = TOps.Count;
            foreach (int headSize in new[] { 1, 7, 64, 67 })
            {
                const int keyStride = 19, strideA = 71, strideB = 83, scoreStride = 23;
                var random = new Random(headSize);
                float[] Fill(int length)
                {
                    var values = new float[length];
                    for (int i = 0; i < length; i++) values[i] = (float)(random.NextDouble() * 4 - 2);
                    return values;
                }
                float[] queryA = Fill(4 * strideA), queryB = Fill(4 * strideB), keysT = Fill(headSize * keyStride + w);
                var together = new float[8 * scoreStride + w];
                var apart = new float[8 * scoreStride + w];
                fixed (float* qa = queryA, qb = queryB, k = keysT, t = together, s = apart)
                {
                    MicroKernels<TVec, TOps>.ScoresOneVector(qa, strideA, qb, strideB, headSize, k, keyStride, t, t + 4 * scoreStride, scoreStride);
                    MicroKernels<TVec, TOps>.Scores(qa, strideA, headSize, k, keyStride, s, scoreStride, w);
                    MicroKernels<TVec, TOps>.Scores(qb, strideB, headSize, k, keyStride, s + 4 * scoreStride, scoreStride, w);
                }
                for (int r = 0; r < 8; r++)
                {
                    for (int j = 0; j < w; j++)
                        Assert.Equal(BitConverter.SingleToInt32Bits(apart[r * scoreStride + j]), BitConverter.SingleToInt32Bits(together[r * scoreStride + j]));
                }
                Assert.Contains(together, x => x != 0f); // the tile wrote something
            }
        }
    }
}
