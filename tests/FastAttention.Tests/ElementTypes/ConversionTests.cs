using System.Runtime.Intrinsics;
using FastAttention.Kernels;
using Xunit;

namespace FastAttention.Tests.ElementTypes;

/// <summary>The conversions, exhaustively over every 16-bit pattern and every int8 value, at every width.</summary>
public unsafe class ConversionTests
{
    public static TheoryData<string> Widths() => new(KernelDispatch.All.Select(w => w.ToString()));

    private static void Widen(KernelWidth width, ElementType type, byte* source, float* destination, int count, float scale)
    {
        switch (width)
        {
            case KernelWidth.Vector512: ElementConversion<Vector512<float>, Vector512Ops>.Widen(type, source, destination, count, scale); break;
            case KernelWidth.Vector256: ElementConversion<Vector256<float>, Vector256Ops>.Widen(type, source, destination, count, scale); break;
            case KernelWidth.Vector128: ElementConversion<Vector128<float>, Vector128Ops>.Widen(type, source, destination, count, scale); break;
            default: ElementConversion<float, ScalarOps>.Widen(type, source, destination, count, scale); break;
        }
    }

    private static float[] WidenAll(KernelWidth width, ElementType type, ushort[] patterns)
    {
        var result = new float[patterns.Length];
        fixed (ushort* p = patterns)
        fixed (float* r = result)
        {
            // Odd lengths at odd offsets: vector body and scalar tail both see every kind of pattern.
            int at = 0, step = 1;
            while (at < patterns.Length)
            {
                int count = Math.Min(step, patterns.Length - at);
                Widen(width, type, (byte*)(p + at), r + at, count, 1f);
                at += count;
                step = step % 67 + 7;
            }
        }
        return result;
    }

    private static ushort[] AllPatterns() => Enumerable.Range(0, 65536).Select(i => (ushort)i).ToArray();

