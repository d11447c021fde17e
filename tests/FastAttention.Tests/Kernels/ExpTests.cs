using System.Runtime.Intrinsics;
using FastAttention.Kernels;
using Xunit;

namespace FastAttention.Tests.Kernels;

public unsafe class ExpTests
{
    public static TheoryData<int> Widths => new(KernelDispatch.All.Select(w => (int)w));

    private enum Function { Exp, ExpBelowOverflow, Exp2, SoftCap }

    private static float[] Run(KernelWidth width, float[] input, bool belowOverflow = false) =>
        Run(width, input, belowOverflow ? Function.ExpBelowOverflow : Function.Exp);

    private static float[] Run(KernelWidth width, float[] input, Function function, float cap = 0f)
    {
        var output = new float[input.Length];
        int lanes = KernelDispatch.Lanes(width);
        var padded = new float[(input.Length + lanes - 1) / lanes * lanes];
        input.CopyTo(padded, 0);
        var result = new float[padded.Length];
        fixed (float* x = padded)
        fixed (float* y = result)
        {
            for (int i = 0; i < padded.Length; i += lanes)
            {
                switch (width)
                {
                    case KernelWidth.Vector512: Lanes<Vector512<float>, Vector512Ops>(x + i, y + i, function, cap); break;
                    case KernelWidth.Vector256: Lanes<Vector256<float>, Vector256Ops>(x + i, y + i, function, cap); break;
                    case KernelWidth.Vector128: Lanes<Vector128<float>, Vector128Ops>(x + i, y + i, function, cap); break;
                    default: Lanes<float, ScalarOps>(x + i, y + i, function, cap); break;
                }
            }
        }
        Array.Copy(result, output, output.Length);
        return output;
    }

    private static void Lanes<TVec, TOps>(float* x, float* y, Function function, float cap)
        where TVec : unmanaged
        where TOps : IVectorOps<TVec>
    {
        TVec v = TOps.Load(x);
        TOps.Store(function switch
        {
            Function.ExpBelowOverflow => VectorMath.ExpBelowOverflow<TVec, TOps>(v),
            Function.Exp2 => VectorMath.Exp2BelowOverflow<TVec, TOps>(v),
            Function.SoftCap => VectorMath.SoftCap<TVec, TOps>(v, cap, VectorMath.SoftCapFactor(cap)),
            _ => VectorMath.Exp<TVec, TOps>(v),
        }, y);
    }

    /// <summary>A million inputs: most of the softmax's range (x ≤ 0), the whole finite range, and the subnormal results.</summary>
    private static readonly float[] SampledInputs = Sample(20261128, softmaxRange: 30f, finiteRange: 88.7f, subnormalFrom: -87f, subnormalWidth: 17f);

    /// <summary>
    /// A million inputs, a third each: [−<paramref name="softmaxRange"/>, 0], ±<paramref name="finiteRange"/>, and
    /// [<paramref name="subnormalFrom"/> − <paramref name="subnormalWidth"/>, <paramref name="subnormalFrom"/>].
    /// </summary>
    private static float[] Sample(int seed, float softmaxRange, float finiteRange, float subnormalFrom, float subnormalWidth)
    {
        var random = new Random(seed);
        var input = new float[1_000_000];
        for (int i = 0; i < input.Length; i++)
        {
            input[i] = (i % 3) switch
            {
                0 => -random.NextSingle() * softmaxRange,
                1 => (random.NextSingle() * 2 - 1) * finiteRange,
                _ => subnormalFrom - random.NextSingle() * subnormalWidth,
            };
        }
        return input;
    }

