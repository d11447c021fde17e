using FastAttention.Kernels;
using FastAttention.Planning;
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

    /// <summary>Few query rows against long key sequences: the split-KV decode path, several slices merged.</summary>
    [Property(MaxTest = 150)]
    public Property Compute_DecodeShapes_MatchesReference() =>
        Prop.ForAll((from spec in Generators.Problems()
                     from queryCount in Gen.Choose(1, 4)
                     from keyCount in Gen.Choose(1, 1600)
                     from width in Gen.Elements(KernelDispatch.All.ToArray())
                     select (spec with
                     {
                         Layout = spec.Layout == LayoutKind.PackedQkv ? LayoutKind.Bshd : spec.Layout,
                         QueryCount = queryCount, KeyCount = keyCount, HeadSize = Math.Min(spec.HeadSize, 96), ValueHeadSize = Math.Min(spec.ValueHeadSize, 96),
                     }, width)).ToArbitrary(), t =>
        {
            var problem = TestProblem.Create(t.Item1);
            var (output, lse) = problem.Run(t.width, threads: 2);
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

    /// <summary>Each kernel forced on the same generated problems, whichever the planner would pick.</summary>
    [Property(MaxTest = 300)]
    public Property Compute_EitherKernel_MatchesReference() =>
        Prop.ForAll(Generators.Problems().ToArbitrary(), Gen.Elements(KernelDispatch.All.ToArray()).ToArbitrary(), (spec, width) =>
        {
            var problem = TestProblem.Create(spec);
            foreach (var kind in new[] { KernelKind.Prefill, KernelKind.Decode, KernelKind.Small })
            {
                var (output, lse) = problem.Run(width, kind: kind);
                Tolerance.AssertClose(problem, output, lse);
            }
        });
}
