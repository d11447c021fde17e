namespace FastAttention.Kernels;

/// <summary>The end of every row, for both kernels: the sink joins the denominator, then O = accumulated / l and the log-sum-exp.</summary>
internal static unsafe class RowOutput<TVec, TOps>
    where TVec : unmanaged
    where TOps : IVectorOps<TVec>
{
    /// <summary>
    /// Output row ← accumulated / l (zeros when no key was visible), log-sum-exp ← m + ln l (−∞ then, or the sink).
    /// <paramref name="max"/> and <paramref name="sum"/> are the row's m and l over its keys; <paramref name="accumulated"/>
    /// (Σ e^(s − m)·v) may be the output row itself; for a Half or BFloat16 output it is overwritten (finished in place, then narrowed).
    /// With <paramref name="log2Units"/> m is in units of log₂ (logits times log₂e, weights 2^(s − m)): the sink is
    /// brought into those units and the log-sum-exp back, m·ln 2 + ln l, in double.
    /// </summary>
    public static void Write(in KernelArguments args, int b, int head, int query, float* accumulated, float max, float sum, bool log2Units = false)
    {
        bool narrow = !args.Output.IsFloat32;
        float* output = narrow ? accumulated : args.Output.Floats(b, head, query); // other types: finished in place, then narrowed
        long lseIndex = ((long)b * args.QueryHeads + head) * args.QueryCount + query;
        float factor = 1f;
        if (args.Sinks != null && args.Sinks[head] != float.NegativeInfinity) // validated: not NaN, below +∞
        {
            // m' = max(m, σ); l' = l·e^(m − m') + e^(σ − m'); the accumulated sum is rescaled by e^(m − m') too.
            float sink = log2Units ? args.Sinks[head] * VectorMath.Log2E : args.Sinks[head];
            float newMax = sum == 0f ? sink : MathF.Max(max, sink);
            factor = sum == 0f ? 0f : Exp(max - newMax, log2Units);
            sum = sum * factor + Exp(sink - newMax, log2Units);
            max = newMax;
        }
        if (sum == 0f)
        {
            new Span<float>(output, args.ValueHeadSize).Clear(); // never 0·∞ = NaN
            if (narrow) OutputConversion.Narrow(args.Output.Type, output, args.Output.Row(b, head, query), args.ValueHeadSize);
            if (args.LogSumExp != null) args.LogSumExp[lseIndex] = float.NegativeInfinity;
            return;
        }
        if (factor == 1f) MicroKernels<TVec, TOps>.Divide(accumulated, output, args.ValueHeadSize, sum);
        else MicroKernels<TVec, TOps>.Scale(accumulated, output, args.ValueHeadSize, factor == 0f ? 0f : factor / sum);
        if (narrow) OutputConversion.Narrow(args.Output.Type, output, args.Output.Row(b, head, query), args.ValueHeadSize);
        if (args.LogSumExp != null) args.LogSumExp[lseIndex] = (float)((log2Units ? max * Math.Log(2) : max) + Math.Log(sum)); // one rounding: in double
    }

    private static float Exp(float x, bool log2Units) => log2Units ? VectorMath.Exp2(x) : VectorMath.Exp(x);
}
