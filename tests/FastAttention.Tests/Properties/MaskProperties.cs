using FastAttention.Kernels;
using FastAttention.Planning;
using FastAttention.Tests.Support;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace FastAttention.Tests.Properties;

/// <summary>Masks, biases and attention variants against the fp64 reference, in both kernels and at every width.</summary>
public class MaskProperties
{
    private static readonly KernelKind[] Kinds = [KernelKind.Prefill, KernelKind.Decode, KernelKind.Small];

    /// <summary>Any combination of bias, boolean mask, key lengths, window, ALiBi, soft-cap and sinks, with either causal alignment.</summary>
    [Property(MaxTest = 300)]
    public Property Compute_AnyCombinationOfMasks_MatchesReference() =>
        Prop.ForAll(MaskGenerators.Problems().ToArbitrary(), Gen.Elements(KernelDispatch.All.ToArray()).ToArbitrary(), (t, width) =>
        {
            var problem = MaskedProblem.Create(t.Spec, t.Masks);
            foreach (var kind in Kinds)
            {
                var (output, lse) = problem.Run(width, kind: kind);
                problem.AssertClose(output, lse);
            }
        });

    /// <summary>
    /// The prefill kernel's wholly visible 4-row blocks (key counts in whole vectors at every width, so that every row
    /// of a block sees the whole tile) under each score term: the terms rewrite the scores and the row maxima, a bias
    /// −∞ or a mask that removes keys sends the block back to the row-by-row path after its terms, and a mask that
    /// shows every key leaves the score tile's maxima in place. Under a soft-cap, logits of ±10⁴ make a stale maximum
    /// (the uncapped one) show: every weight would underflow to 0.
    /// </summary>
    [Theory]
    [InlineData(true, false, false, 1.0, false, null, false, 2f)]   // bias
    [InlineData(true, true, false, 1.0, false, null, false, 2f)]    // bias with −∞ entries: keys removed
    [InlineData(false, false, true, 1.0, false, null, false, 2f)]   // a mask that shows every key
    [InlineData(false, false, true, 0.95, false, null, false, 2f)]  // a mask that removes some
    [InlineData(false, false, false, 1.0, true, null, true, 2f)]    // ALiBi and sinks
    [InlineData(false, false, false, 1.0, false, 5f, false, 100f)]  // soft-cap over logits of ±10⁴
    [InlineData(true, true, true, 0.95, true, 30f, true, 2f)]       // all of them
    public void Compute_WholeBlocksWithScoreTerms_MatchReference(bool bias, bool biasInfinity, bool boolMask, double density, bool alibi, float? softCap, bool sinks, float magnitude)
    {
        foreach (var width in KernelDispatch.All)
        foreach (int keyCount in new[] { 64, 448 })
        {
            var spec = new ProblemSpec(2, 4, 2, 12, keyCount, 16, 24, LayoutKind.Bhsd, CausalMask.None, null, magnitude, keyCount + (int)width);
            var masks = new MaskSpec(bias, MaskBroadcast.None, biasInfinity, boolMask, MaskBroadcast.Heads, density, false, alibi, sinks, softCap, null, null, 17);
            var problem = MaskedProblem.Create(spec, masks);
            var (output, lse) = problem.Run(width, kind: KernelKind.Prefill);
            problem.AssertClose(output, lse);
        }
    }

    /// <summary>Decode shapes (few query rows, long key sequences, several slices) with masks, on 2 threads.</summary>
    [Property(MaxTest = 100)]
    public Property Compute_DecodeShapesWithMasks_MatchesReference() =>
        Prop.ForAll((from t in MaskGenerators.Problems()
                     from queryCount in Gen.Choose(1, 4)
                     from keyCount in Gen.Choose(1, 1300)
                     select (t.Spec with
                     {
                         Layout = t.Spec.Layout == LayoutKind.PackedQkv ? LayoutKind.Bhsd : t.Spec.Layout,
                         QueryCount = queryCount, KeyCount = keyCount, HeadSize = Math.Min(t.Spec.HeadSize, 48), ValueHeadSize = Math.Min(t.Spec.ValueHeadSize, 48),
                     }, t.Masks with { Window = t.Masks.Window is { } w ? new SlidingWindow(w.Left * 40, w.Right * 40) : null })).ToArbitrary(), t =>
        {
            var problem = MaskedProblem.Create(t.Item1, t.Item2);
            var (output, lse) = problem.Run(threads: 2);
            problem.AssertClose(output, lse);
        });

