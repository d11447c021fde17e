using FastAttention.Kernels;
using FastAttention.Tests.Support;
using Xunit;

namespace FastAttention.Tests.Kernels;

/// <summary>The block transpose of every width (hardware or fallback path, whichever this run has) against the definition.</summary>
public unsafe class TransposeTests
{
    [Fact]
    public void TransposeBlock_EveryWidth_RowsBecomeColumns() => EveryWidth.Run(new Check());

    private readonly struct Check : IWidthCheck
    {
        public void Run<TVec, TOps>() where TVec : unmanaged where TOps : IVectorOps<TVec>
        {
            int w = TOps.Count;
            const int sourceStride = 37, destinationStride = 29; // neither a multiple of the width
            var source = new float[w * sourceStride];
            var destination = new float[w * destinationStride];
            for (int i = 0; i < source.Length; i++) source[i] = i + 0.25f;
            Array.Fill(destination, float.NaN);
            fixed (float* s = source)
            fixed (float* d = destination)
            {
                TOps.TransposeBlock(s + 3, sourceStride, d + 2, destinationStride);
            }
            for (int r = 0; r < w; r++)
            {
                for (int c = 0; c < destinationStride; c++)
                {
                    float actual = destination[r * destinationStride + c];
                    if (c >= 2 && c < 2 + w) Assert.Equal(source[(c - 2) * sourceStride + 3 + r], actual); // destination (r, i) = source (i, r)
                    else Assert.True(float.IsNaN(actual), $"width {w}: wrote outside the block at ({r}, {c})");
                }
            }
        }
    }
}
