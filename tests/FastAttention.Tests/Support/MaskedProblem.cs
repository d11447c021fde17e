using FastAttention.Kernels;
using FastAttention.Planning;
using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace FastAttention.Tests.Support;

/// <summary>Which masks and score terms a generated problem carries; the data follows from <see cref="Seed"/>.</summary>
internal sealed record MaskSpec(
    bool Bias, MaskBroadcast BiasBroadcast, bool BiasNegativeInfinity,
    bool BoolMask, MaskBroadcast MaskBroadcast, double MaskDensity,
    bool KeyLengths, bool Alibi, bool Sinks, float? SoftCap, SlidingWindow? Window, DiagonalAlignment? Alignment, int Seed)
{
    public static MaskSpec None { get; } = new(false, MaskBroadcast.None, false, false, MaskBroadcast.None, 1, false, false, false, null, null, null, 0);

    public override string ToString() =>
        $"bias={(Bias ? $"{BiasBroadcast}{(BiasNegativeInfinity ? "+-inf" : "")}" : "-")} mask={(BoolMask ? $"{MaskBroadcast}@{MaskDensity:F2}" : "-")} " +
        $"lengths={KeyLengths} alibi={Alibi} sinks={Sinks} softcap={SoftCap?.ToString() ?? "-"} window={Window?.ToString() ?? "-"} align={Alignment?.ToString() ?? "-"} seed={Seed}";
}

/// <summary>A <see cref="TestProblem"/> with the tensors of <see cref="AttentionMasks"/>, run against the fp64 reference.</summary>
internal sealed class MaskedProblem
{
    public required TestProblem Problem { get; init; }
    public required MaskSpec Masks { get; init; }
    public float[] Bias { get; init; } = [];
    public bool[] Mask { get; init; } = [];
    public int[] KeyLengths { get; init; } = [];
    public float[] Slopes { get; init; } = [];
    public float[] Sinks { get; init; } = [];

    public AttentionShape Shape => Problem.Shape;

    public AttentionOptions Options => Problem.Options with { SoftCap = Masks.SoftCap, Window = Masks.Window, Alignment = Masks.Alignment };

    public AttentionMasks Tensors => new()
    {
        Bias = Bias, BiasBroadcast = Masks.BiasBroadcast, Mask = Mask, MaskBroadcast = Masks.MaskBroadcast,
        KeyLengths = KeyLengths, AlibiSlopes = Slopes, Sinks = Sinks,
    };

    public override string ToString() => $"{Problem.Spec} {Masks}";

    public static MaskedProblem Create(ProblemSpec spec, MaskSpec masks)
    {
        var problem = TestProblem.Create(spec);
        var s = problem.Shape;
        var random = new Random(masks.Seed);
        long slice = (long)s.QueryCount * s.KeyCount;
        long Count(MaskBroadcast broadcast) =>
            ((broadcast & MaskBroadcast.Batch) != 0 ? 1 : s.Batch) * ((broadcast & MaskBroadcast.Heads) != 0 ? 1 : s.QueryHeads) * slice;

        float[] bias = [];
        if (masks.Bias)
        {
            bias = new float[Count(masks.BiasBroadcast)];
            for (int n = 0; n < bias.Length; n++)
                bias[n] = masks.BiasNegativeInfinity && random.NextDouble() < 0.2 ? float.NegativeInfinity : (float)(random.NextDouble() * 6 - 3);
        }
        bool[] mask = [];
        if (masks.BoolMask)
        {
            mask = new bool[Count(masks.MaskBroadcast)];
            // Blocks of keys rather than independent bits: runs exercise the tile paths, their edges the per-key ones.
            for (int n = 0; n < mask.Length;)
            {
                bool on = random.NextDouble() < masks.MaskDensity;
                int run = random.Next(1, 9);
                for (int r = 0; r < run && n < mask.Length; r++) mask[n++] = on;
            }
        }
        int[] lengths = masks.KeyLengths ? Enumerable.Range(0, s.Batch).Select(_ => random.Next(0, s.KeyCount + 1)).ToArray() : [];
        float[] slopes = masks.Alibi ? Alibi.Slopes(s.QueryHeads) : [];
        float[] sinks = masks.Sinks
            ? Enumerable.Range(0, s.QueryHeads).Select(_ => random.NextDouble() < 0.2 ? float.NegativeInfinity : (float)(random.NextDouble() * 4 - 2)).ToArray()
            : [];
        return new MaskedProblem { Problem = problem, Masks = masks, Bias = bias, Mask = mask, KeyLengths = lengths, Slopes = slopes, Sinks = sinks };
    }