    /// <summary>
    /// NaN and ±∞ planted in the K and V rows of keys that every row of their batch has masked change nothing: the
    /// output and log-sum-exp stay bitwise those of the clean inputs (masked keys are skipped, never multiplied by 0).
    /// </summary>
    [Property(MaxTest = 150)]
    public Property Compute_NaNAndInfinityInMaskedRows_DoNotLeak() =>
        Prop.ForAll(MaskGenerators.Problems().ToArbitrary(), Gen.Elements(KernelDispatch.All.ToArray()).ToArbitrary(), (t, width) =>
        {
            var problem = MaskedProblem.Create(t.Spec, t.Masks);
            var clean = Kinds.Select(kind => problem.Run(width, kind: kind)).ToArray();
            var s = problem.Shape;
            var p = problem.Problem;
            float[] poisons = [float.NaN, float.PositiveInfinity, float.NegativeInfinity];
            for (int b = 0; b < s.Batch; b++)
            for (int j = 0; j < s.KeyCount; j++)
            {
                if (!problem.MaskedEverywhere(b, j)) continue;
                for (int g = 0; g < s.KeyValueHeads; g++)
                {
                    for (int c = 0; c < s.HeadSize; c++) p.Key[At(s.KeyLayout, b, g, j, c)] = poisons[(j + c) % 3];
                    for (int c = 0; c < s.ValueHeadSize; c++) p.Value[At(s.ValueLayout, b, g, j, c)] = poisons[(j + c + 1) % 3];
                }
            }
            for (int k = 0; k < Kinds.Length; k++)
            {
                var (output, lse) = problem.Run(width, kind: Kinds[k]);
                Assert.Equal(Bits(clean[k].Output), Bits(output));
                Assert.Equal(Bits(clean[k].LogSumExp), Bits(lse));
            }
        });

    private static int[] Bits(float[] values) => values.Select(BitConverter.SingleToInt32Bits).ToArray();

    public static TheoryData<string> MaskKinds() => ["key length 0", "causal", "window", "boolean mask", "bias −∞", "soft-cap with bias −∞"];

    /// <summary>A row with no visible key gives zeros and a log-sum-exp of −∞ (of the sink with one), never NaN, for every mask kind.</summary>
    [Theory]
    [MemberData(nameof(MaskKinds))]
    public void Compute_FullyMaskedRows_ZerosAndNegativeInfinity(string kind)
    {
        var problem = FullyMasked(kind);
        var s = problem.Shape;
        foreach (var width in KernelDispatch.All)
        foreach (var k in Kinds)
        {
            var (output, lse) = problem.Run(width, kind: k);
            Assert.All(output, x => Assert.False(float.IsNaN(x)));
            int dv = s.ValueHeadSize, masked = 0;
            for (int row = 0; row < lse.Length; row++)
            {
                int b = row / (s.QueryHeads * s.QueryCount), h = row / s.QueryCount % s.QueryHeads, i = row % s.QueryCount;
                if (Enumerable.Range(0, s.KeyCount).Any(j => problem.VisibleWithBias(b, h, i, j))) continue;
                masked++;
                Assert.Equal(float.NegativeInfinity, lse[row]);
                for (int c = 0; c < dv; c++) Assert.Equal(0f, output[row * dv + c]);
            }
            Assert.True(masked > 0, $"{kind}: the test problem has no fully masked row");
            problem.AssertClose(output, lse);
        }

        // With sinks, a fully masked row's log-sum-exp is the sink and its output still zeros.
        var withSinks = new MaskedProblem
        {
            Problem = problem.Problem, Masks = problem.Masks with { Sinks = true }, Bias = problem.Bias, Mask = problem.Mask,
            KeyLengths = problem.KeyLengths, Sinks = [0.25f, float.NegativeInfinity, 2f, 0f],
        };
        foreach (var k in Kinds)
        {
            var (o2, l2) = withSinks.Run(kind: k);
            withSinks.AssertClose(o2, l2);
        }
    }

