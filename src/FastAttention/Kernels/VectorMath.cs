using System.Runtime.CompilerServices;

namespace FastAttention.Kernels;

/// <summary>The exp the softmax needs, written once over any vector width.</summary>
internal static class VectorMath
{
    // Below this, e^x rounds to zero in float (e^x < 2^-150); above the other edge it overflows.
    internal const float UnderflowEdge = -103.972084f;
    internal const float OverflowEdge = 88.8f;

    internal const float Log2E = 1.44269504088896341f;

    // ln 2 split in two (Cody–Waite) so that x − n·ln2 stays exact to float precision with or without FMA.
    private const float Ln2Hi = 0.693359375f;
    private const float Ln2Lo = -2.12194440e-4f;

    // Minimax coefficients of (e^r − 1 − r)/r² on [−ln2/2, ln2/2] (Cephes expf); the whole is within 1 ulp.
    private const float P0 = 1.9875691500e-4f;
    private const float P1 = 1.3981999507e-3f;
    private const float P2 = 8.3334519073e-3f;
    private const float P3 = 4.1665795894e-2f;
    private const float P4 = 1.6666665459e-1f;
    private const float P5 = 5.0000001201e-1f;

    /// <summary>
    /// e^x per lane, at most 2 ulp from the correctly rounded result (subnormal results included),
    /// exactly 0 below <see cref="UnderflowEdge"/> and at −∞, +∞ above the overflow edge, NaN for NaN.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Exp<TVec, TOps>(TVec x)
        where TVec : unmanaged
        where TOps : IVectorOps<TVec>
    {
        TVec result = ExpInRange<TVec, TOps>(x);
        // Out-of-range lanes computed garbage above; NaN lanes compare false and keep the NaN from p.
        result = TOps.SelectLess(x, TOps.Create(UnderflowEdge), TOps.Zero, result);
        return TOps.SelectGreater(x, TOps.Create(OverflowEdge), TOps.Create(float.PositiveInfinity), result);
    }

    /// <summary>
    /// <see cref="Exp{TVec, TOps}"/> for softmax arguments, x = s − max (at most a rounding above 0), −∞ and NaN
    /// included: the same bits for every x below <see cref="OverflowEdge"/>, at one operation instead of four for the
    /// range checks. Lanes below the underflow edge (−∞ too) are raised to <see cref="ZeroArgument"/>, whose e^x
    /// rounds to exactly 0; a NaN lane stays NaN (the maximum returns its second operand for NaN on every width).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec ExpBelowOverflow<TVec, TOps>(TVec x)
        where TVec : unmanaged
        where TOps : IVectorOps<TVec>
        => ExpInRange<TVec, TOps>(TOps.Max(TOps.Create(ZeroArgument), x));

    // An argument below the underflow edge whose e^x the in-range steps round to exactly 0 (n = −151: p·2⁻¹⁵¹ < 2⁻¹⁵⁰).
    internal const float ZeroArgument = -104.5f;

    /// <summary>e^x for x in [<see cref="ZeroArgument"/>, <see cref="OverflowEdge"/>] (or NaN); anything else is the caller's.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVec ExpInRange<TVec, TOps>(TVec x)
        where TVec : unmanaged
        where TOps : IVectorOps<TVec>
    {
        // x = n·ln2 + r with |r| ≤ ln2/2.
        TVec n = TOps.Round(TOps.Multiply(x, TOps.Create(Log2E)));
        TVec r = TOps.MultiplyAdd(n, TOps.Create(-Ln2Hi), x);
        r = TOps.MultiplyAdd(n, TOps.Create(-Ln2Lo), r);

        TVec p = Horner<TVec, TOps>(r, P0, P1, P2, P3, P4, P5);
        p = TOps.MultiplyAdd(p, TOps.Multiply(r, r), TOps.Add(r, TOps.Create(1f)));

        // p·2^n rounded once, so results in the subnormal range are rounded correctly and n = 128 overflows only when it should.
        return TOps.ScaleByPow2(p, n);
    }

    // Minimax coefficients of (2^r − 1)/r on [−1/2, 1/2], highest first (Cephes exp2f); with the FMA Horner steps the
    // whole is within 2 ulp (ExpTests measures it).
    private const float Q0 = 1.535336188319500e-4f;
    private const float Q1 = 1.339887440266574e-3f;
    private const float Q2 = 9.618437357674640e-3f;
    private const float Q3 = 5.550332471162809e-2f;
    private const float Q4 = 2.402264791363012e-1f;
    private const float Q5 = 6.931472028550421e-1f;

