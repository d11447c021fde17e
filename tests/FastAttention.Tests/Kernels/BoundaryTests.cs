using FastAttention.Kernels;
using FastAttention.Planning;
using FastAttention.Tests.Support;
using Xunit;

namespace FastAttention.Tests.Kernels;

/// <summary>Every head size and key count around the vector boundaries, at every width.</summary>
public class BoundaryTests
{
    private static readonly int[] Sizes =
        [.. Enumerable.Range(1, 40), 63, 64, 65, 127, 128, 129, 255, 256, 257];

    public static TheoryData<int, int> HeadSizes()
    {
        var data = new TheoryData<int, int>();
        foreach (var w in KernelDispatch.All) foreach (int d in Sizes) data.Add((int)w, d);
        return data;
    }

    public static TheoryData<int, int> KeyCounts()
    {
        var data = new TheoryData<int, int>();
        foreach (var w in KernelDispatch.All) foreach (int k in Sizes.Prepend(0)) data.Add((int)w, k);
        return data;
    }

    [Theory]
    [MemberData(nameof(HeadSizes))]
    public void Compute_HeadSizeNearVectorBoundary_MatchesReference(int widthBits, int headSize)
    {
        var width = (KernelWidth)widthBits;
        foreach (var causal in new[] { CausalMask.None, CausalMask.BottomRight })
        {
            var problem = TestProblem.Create(new ProblemSpec(1, 2, 1, 5, 37, headSize, headSize, LayoutKind.Strided, causal, null, 2f, headSize));
            foreach (var kind in new[] { KernelKind.Prefill, KernelKind.Decode, KernelKind.Small })
            {
                var (output, lse) = problem.Run(width, kind: kind);
                Tolerance.AssertClose(problem, output, lse);
            }
        }
    }

    [Theory]
    [MemberData(nameof(KeyCounts))]
    public void Compute_KeyCountNearVectorBoundary_MatchesReference(int widthBits, int keyCount)
    {
        var width = (KernelWidth)widthBits;
        foreach (var causal in new[] { CausalMask.None, CausalMask.TopLeft, CausalMask.BottomRight })
        {
            var problem = TestProblem.Create(new ProblemSpec(1, 3, 3, 6, keyCount, 33, 17, LayoutKind.Bshd, causal, null, 2f, keyCount));
            foreach (var kind in new[] { KernelKind.Prefill, KernelKind.Decode, KernelKind.Small })
            {
                var (output, lse) = problem.Run(width, kind: kind);
                Tolerance.AssertClose(problem, output, lse);
            }
        }
    }

    [Theory]
    [InlineData(CausalMask.BottomRight, 9, 4)]  // rows 0..4 see no key
    [InlineData(CausalMask.None, 5, 0)]         // no keys at all
    [InlineData(CausalMask.TopLeft, 7, 0)]
    public void Compute_FullyMaskedRows_ZerosAndNegativeInfinityLogSumExp(CausalMask causal, int queryCount, int keyCount)
    {
        foreach (var width in KernelDispatch.All)
        foreach (var kind in new[] { KernelKind.Prefill, KernelKind.Decode, KernelKind.Small })
        {
            var problem = TestProblem.Create(new ProblemSpec(2, 2, 1, queryCount, keyCount, 8, 8, LayoutKind.Bhsd, causal, null, 2f, 7));
            var (output, lse) = problem.Run(width, kind: kind);
            var s = problem.Shape;
            for (int b = 0; b < s.Batch; b++)
            for (int h = 0; h < s.QueryHeads; h++)
            for (int i = 0; i < s.QueryCount; i++)
            {
                bool any = Enumerable.Range(0, keyCount).Any(j => ReferenceAttention.IsVisible(causal, i, j, queryCount, keyCount));
                long row = ((long)b * s.QueryHeads + h) * s.QueryCount + i;
                if (any) continue;
                Assert.Equal(float.NegativeInfinity, lse[row]);
                for (int c = 0; c < s.ValueHeadSize; c++) Assert.Equal(0f, output[row * s.ValueHeadSize + c]);
            }
            Assert.All(output, x => Assert.False(float.IsNaN(x)));
            Tolerance.AssertClose(problem, output, lse);
        }
    }

