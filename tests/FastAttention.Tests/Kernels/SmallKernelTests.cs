using FastAttention.Kernels;
using FastAttention.Planning;
using FastAttention.Tests.Support;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace FastAttention.Tests.Kernels;

/// <summary>The one-pass kernel for small unmasked problems: which problems take it, and its results.</summary>
public class SmallKernelTests
{
    private static KernelArguments Arguments(int queries, int keys, int headSize, CausalMask causal = CausalMask.None,
        ElementType key = ElementType.Float32, float softCap = 0f, bool window = false) => new()
    {
        Batch = 1, QueryHeads = 2, KeyValueHeads = 1, GroupSize = 2, QueryCount = queries, KeyCount = keys,
        HeadSize = headSize, ValueHeadSize = headSize, Causal = causal, SoftCap = softCap, HasWindow = window,
        Query = new Operand { Type = ElementType.Float32 }, Key = new Operand { Type = key }, Value = new Operand { Type = ElementType.Float32 },
    };

    [Fact]
    public void PreferredKind_SmallUnmaskedFp32_TakesTheSmallKernel()
    {
        Assert.Equal(KernelKind.Small, Planner.PreferredKind(Arguments(16, 16, 64)));
        Assert.Equal(KernelKind.Decode, Planner.PreferredKind(Arguments(4, 16, 64)));                                  // few rows: decode
        Assert.Equal(KernelKind.Decode, Planner.PreferredKind(Arguments(16, 16, 64, CausalMask.TopLeft)));            // a mask: decode
        Assert.Equal(KernelKind.Decode, Planner.PreferredKind(Arguments(16, 16, 64, window: true)));
        Assert.Equal(KernelKind.Decode, Planner.PreferredKind(Arguments(16, 16, 64, softCap: 30f)));
        Assert.Equal(KernelKind.Small, Planner.PreferredKind(Arguments(16, 16, 64, key: ElementType.Float16)));      // element types never decide
        Assert.Equal(KernelKind.Prefill, Planner.PreferredKind(Arguments(64, 512, 64)));                              // large: prefill
        Assert.Equal(KernelKind.Decode, Planner.Plan(Arguments(16, 16, 64, CausalMask.TopLeft), KernelWidth.Scalar, 1, KernelKind.Small).Kind);
    }

    private static Gen<ProblemSpec> Unmasked() =>
        from spec in Generators.Problems(allowCausal: false)
        from queryCount in Gen.Choose(5, 40)
        select spec.Layout == LayoutKind.PackedQkv ? spec with { QueryCount = queryCount, KeyCount = queryCount } : spec with { QueryCount = queryCount };

    /// <summary>Forced on generated unmasked problems at every width: the reference, and the same bits on any thread count.</summary>
    [Property(MaxTest = 200)]
    public Property Compute_SmallKernel_MatchesReferenceOnAnyThreadCount() =>
        Prop.ForAll(Unmasked().ToArbitrary(), Gen.Elements(KernelDispatch.All.ToArray()).ToArbitrary(), (spec, width) =>
        {
            var problem = TestProblem.Create(spec);
            var (first, firstLse) = problem.Run(width, threads: 1, kind: KernelKind.Small);
            Tolerance.AssertClose(problem, first, firstLse);
            foreach (int? threads in new int?[] { 2, 3, null })
            {
                var (output, lse) = problem.Run(width, threads, KernelKind.Small);
                Assert.True(first.AsSpan().SequenceEqual(output), $"{spec}: output differs at {threads} threads");
                Assert.True(firstLse.AsSpan().SequenceEqual(lse), $"{spec}: log-sum-exp differs at {threads} threads");
            }
        });

    /// <summary>A row whose every score is −∞ (an infinite key against it): zeros and a log-sum-exp of −∞, no NaN; NaN in a value row reaches every row.</summary>
    [Fact]
    public void Compute_InfiniteScoresAndNaN_AsTheContractSays()
    {
        foreach (KernelWidth width in KernelDispatch.All)
        {
            var problem = TestProblem.Create(new ProblemSpec(1, 1, 1, 8, 20, 4, 4, LayoutKind.Bhsd, CausalMask.None, 1f, 1f, 11));
            for (int c = 0; c < 4; c++) problem.Query[3 * 4 + c] = c == 0 ? 1f : 0f;   // row 3: q = e₀
            for (int j = 0; j < 20; j++) problem.Key[j * 4] = float.NegativeInfinity; // every key: k₀ = −∞, so row 3 scores −∞ throughout
            var (output, lse) = problem.Run(width, kind: KernelKind.Small);
            Assert.All(output.AsSpan(3 * 4, 4).ToArray(), x => Assert.Equal(0f, x));
            Assert.Equal(float.NegativeInfinity, lse[3]);

            var nan = TestProblem.Create(new ProblemSpec(1, 1, 1, 8, 20, 4, 4, LayoutKind.Bhsd, CausalMask.None, 1f, 1f, 12));
            nan.Value[5 * 4 + 2] = float.NaN;
            var (withNaN, _) = nan.Run(width, kind: KernelKind.Small);
            for (int r = 0; r < 8; r++) Assert.True(float.IsNaN(withNaN[r * 4 + 2]), $"{width}: row {r} column 2 should be NaN");
        }
    }
}
