using FastAttention.Kernels;
using FastAttention.Tests.Support;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace FastAttention.Tests.Properties;

/// <summary>The public API against the fp64 reference over generated problems.</summary>
public class ReferenceProperties
{
    [Property(MaxTest = 700)]
    public Property Compute_GeneratedProblem_MatchesReference() =>
        Prop.ForAll(Generators.Problems().ToArbitrary(), spec =>
        {
            var problem = TestProblem.Create(spec);
            var (output, lse) = problem.Run();
            Tolerance.AssertClose(problem, output, lse);
        });

    [Property(MaxTest = 250)]
    public Property Compute_LogitsUpTo1e4_StayFiniteAndMatchReference() =>
        Prop.ForAll(Generators.Problems(magnitude: 100f).ToArbitrary(), spec =>
        {
            var problem = TestProblem.Create(spec);
            var (output, lse) = problem.Run();
            Assert.All(output, x => Assert.True(float.IsFinite(x), $"{spec}: non-finite output {x}"));
            Tolerance.AssertClose(problem, output, lse);
        });

    [Property(MaxTest = 250)]
    public Property Compute_EveryWidth_MatchesReference() =>
        Prop.ForAll(Generators.Problems().ToArbitrary(), Gen.Elements(KernelDispatch.All.ToArray()).ToArbitrary(), (spec, width) =>
        {
            var problem = TestProblem.Create(spec);
            var (output, lse) = problem.Run(width);
            Tolerance.AssertClose(problem, output, lse);
        });
}