    /// <summary>A problem where some rows see no key, for each mask kind alone.</summary>
    private static MaskedProblem FullyMasked(string kind)
    {
        var causal = kind == "causal" ? CausalMask.BottomRight : CausalMask.None;
        int keys = kind is "causal" or "window" ? 4 : 40; // 6 queries on 4 keys: bottom-right rows 0, 1 and top-left window rows 4, 5 see nothing
        var spec = new ProblemSpec(2, 4, 2, 6, keys, 16, 12, LayoutKind.Bhsd, causal, null, 2f, 11);
        var masks = MaskSpec.None with { Seed = 3 };
        var problem = MaskedProblem.Create(spec, masks).Problem;
        var s = problem.Shape;
        return kind switch
        {
            "key length 0" => new MaskedProblem { Problem = problem, Masks = masks with { KeyLengths = true }, KeyLengths = [40, 0] },
            "causal" => new MaskedProblem { Problem = problem, Masks = masks },
            "window" => new MaskedProblem { Problem = problem, Masks = masks with { Window = new SlidingWindow(0, 0) } },
            "boolean mask" => new MaskedProblem { Problem = problem, Masks = masks with { BoolMask = true }, Mask = RowsOff(s, 2, 4) },
            "bias −∞" => new MaskedProblem { Problem = problem, Masks = masks with { Bias = true }, Bias = NegativeInfinityRows(s) },
            _ => new MaskedProblem { Problem = problem, Masks = masks with { Bias = true, SoftCap = 5f }, Bias = NegativeInfinityRows(s) },
        };
    }

    private static float[] NegativeInfinityRows(AttentionShape s) => RowsOff(s, 2, 4).Select(on => on ? 0.5f : float.NegativeInfinity).ToArray();

    /// <summary>A full [B, Hq, Lq, Lk] mask whose query rows <paramref name="from"/>..<paramref name="to"/>−1 see nothing, every other key visible.</summary>
    private static bool[] RowsOff(AttentionShape s, int from, int to)
    {
        var mask = new bool[(long)s.Batch * s.QueryHeads * s.QueryCount * s.KeyCount];
        for (int n = 0; n < mask.Length; n++)
        {
            int i = (int)(n / s.KeyCount % s.QueryCount);
            mask[n] = i < from || i >= to;
        }
        return mask;
    }

    [Fact]
    public void Compute_SoftCapWithNegativeInfinityBias_MasksInsteadOfCapping()
    {
        // Soft-cap applies before the bias: −∞ bias stays −∞ (a masked key), it does not become −c and leak weight.
        var spec = new ProblemSpec(1, 2, 1, 5, 9, 8, 8, LayoutKind.Bhsd, CausalMask.None, null, 2f, 5);
        var problem = MaskedProblem.Create(spec, MaskSpec.None with { SoftCap = 3f });
        var s = problem.Shape;
        var bias = new float[s.QueryCount * s.KeyCount];
        for (int i = 0; i < s.QueryCount; i++) bias[i * s.KeyCount + 4] = float.NegativeInfinity; // key 4 masked for every row
        problem = new MaskedProblem { Problem = problem.Problem, Masks = problem.Masks with { Bias = true, BiasBroadcast = MaskBroadcast.All }, Bias = bias };
        for (int g = 0; g < s.KeyValueHeads; g++)
            for (int c = 0; c < s.ValueHeadSize; c++) problem.Problem.Value[(g * s.KeyCount + 4) * s.ValueHeadSize + c] = 1e30f;
        foreach (var kind in Kinds)
        {
            var (output, lse) = problem.Run(kind: kind);
            Assert.All(output, x => Assert.True(Math.Abs(x) < 10, $"the masked key's 1e30 value row leaked: {x}"));
            problem.AssertClose(output, lse);
        }
    }

    [Fact]
    public void AlibiSlopes_StandardValues()
    {
        Assert.Equal([0.5f, 0.25f, 0.125f, 0.0625f, 0.03125f, 0.015625f, 0.0078125f, 0.00390625f], Alibi.Slopes(8));
        // Not a power of two: the 4-head slopes, then every other slope of 8 heads.
        Assert.Equal([0.25f, 0.0625f, 0.015625f, 0.00390625f, 0.5f, 0.125f], Alibi.Slopes(6));
        Assert.Equal([0.00390625f], Alibi.Slopes(1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Alibi.Slopes(0));
        Assert.Throws<ArgumentException>(() => Alibi.Slopes(4, new float[3]));
    }

    private static long At(TensorLayout l, int b, int h, int r, int c) => l.Offset + b * l.BatchStride + h * l.HeadStride + r * l.RowStride + c;
}
