using Xunit;

namespace FastAttention.Tests.Support;

/// <summary>
/// The accuracy contract (README, "Accuracy"): for every output element of query row i,
/// |O − O_ref| ≤ Factor · max|V| · 2⁻²⁴ · (1 + C_i) · (1 + (√keyCount + √headSize) / 2), with
/// C_i = max over visible keys j of |scale|·Σ_t |q_it·k_jt|.
/// Why this shape: an fp32 logit carries about 2⁻²⁴·C_i of absolute error whatever the kernel does, and a logit
/// error δ moves the output by at most about max|V|·δ; the 1 covers the rounding of the weighted sum and the
/// normalisation. The log-sum-exp gets the same bound without the max|V| factor, plus its own rounding.
/// </summary>
internal static class Tolerance
{
    /// <summary>The asserted factor; the README states it with the measured distribution.</summary>
    public const double Factor = 1.0;

    public static readonly double Unit = Math.Pow(2, -24);

    /// <summary>
    /// The kernels accumulate sequentially in fp32: the logit over headSize terms, the weighted sum of values and
    /// the softmax denominator over keyCount terms. Rounding in such sums grows like the square root of their
    /// length, so the bound's "1 + C" is scaled by 1 + (√keyCount + √headSize) / 2.
    /// </summary>
    public static double LengthFactor(AttentionShape shape) => 1 + (Math.Sqrt(shape.KeyCount) + Math.Sqrt(shape.HeadSize)) / 2;

    /// <summary>C_i per query row: max over visible keys j of |scale|·Σ_t |q_it·k_jt| (the masked form, with no masks).</summary>
    public static double[] RowLogitMagnitudes(TestProblem problem) =>
        new MaskedProblem { Problem = problem, Masks = MaskSpec.None }.RowLogitMagnitudes();

    public static double MaxAbsValue(TestProblem problem)
    {
        var s = problem.Shape;
        double max = 0;
        for (int b = 0; b < s.Batch; b++)
        for (int h = 0; h < s.KeyValueHeads; h++)
        for (int j = 0; j < s.KeyCount; j++)
        for (int c = 0; c < s.ValueHeadSize; c++)
            max = Math.Max(max, Math.Abs(problem.Value[At(s.ValueLayout, b, h, j, c)]));
        return max;
    }

    /// <summary>The largest error of the output in units of the row's bound (1 = exactly at the bound).</summary>
    public static double OutputErrorInUnits(TestProblem problem, float[] actual, double[] expected)
    {
        double[] c = RowLogitMagnitudes(problem);
        double maxV = Math.Max(MaxAbsValue(problem), double.Epsilon);
        int dv = problem.Shape.ValueHeadSize;
        double worst = 0;
        for (int n = 0; n < actual.Length; n++)
        {
            double bound = maxV * Unit * (1 + c[n / dv]) * LengthFactor(problem.Shape);
            double error = Math.Abs(actual[n] - expected[n]);
            if (double.IsNaN(actual[n]) != double.IsNaN(expected[n]) || (double.IsNaN(error) && !double.IsNaN(expected[n])))
                return double.PositiveInfinity;
            if (!double.IsNaN(error) && error > 0) worst = Math.Max(worst, error / bound);
        }
        return worst;
    }

    public static double LogSumExpErrorInUnits(TestProblem problem, float[] actual, double[] expected)
    {
        double[] c = RowLogitMagnitudes(problem);
        double worst = 0;
        for (int n = 0; n < actual.Length; n++)
        {
            if (double.IsNegativeInfinity(expected[n]))
            {
                if (!float.IsNegativeInfinity(actual[n])) return double.PositiveInfinity;
                continue;
            }
            // The log-sum-exp carries the logit error of the row maximum undiluted (the output averages logit
            // errors over many keys), hence twice the output's factor, plus its own final rounding.
            double bound = Unit * (2 * (1 + c[n]) * LengthFactor(problem.Shape) + Math.Abs(expected[n]));
            worst = Math.Max(worst, Math.Abs(actual[n] - expected[n]) / bound);
        }
        return worst;
    }

    public static void AssertClose(TestProblem problem, float[] output, float[] lse)
    {
        var (expected, expectedLse) = problem.Reference();
        double units = OutputErrorInUnits(problem, output, expected);
        Assert.True(units <= Factor, $"{problem.Spec}: output error {units:F3} units of max|V|·2⁻²⁴·(1+C) exceeds {Factor}");
        double lseUnits = LogSumExpErrorInUnits(problem, lse, expectedLse);
        Assert.True(lseUnits <= Factor, $"{problem.Spec}: log-sum-exp error {lseUnits:F3} units exceeds {Factor}");
    }

    private static long At(TensorLayout l, int b, int h, int r, int c) => l.Offset + b * l.BatchStride + h * l.HeadStride + r * l.RowStride + c;
}