    [Theory]
    [MemberData(nameof(Widths))]
    public void Half_EveryPattern_WidensExactlyAsDotNet(string width)
    {
        ushort[] patterns = AllPatterns();
        float[] widened = WidenAll(Enum.Parse<KernelWidth>(width), ElementType.Float16, patterns);
        for (int i = 0; i < patterns.Length; i++)
        {
            float expected = (float)BitConverter.UInt16BitsToHalf(patterns[i]);
            if (float.IsNaN(expected))
            {
                Assert.True(float.IsNaN(widened[i]), $"0x{patterns[i]:X4}: {widened[i]}, expected NaN");
                Assert.Equal(float.IsNegative(expected), float.IsNegative(widened[i]));
                continue;
            }
            Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(widened[i]),
                $"0x{patterns[i]:X4}: {widened[i]} (0x{BitConverter.SingleToInt32Bits(widened[i]):X8}), expected {expected} (0x{BitConverter.SingleToInt32Bits(expected):X8})");
        }
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void BFloat16_EveryPattern_WidensToTheUpperHalf(string width)
    {
        ushort[] patterns = AllPatterns();
        float[] widened = WidenAll(Enum.Parse<KernelWidth>(width), ElementType.BFloat16, patterns);
        for (int i = 0; i < patterns.Length; i++)
        {
            Assert.Equal((uint)patterns[i] << 16, BitConverter.SingleToUInt32Bits(widened[i]));
            Assert.Equal((uint)patterns[i] << 16, BitConverter.SingleToUInt32Bits(BFloat16.FromBits(patterns[i])));
        }
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void Int8_EveryValue_IsValueTimesScaleInFp32(string width)
    {
        sbyte[] values = Enumerable.Range(-128, 256).Select(i => (sbyte)i).ToArray();
        foreach (float scale in new[] { 1f, 0.5f, 3.7e-3f, 1e-40f, 1e30f, 0f })
        {
            var widened = new float[values.Length];
            fixed (sbyte* v = values)
            fixed (float* w = widened)
            {
                Widen(Enum.Parse<KernelWidth>(width), ElementType.Int8, (byte*)v, w, 37, scale);
                Widen(Enum.Parse<KernelWidth>(width), ElementType.Int8, (byte*)(v + 37), w + 37, values.Length - 37, scale);
            }
            for (int i = 0; i < values.Length; i++)
                Assert.Equal(BitConverter.SingleToInt32Bits(values[i] * scale), BitConverter.SingleToInt32Bits(widened[i]));
        }
    }

    [Fact]
    public void BFloat16_EveryPattern_RoundTripsAndEveryFloatRoundsToNearestEven()
    {
        foreach (ushort bits in AllPatterns())
        {
            BFloat16 value = BFloat16.FromBits(bits);
            BFloat16 back = (BFloat16)(float)value;
            if (BFloat16.IsNaN(value))
            {
                Assert.True(BFloat16.IsNaN(back) && (back.RawValue & 0x8000) == (bits & 0x8000), $"0x{bits:X4}: NaN must stay NaN of the same sign");
                continue;
            }
            Assert.Equal(bits, back.RawValue);
            // Every fp32 between this pattern and the next: below, at and above the midpoint, and the neighbours of each.
            foreach (uint low in new uint[] { 0x0001, 0x4000, 0x7FFF, 0x8000, 0x8001, 0xC000, 0xFFFF })
            {
                uint pattern = ((uint)bits << 16) | low;
                float x = BitConverter.UInt32BitsToSingle(pattern);
                if (float.IsNaN(x)) continue;
                Assert.Equal(NearestEven(x), ((BFloat16)x).RawValue);
            }
        }
    }

    /// <summary>The nearest bfloat16 by comparing distances in double (ties to the even pattern), independently of the bit trick.</summary>
    private static ushort NearestEven(float x)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        uint down = bits & 0xFFFF0000u, up = down + 0x10000u;
        double dx = x, dDown = BitConverter.UInt32BitsToSingle(down);
        double dUp = (up & 0x7F800000u) == 0x7F800000u && (down & 0x7FFFFFFFu) == 0x7F7F0000u
            ? Math.CopySign(Math.Pow(2, 128), dx) // above the largest bfloat16 lies ∞, at the distance 2¹²⁸ would be
            : BitConverter.UInt32BitsToSingle(up);
        double toDown = Math.Abs(dx - dDown), toUp = Math.Abs(dUp - dx);
        uint chosen = toDown < toUp ? down : toUp < toDown ? up : ((down >> 16) & 1) == 0 ? down : up;
        return (ushort)(chosen >> 16);
    }

    [Fact]
    public void OutputNarrowing_MatchesDotNetHalfAndBFloat16Rounding()
    {
        var random = new Random(5);
        var values = new float[4099];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (i % 4) switch
            {
                0 => (float)(random.NextDouble() * 2 - 1) * MathF.Pow(2, random.Next(-30, 20)),
                1 => (float)BitConverter.UInt16BitsToHalf((ushort)random.Next(65536)) * (1 + 0.5f / 1024), // half-way cases
                2 => BitConverter.UInt32BitsToSingle((uint)random.Next() * 2u + (uint)random.Next(2)),
                _ => new[] { 0f, -0f, float.PositiveInfinity, float.NegativeInfinity, 65520f, 65519.99f, 1e-8f }[i % 7],
            };
        }
        var half = new Half[values.Length];
        var bf16 = new ushort[values.Length];
        fixed (float* v = values)
        fixed (Half* h = half)
        fixed (ushort* b = bf16)
        {
            OutputConversion.Narrow(ElementType.Float16, v, (byte*)h, values.Length);
            OutputConversion.Narrow(ElementType.BFloat16, v, (byte*)b, values.Length);
        }
        for (int i = 0; i < values.Length; i++)
        {
            if (float.IsNaN(values[i])) continue;
            Assert.Equal(BitConverter.HalfToUInt16Bits((Half)values[i]), BitConverter.HalfToUInt16Bits(half[i]));
            Assert.Equal(NearestEven(values[i]), bf16[i]);
        }
    }
}