    [Theory]
    [InlineData(16)]
    [InlineData(64)] // at 16 lanes, one 4-vector panel: the softmax runs inside the P·V tile
    public void Compute_RowWhoseEveryScoreIsNegativeInfinity_IsZeroAndItsBlockNeighboursKeepTheirBits(int valueHeadSize)
    {
        // The prefill kernel updates the softmax of a wholly visible 4-row block in one interleaved pass. A row whose
        // every score is −∞ (a query element −∞ against keys whose element is positive) must still come out as a
        // fully masked row, and the other rows of its block exactly as when that row is finite.
        int dv = valueHeadSize;
        foreach (var width in KernelDispatch.All)
        {
            var problem = TestProblem.Create(new ProblemSpec(1, 1, 1, 8, 64, 16, dv, LayoutKind.Bhsd, CausalMask.None, null, 1f, 11));
            for (int j = 0; j < 64; j++) problem.Key[j * 16] = 0.5f + j / 128f;
            var (before, beforeLse) = problem.Run(width, kind: KernelKind.Prefill);
            Tolerance.AssertClose(problem, before, beforeLse);
            problem.Query[2 * 16] = float.NegativeInfinity;
            var (after, afterLse) = problem.Run(width, kind: KernelKind.Prefill);
            for (int i = 0; i < 8; i++)
            {
                if (i == 2)
                {
                    Assert.Equal(float.NegativeInfinity, afterLse[i]);
                    for (int c = 0; c < dv; c++) Assert.Equal(0f, after[i * dv + c]);
                    continue;
                }
                Assert.Equal(BitConverter.SingleToInt32Bits(beforeLse[i]), BitConverter.SingleToInt32Bits(afterLse[i]));
                for (int c = 0; c < dv; c++) Assert.Equal(BitConverter.SingleToInt32Bits(before[i * dv + c]), BitConverter.SingleToInt32Bits(after[i * dv + c]));
            }
        }
    }

    [Fact]
    public void Compute_NaNInVisibleValue_PropagatesToThatRowOnly()
    {
        var problem = TestProblem.Create(new ProblemSpec(1, 1, 1, 6, 6, 4, 4, LayoutKind.Bhsd, CausalMask.TopLeft, null, 1f, 3));
        problem.Value[3 * 4 + 1] = float.NaN; // key 3, column 1: visible to rows 3, 4, 5
        foreach (var kind in new[] { KernelKind.Prefill, KernelKind.Decode, KernelKind.Small })
        {
            var (output, _) = problem.Run(kind: kind);
            for (int i = 0; i < 6; i++)
                Assert.Equal(i >= 3, float.IsNaN(output[i * 4 + 1]));
        }
    }

    [Theory]
    [InlineData(-1, false)]
    [InlineData(13, false)]
    [InlineData(-1, true)]
    public void Compute_NonFiniteValueAtTheEdgeOfABand_LeavesRowsThatCannotSeeItBitwise(int windowLeft, bool asBoolMask)
    {
        // Along the causal diagonal and a sliding window, the 4 rows of a block see ranges a key apart. The prefill
        // kernel takes such a block in one pass, with zero weights on the keys a row cannot see, unless a value row at
        // the block's edges is not finite: then row by row. A row's bits must depend on neither: keys 21 and 42 sit
        // at right edges (rows 20..23, 40..43) and, with the window, at left edges (rows 32..35, 52..55). The lower
        // triangle also as a boolean mask with a soft-cap: score terms that remove no key inside a row's range.
        int[] poisoned = [21, 42];
        foreach (var width in KernelDispatch.All)
        {
            var window = windowLeft >= 0 ? new SlidingWindow(windowLeft, 0) : (SlidingWindow?)null;
            var masks = new MaskSpec(false, MaskBroadcast.None, false, asBoolMask, MaskBroadcast.All, 0, false, false, false, asBoolMask ? 2f : null, window, null, 3);
            var spec = new ProblemSpec(1, 2, 1, 64, 64, 16, 16, LayoutKind.Bhsd, asBoolMask ? CausalMask.None : CausalMask.TopLeft, null, 1f, 5);
            var problem = asBoolMask
                ? new MaskedProblem { Problem = TestProblem.Create(spec), Masks = masks, Mask = Enumerable.Range(0, 64 * 64).Select(n => n % 64 <= n / 64).ToArray() }
                : MaskedProblem.Create(spec, masks);
            var s = problem.Shape;
            var (before, beforeLse) = problem.Run(width, kind: KernelKind.Prefill);
            var l = s.ValueLayout;
            foreach (int key in poisoned)
                for (int c = 0; c < 16; c++) problem.Problem.Value[l.Offset + key * l.RowStride + c] = c % 2 == 0 ? float.NaN : float.PositiveInfinity;
            var (after, afterLse) = problem.Run(width, kind: KernelKind.Prefill);
            for (int h = 0; h < s.QueryHeads; h++)
            for (int i = 0; i < s.QueryCount; i++)
            {
                int row = h * s.QueryCount + i;
                bool sees = poisoned.Any(j => ReferenceAttention.IsVisible(s, problem.Options, problem.Tensors, 0, h, i, j));
                var values = after.AsSpan(row * 16, 16).ToArray();
                if (sees)
                {
                    Assert.Contains(values, x => !float.IsFinite(x));
                    continue;
                }
                Assert.Equal(BitConverter.SingleToInt32Bits(beforeLse[row]), BitConverter.SingleToInt32Bits(afterLse[row]));
                for (int c = 0; c < 16; c++)
                    Assert.True(BitConverter.SingleToInt32Bits(before[row * 16 + c]) == BitConverter.SingleToInt32Bits(values[c]), $"{width} window {windowLeft} bool mask {asBoolMask}: row {i} of head {h}, column {c}");
            }
        }
    }
}