    /// <summary>Runs FastAttention, returning the output read densely and the log-sum-exp.</summary>
    public (float[] Output, float[] LogSumExp) Run(KernelWidth? width = null, int? threads = null, KernelKind? kind = null)
    {
        Array.Fill(Problem.Output, TestProblem.OutputSentinel);
        var lse = new float[Shape.LogSumExpLength];
        Attention.Run(Problem.Query, Problem.Key, Problem.Value, Problem.Output, lse, true, Shape, Options with { MaxDegreeOfParallelism = threads },
            width ?? KernelDispatch.Best, Buffers.WorkspacePool.Shared, kind, Tensors);
        return (Problem.ReadOutput(), lse);
    }

    public (double[] Output, double[] LogSumExp) Reference()
    {
        var s = Shape;
        var output = new double[(long)s.Batch * s.QueryHeads * s.QueryCount * s.ValueHeadSize];
        var lse = new double[s.LogSumExpLength];
        ReferenceAttention.Compute(Problem.Query, Problem.Key, Problem.Value, output, s, Options, Tensors, lse);
        return (output, lse);
    }

    /// <summary>Whether key j is masked for batch b (for every head and query row): its K and V rows may hold anything.</summary>
    public bool MaskedEverywhere(int b, int j)
    {
        var s = Shape;
        for (int h = 0; h < s.QueryHeads; h++)
        for (int i = 0; i < s.QueryCount; i++)
            if (VisibleWithBias(b, h, i, j)) return false;
        return true;
    }

    /// <summary>Visibility including −∞ bias entries, which mask like the boolean mask.</summary>
    public bool VisibleWithBias(int b, int h, int i, int j)
    {
        if (!ReferenceAttention.IsVisible(Shape, Options, Tensors, b, h, i, j)) return false;
        return Bias.Length == 0 || !float.IsNegativeInfinity(Bias[BiasIndex(b, h, i, j)]);
    }

    public int BiasIndex(int b, int h, int i, int j)
    {
        var s = Shape;
        int heads = (Masks.BiasBroadcast & MaskBroadcast.Heads) != 0 ? 1 : s.QueryHeads;
        int bb = (Masks.BiasBroadcast & MaskBroadcast.Batch) != 0 ? 0 : b, hh = (Masks.BiasBroadcast & MaskBroadcast.Heads) != 0 ? 0 : h;
        return (int)((((long)bb * heads + hh) * s.QueryCount + i) * s.KeyCount + j);
    }

    /// <summary>
    /// The bound's C_i with masks: the largest |final logit| a visible key can carry before the softmax, i.e.
    /// |scale|·Σ|q·k| + |bias| + |ALiBi term|, plus 4·c under a soft-cap c (tanh computed from fp32 exp is good
    /// to a few 2⁻²⁴ absolute, so the capped logit to a few 2⁻²⁴·c).
    /// </summary>
    public double[] RowLogitMagnitudes()
    {
        var s = Shape;
        var p = Problem;
        double scale = Math.Abs(p.Spec.Scale ?? 1.0 / Math.Sqrt(s.HeadSize));
        int group = s.QueryHeads / s.KeyValueHeads;
        var result = new double[s.LogSumExpLength];
        for (int b = 0; b < s.Batch; b++)
        for (int h = 0; h < s.QueryHeads; h++)
        for (int i = 0; i < s.QueryCount; i++)
        {
            double max = 0;
            double aligned = Aligned(b, i);
            for (int j = 0; j < s.KeyCount; j++)
            {
                if (!VisibleWithBias(b, h, i, j)) continue;
                double sum = 0;
                for (int t = 0; t < s.HeadSize; t++)
                    sum += Math.Abs((double)p.Query[At(s.QueryLayout, b, h, i, t)] * p.Key[At(s.KeyLayout, b, h / group, j, t)]);
                double c = scale * sum;
                if (Bias.Length > 0) c += Math.Abs(Bias[BiasIndex(b, h, i, j)]);
                if (Slopes.Length > 0) c += Math.Abs(Slopes[h] * (aligned - j));
                if (Masks.SoftCap is float cap) c += 4 * cap;
                max = Math.Max(max, c);
            }
            result[((long)b * s.QueryHeads + h) * s.QueryCount + i] = max;
        }
        return result;
    }