    /// <summary>Distance in units in the last place, counting subnormal steps too.</summary>
    private static long UlpDistance(float a, float b)
    {
        int ia = BitConverter.SingleToInt32Bits(a), ib = BitConverter.SingleToInt32Bits(b);
        if (ia < 0) ia = int.MinValue - ia;
        if (ib < 0) ib = int.MinValue - ib;
        return Math.Abs((long)ia - ib);
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void Exp_MillionSampledInputs_WithinTwoUlpOfMathExp(int widthBits)
    {
        var width = (KernelWidth)widthBits;
        AssertWithinTwoUlp(width, SampledInputs, Run(width, SampledInputs), Math.Exp);
    }

    /// <summary>Every output within 2 ulp of <paramref name="exact"/> (in double, rounded to float); the worst named on failure.</summary>
    private static void AssertWithinTwoUlp(KernelWidth width, float[] input, float[] output, Func<double, double> exact)
    {
        long worst = 0;
        float worstAt = 0;
        for (int i = 0; i < input.Length; i++)
        {
            long ulps = UlpDistance(output[i], (float)exact(input[i]));
            if (ulps > worst) { worst = ulps; worstAt = input[i]; }
        }
        Assert.True(worst <= 2, $"{width}: {worst} ulp at x = {worstAt:R}");
    }

    /// <summary>Every output has the bits of <paramref name="scalar"/> of its input.</summary>
    private static void AssertScalarBits(KernelWidth width, float[] input, float[] output, Func<float, float> scalar)
    {
        for (int i = 0; i < input.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(output[i]) == BitConverter.SingleToInt32Bits(scalar(input[i])), $"{width}: f({input[i]:R}) = {output[i]:R}, scalar {scalar(input[i]):R}");
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void Exp_Edges_ExactZeroInfinityAndNaN(int widthBits)
    {
        var width = (KernelWidth)widthBits;
        float[] input =
        [
            float.NegativeInfinity, -1e30f, -104f, -103.98f, VectorMath.UnderflowEdge - 0.001f,
            0f, -0f, float.Epsilon, 88.72f, 88.7229f, 89f, 1e30f, float.PositiveInfinity, float.NaN, -103.9f, -87.34f,
        ];
        var output = Run(width, input);
        for (int i = 0; i < input.Length; i++)
        {
            float x = input[i], y = output[i];
            if (float.IsNaN(x)) Assert.True(float.IsNaN(y), $"{width}: exp(NaN) = {y}");
            else if (x < VectorMath.UnderflowEdge) Assert.Equal(0f, y);
            else Assert.True(UlpDistance(y, (float)Math.Exp(x)) <= 2, $"{width}: exp({x:R}) = {y:R}, Math.Exp gives {(float)Math.Exp(x):R}");
        }
        Assert.Equal(1f, output[5]);
        Assert.Equal(float.PositiveInfinity, output[10]);
        Assert.Equal(float.PositiveInfinity, output[12]);
    }

    /// <summary>
    /// Every width gives the scalar exp's bits (the row merges and the kernels' lanes must agree): the vector lanes scale
    /// by 2ⁿ with one vscalefps where the CPU has AVX-512, the scalar lanes with two products, and both round once.
    /// </summary>
    [Theory]
    [MemberData(nameof(Widths))]
    public void Exp_EveryWidth_SameBitsAsTheScalarExp(int widthBits)
    {
        var width = (KernelWidth)widthBits;
        AssertScalarBits(width, SampledInputs, Run(width, SampledInputs), VectorMath.Exp);
    }

    /// <summary>
    /// The softmax's exp (no range checks: one maximum) gives <see cref="VectorMath.Exp{TVec, TOps}"/>'s bits below the
    /// overflow edge: the million sampled inputs, every float of [−106, −103] around the underflow edge, and −∞, NaN,
    /// ±0, tiny positives (a score a rounding above the row maximum).
    /// </summary>
    [Theory]
    [MemberData(nameof(Widths))]
    public void ExpBelowOverflow_SameBitsAsExp_BelowTheOverflowEdge(int widthBits)
    {
        var width = (KernelWidth)widthBits;
        var input = new List<float>(SampledInputs.Where(x => x < VectorMath.OverflowEdge));
        for (float x = -106f; x <= -103f; x = MathF.BitIncrement(x)) input.Add(x);
        input.AddRange([float.NegativeInfinity, float.MinValue, -1e30f, float.NaN, -float.NaN, 0f, -0f, float.Epsilon, 1e-6f, 3e-5f, VectorMath.ZeroArgument, 88f]);
        float[] all = input.ToArray();
        float[] expected = Run(width, all), actual = Run(width, all, belowOverflow: true);
        for (int i = 0; i < all.Length; i++)
        {
            if (float.IsNaN(all[i])) Assert.True(float.IsNaN(actual[i]), $"{width}: exp({all[i]}) = {actual[i]}");
            else Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]), $"{width}: exp({all[i]:R}) = {actual[i]:R}, Exp gives {expected[i]:R}");
        }
    }

    /// <summary>
    /// A million inputs of the prefill softmax's 2^x (logits in units of log₂): its range (x ≤ 0, to −45), the whole
    /// finite range below the overflow, and the subnormal results.
    /// </summary>
    private static readonly float[] SampledExp2Inputs = Sample(20261206, softmaxRange: 45f, finiteRange: 127.9f, subnormalFrom: -125f, subnormalWidth: 26f);

    [Theory]
    [MemberData(nameof(Widths))]
    public void Exp2_MillionSampledInputs_WithinTwoUlpOfTheExactPower(int widthBits)
    {
        var width = (KernelWidth)widthBits;
        AssertWithinTwoUlp(width, SampledExp2Inputs, Run(width, SampledExp2Inputs, Function.Exp2), x => Math.Pow(2, x));
    }

    /// <summary>
    /// The edges of 2^x: exactly 0 at and below −150 (2⁻¹⁵⁰ rounds to even, 0) and at −∞; every float of [−152, −148]
    /// within 2 ulp (the subnormal steps); NaN stays NaN; ±0 give 1; a tiny positive (a score a rounding above the
    /// row maximum) and integers give their exact powers. Every width gives the scalar 2^x's bits.
    /// </summary>
    [Theory]
    [MemberData(nameof(Widths))]
    public void Exp2_Edges_ExactZeroNaNAndTheScalarBits(int widthBits)
    {
        var width = (KernelWidth)widthBits;
        var input = new List<float> { float.NegativeInfinity, float.MinValue, -1e30f, -200f, -150f, float.NaN, 0f, -0f, 1e-7f, 1f, -1f, 10f, -126f, -149f, 127f };
        for (float x = -152f; x <= -148f; x = MathF.BitIncrement(x)) input.Add(x);
        float[] all = input.ToArray();
        float[] output = Run(width, all, Function.Exp2);
        for (int i = 0; i < all.Length; i++)
        {
            float x = all[i], y = output[i];
            if (float.IsNaN(x)) Assert.True(float.IsNaN(y), $"{width}: 2^NaN = {y}");
            else if (x <= -150f) Assert.True(y == 0f && !float.IsNegative(y), $"{width}: 2^{x:R} = {y:R}");
            else Assert.True(UlpDistance(y, (float)Math.Pow(2, x)) <= 2, $"{width}: 2^{x:R} = {y:R}, exact {(float)Math.Pow(2, x):R}");
            if (!float.IsNaN(x)) Assert.Equal(BitConverter.SingleToInt32Bits(VectorMath.Exp2(x)), BitConverter.SingleToInt32Bits(y));
        }
        Assert.Equal(1f, output[6]);
        Assert.Equal(1f, output[7]);
        Assert.Equal(2f, output[9]);
        Assert.Equal(0.5f, output[10]);
        Assert.Equal(1024f, output[11]);
        Assert.Equal(MathF.Pow(2, -126), output[12]);
        Assert.Equal(float.Epsilon, output[13]);
        Assert.Equal(MathF.Pow(2, 127), output[14]);
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void Exp2_EveryWidth_SameBitsAsTheScalarExp2(int widthBits)
    {
        var width = (KernelWidth)widthBits;
        AssertScalarBits(width, SampledExp2Inputs, Run(width, SampledExp2Inputs, Function.Exp2), VectorMath.Exp2);
    }

    /// <summary>
    /// The logit soft-cap c·tanh(x/c) within 4·2⁻²⁴·c of the exact value (in double), at every width, on a million
    /// inputs per cap (around 0, over ±8c, and far out) and the edges: ±c at ±∞, NaN for NaN, 0 at ±0.
    /// </summary>
    [Theory]
    [MemberData(nameof(Widths))]
    public void SoftCap_MillionSampledInputs_WithinFourUnitsOfCapTimesTwoToTheMinus24(int widthBits)
    {
        var width = (KernelWidth)widthBits;
        foreach (float cap in new[] { 30f, 30f * VectorMath.Log2E, 1f, 0.1f })
        {
            var random = new Random(20261206);
            var input = new float[1_000_000];
            for (int i = 0; i < input.Length; i++)
            {
                input[i] = (i % 3) switch
                {
                    0 => (random.NextSingle() * 2 - 1) * cap / 64,
                    1 => (random.NextSingle() * 2 - 1) * cap * 8,
                    _ => (random.NextSingle() * 2 - 1) * 1e6f,
                };
            }
            input[0] = 0f;
            input[1] = -0f;
            input[2] = float.PositiveInfinity;
            input[3] = float.NegativeInfinity;
            input[4] = float.NaN;
            input[5] = float.MaxValue;
            input[6] = float.Epsilon;
            var output = Run(width, input, Function.SoftCap, cap);
            double worst = 0;
            float worstAt = 0;
            for (int i = 0; i < input.Length; i++)
            {
                if (float.IsNaN(input[i]))
                {
                    Assert.True(float.IsNaN(output[i]), $"{width}: softcap(NaN) = {output[i]}");
                    continue;
                }
                double error = Math.Abs(output[i] - cap * Math.Tanh(input[i] / (double)cap));
                if (error > worst) (worst, worstAt) = (error, input[i]);
            }
            double units = worst / (cap * Math.Pow(2, -24));
            Assert.True(units <= 4, $"{width}, cap {cap}: {units:F2}·2⁻²⁴·c at x = {worstAt:R}");
            Assert.Equal(cap, output[2]);
            Assert.Equal(-cap, output[3]);
            Assert.Equal(0f, output[0]);
        }
    }
}