    /// <summary>
    /// 2^x per lane for x below 128 (softmax arguments in units of log₂: at most a rounding above 0), −∞ and NaN
    /// included: at most 2 ulp from the correctly rounded result (subnormal results included), exactly 0 below −150
    /// and at −∞, NaN for NaN. Three operations fewer than <see cref="ExpBelowOverflow{TVec, TOps}"/>: x − round(x)
    /// is exact, so no split of ln 2 and no multiply by log₂e.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Exp2BelowOverflow<TVec, TOps>(TVec x)
        where TVec : unmanaged
        where TOps : IVectorOps<TVec>
    {
        x = TOps.Max(TOps.Create(Exp2ZeroArgument), x); // a NaN lane stays NaN (the second operand)
        TVec n = TOps.Round(x);
        TVec r = TOps.Subtract(x, n);
        TVec p = TOps.MultiplyAdd(Horner<TVec, TOps>(r, Q0, Q1, Q2, Q3, Q4, Q5), r, TOps.Create(1f));
        return TOps.ScaleByPow2(p, n);
    }

    /// <summary>c0·r⁵ + c1·r⁴ + … + c5 by Horner's rule, one FMA per coefficient after the first.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVec Horner<TVec, TOps>(TVec r, float c0, float c1, float c2, float c3, float c4, float c5)
        where TVec : unmanaged
        where TOps : IVectorOps<TVec>
    {
        TVec p = TOps.MultiplyAdd(TOps.Create(c0), r, TOps.Create(c1));
        p = TOps.MultiplyAdd(p, r, TOps.Create(c2));
        p = TOps.MultiplyAdd(p, r, TOps.Create(c3));
        p = TOps.MultiplyAdd(p, r, TOps.Create(c4));
        return TOps.MultiplyAdd(p, r, TOps.Create(c5));
    }

    // An argument whose 2^x the steps above round to exactly 0 (n = −152: p·2⁻¹⁵² < 2⁻¹⁵⁰).
    internal const float Exp2ZeroArgument = -152f;

    /// <summary>Scalar 2^x with the same algorithm (and so the same rounding) as the vector lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Exp2(float x) => Exp2BelowOverflow<float, ScalarOps>(x);

    /// <summary>
    /// The logit soft-cap c·tanh(x/c) per lane, as c·(1 − t)/(1 + t) with t = e^(−2|x|/c) = 2^(k·|x|), k = −2·log₂e/c
    /// (<see cref="SoftCapFactor"/>), and the sign of x: ±c at ±∞, NaN for NaN. t is 2^y below overflow (y ≤ 0), the
    /// division an estimate refined once where the CPU has AVX-512 (<see cref="DivideOneToTwo{TVec, TOps}"/>):
    /// about 19 operations per vector against 30 for tanh through the general exp and two divisions, and within a few
    /// 2⁻²⁴·c of the exact value (measured in the tests), the size of an fp32 logit's own rounding.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec SoftCap<TVec, TOps>(TVec x, float cap, float factor)
        where TVec : unmanaged
        where TOps : IVectorOps<TVec>
    {
        TVec t = Exp2BelowOverflow<TVec, TOps>(TOps.Multiply(TOps.Abs(x), TOps.Create(factor)));
        TVec magnitude = DivideOneToTwo<TVec, TOps>(TOps.MultiplyAdd(TOps.Create(-cap), t, TOps.Create(cap)), TOps.Add(TOps.Create(1f), t));
        return TOps.SelectLess(x, TOps.Zero, TOps.Subtract(TOps.Zero, magnitude), magnitude);
    }

    /// <summary>
    /// a / b for b in [1, 2]: where the CPU has the 14-bit reciprocal estimate, the estimate refined by one Newton step
    /// (good to about 2⁻²⁸) times a, within 2 ulp of the division; the division elsewhere.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec DivideOneToTwo<TVec, TOps>(TVec a, TVec b)
        where TVec : unmanaged
        where TOps : IVectorOps<TVec>
    {
        if (!TOps.HasReciprocalEstimate) return TOps.Divide(a, b);
        TVec r = TOps.ReciprocalEstimate(b);
        r = TOps.MultiplyAdd(r, TOps.MultiplyAdd(TOps.Subtract(TOps.Zero, b), r, TOps.Create(1f)), r); // r + r·(1 − b·r)
        return TOps.Multiply(a, r);
    }

    /// <summary>k = −2·log₂e/c for <see cref="SoftCap{TVec, TOps}"/>, rounded once.</summary>
    public static float SoftCapFactor(float cap) => (float)(-2.0 / Math.Log(2.0) / cap);

    /// <summary>
    /// p·2ⁿ for integral n in [−150, 128] as p·2^a·2^b with a = ⌊n/2⌋, b = n − a: both factors normal, the first
    /// product exact, the second rounding once. The same bits as one vscalefps, without it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec ScaleByPow2Exactly<TVec, TOps>(TVec p, TVec n)
        where TVec : unmanaged
        where TOps : IVectorOps<TVec>
    {
        TVec a = TOps.Floor(TOps.Multiply(n, TOps.Create(0.5f)));
        TVec b = TOps.Subtract(n, a);
        return TOps.Multiply(TOps.Multiply(p, TOps.Pow2(a)), TOps.Pow2(b));
    }

    /// <summary>Scalar e^x with the same algorithm (and so the same rounding) as the vector lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Exp(float x) => Exp<float, ScalarOps>(x);
}