    private double Aligned(int b, int i)
    {
        var s = Shape;
        int length = KeyLengths.Length == 0 ? s.KeyCount : KeyLengths[b];
        bool bottomRight = Problem.Spec.Causal == CausalMask.BottomRight || (Problem.Spec.Causal == CausalMask.None && Masks.Alignment == DiagonalAlignment.BottomRight);
        return bottomRight ? (double)i + length - s.QueryCount : i;
    }

    /// <summary>Asserts output and log-sum-exp within the contract's bound (the same shape as <see cref="Tolerance"/>, with the C_i above).</summary>
    public void AssertClose(float[] output, float[] lse)
    {
        var (expected, expectedLse) = Reference();
        double[] c = RowLogitMagnitudes();
        double maxV = Math.Max(Tolerance.MaxAbsValue(Problem), double.Epsilon);
        double length = Tolerance.LengthFactor(Shape);
        int dv = Shape.ValueHeadSize;
        for (int n = 0; n < output.Length; n++)
        {
            double bound = Tolerance.Factor * maxV * Tolerance.Unit * (1 + c[n / dv]) * length;
            double error = Math.Abs(output[n] - expected[n]);
            Assert.False(double.IsNaN(output[n]) != double.IsNaN(expected[n]), $"{this}: output {n} is {output[n]}, reference {expected[n]}");
            if (!double.IsNaN(error))
                Assert.True(error <= bound, $"{this}: output {n} error {error:E3} exceeds the bound {bound:E3} ({error / bound:F2} units)");
        }
        for (int n = 0; n < lse.Length; n++)
        {
            if (double.IsNegativeInfinity(expectedLse[n]))
            {
                Assert.True(float.IsNegativeInfinity(lse[n]), $"{this}: log-sum-exp {n} is {lse[n]}, reference −∞");
                continue;
            }
            double bound = Tolerance.Factor * Tolerance.Unit * (2 * (1 + c[n]) * length + Math.Abs(expectedLse[n]));
            Assert.True(Math.Abs(lse[n] - expectedLse[n]) <= bound, $"{this}: log-sum-exp {n} is {lse[n]}, reference {expectedLse[n]}");
        }
    }

    private static long At(TensorLayout l, int b, int h, int r, int c) => l.Offset + b * l.BatchStride + h * l.HeadStride + r * l.RowStride + c;
}

/// <summary>FsCheck generators of mask settings.</summary>
internal static class MaskGenerators
{
    private static readonly MaskBroadcast[] Broadcasts = [MaskBroadcast.None, MaskBroadcast.Batch, MaskBroadcast.Heads, MaskBroadcast.All];

    public static Gen<MaskSpec> Masks() =>
        from bias in Gen.Elements(false, true)
        from biasBroadcast in Gen.Elements(Broadcasts)
        from biasInf in Gen.Elements(false, true)
        from boolMask in Gen.Elements(false, true)
        from maskBroadcast in Gen.Elements(Broadcasts)
        from density in Gen.Elements(0.3, 0.7, 0.95)
        from lengths in Gen.Elements(false, true)
        from alibi in Gen.Elements(false, true)
        from sinks in Gen.Elements(false, true)
        from softCap in Gen.Frequency((2, Gen.Constant<float?>(null)), (1, Gen.Elements<float?>(0.5f, 5f, 30f)))
        from window in Gen.Frequency((2, Gen.Constant<SlidingWindow?>(null)), (1, from l in Gen.Choose(0, 20) from r in Gen.Choose(0, 20) select (SlidingWindow?)new SlidingWindow(l, r)))
        from alignment in Gen.Elements<DiagonalAlignment?>(null, DiagonalAlignment.TopLeft, DiagonalAlignment.BottomRight)
        from seed in Gen.Choose(0, int.MaxValue)
        select new MaskSpec(bias, biasBroadcast, biasInf, boolMask, maskBroadcast, density, lengths, alibi, sinks, softCap, window, alignment, seed);

    /// <summary>A problem with masks; the alignment is dropped when the problem is causal (the causal mask carries its own).</summary>
    public static Gen<(ProblemSpec Spec, MaskSpec Masks)> Problems(int maxQueries = 70) =>
        from spec in Generators.Problems()
        from masks in Masks()
        let s = spec with { QueryCount = Math.Min(spec.QueryCount, maxQueries) }
        select (s with { KeyCount = s.Layout == LayoutKind.PackedQkv ? s.QueryCount : s.KeyCount },
                s.Causal == CausalMask.None ? masks : masks with { Alignment = null });
}
