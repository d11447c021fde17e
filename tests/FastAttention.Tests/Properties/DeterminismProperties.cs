using FastAttention.Tests.Support;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace FastAttention.Tests.Properties;

public class DeterminismProperties
{
    /// <summary>Large enough problems to cross the parallel threshold, so that threads really share the work.</summary>
    private static Gen<ProblemSpec> Problems() =>
        from spec in Generators.Problems()
        from queryCount in Gen.Frequency((3, Gen.Choose(60, 200)), (1, Gen.Choose(1, 4)))
        from extraKeys in Gen.Choose(100, 1500)
        let headSize = Math.Max(spec.HeadSize, 16)
        select spec.Layout == LayoutKind.PackedQkv
            ? spec with { QueryCount = queryCount, KeyCount = queryCount, HeadSize = headSize, ValueHeadSize = headSize }
            : spec with { QueryCount = queryCount, KeyCount = queryCount <= 4 ? extraKeys * 2 : spec.KeyCount + 100, HeadSize = headSize };

    [Property(MaxTest = 150)]
    public Property Compute_AnyDegreeOfParallelism_BitwiseIdentical() =>
        Prop.ForAll(Problems().ToArbitrary(), spec =>
        {
            var problem = TestProblem.Create(spec);
            var (first, firstLse) = problem.Run(threads: 1);
            foreach (int? threads in new int?[] { 2, 3, 7, null })
            {
                var (output, lse) = problem.Run(threads: threads);
                Assert.True(first.AsSpan().SequenceEqual(output), $"{spec}: output differs at {threads} threads");
                Assert.True(firstLse.AsSpan().SequenceEqual(lse), $"{spec}: log-sum-exp differs at {threads} threads");
            }
        });
}
