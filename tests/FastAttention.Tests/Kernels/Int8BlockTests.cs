using FastAttention.Kernels;
using FastAttention.Tests.Support;
using Xunit;

namespace FastAttention.Tests.Kernels;

/// <summary>The one-load int8 path of every width (hardware or fallback, whichever this run has) against the exact values.</summary>
public unsafe class Int8BlockTests
{
    [Fact]
    public void Int8Part_EveryWidth_EachQuarterIsItsBytesAsFloats() => EveryWidth.Run(new Check());

    private readonly struct Check : IWidthCheck
    {
        public void Run<TVec, TOps>() where TVec : unmanaged where TOps : IVectorOps<TVec>
        {
            int w = TOps.Count, n = 4 * w;
            // Every byte value passes through every lane position over the offsets (-128, 127 and 0 included).
            var bytes = new sbyte[256 + n];
            for (int i = 0; i < bytes.Length; i++) bytes[i] = unchecked((sbyte)(i * 37 + 11));
            var lanes = new float[w];
            fixed (sbyte* source = bytes)
            fixed (float* l = lanes)
            {
                for (int offset = 0; offset < 256; offset += 1)
                {
                    TVec block = TOps.LoadInt8Block(source + offset);
                    for (byte part = 0; part < 4; part++)
                    {
                        TOps.Store(Part<TVec, TOps>(block, part), l);
                        for (int lane = 0; lane < w; lane++)
                            Assert.Equal((float)bytes[offset + part * w + lane], lanes[lane]);
                    }
                }
            }
        }

        // The part as a constant, as the kernels pass it.
        private static TVec Part<TVec, TOps>(TVec block, byte part) where TVec : unmanaged where TOps : IVectorOps<TVec> => part switch
        {
            0 => TOps.Int8Part(block, 0),
            1 => TOps.Int8Part(block, 1),
            2 => TOps.Int8Part(block, 2),
            _ => TOps.Int8Part(block, 3),
        };
    }
}
