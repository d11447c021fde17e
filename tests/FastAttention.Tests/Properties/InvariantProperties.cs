using FastAttention.Tests.Support;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace FastAttention.Tests.Properties;

/// <summary>Invariants that hold whatever the reference says.</summary>
public class InvariantProperties
{
    private static Gen<ProblemSpec> Dense(bool allowCausal) =>
        Generators.Problems(allowCausal: allowCausal).Select(s => s with { Layout = s.Layout == LayoutKind.PackedQkv ? LayoutKind.Bhsd : s.Layout });

    [Property(MaxTest = 200)]
    public Property Compute_KeyValueRowsPermutedTogether_OutputUnchanged() =>
        Prop.ForAll(Dense(allowCausal: false).ToArbitrary(), spec =>
        {
            var problem = TestProblem.Create(spec);
            var (before, _) = problem.Run();
            var s = problem.Shape;
            var permutation = Enumerable.Range(0, s.KeyCount).OrderBy(_ => Random.Shared.Next()).ToArray();
            var key = (float[])problem.Key.Clone();
            var value = (float[])problem.Value.Clone();
            for (int b = 0; b < s.Batch; b++)
            for (int h = 0; h < s.KeyValueHeads; h++)
            for (int j = 0; j < s.KeyCount; j++)
            {
                for (int t = 0; t < s.HeadSize; t++) key[At(s.KeyLayout, b, h, j, t)] = problem.Key[At(s.KeyLayout, b, h, permutation[j], t)];
                for (int c = 0; c < s.ValueHeadSize; c++) value[At(s.ValueLayout, b, h, j, c)] = problem.Value[At(s.ValueLayout, b, h, permutation[j], c)];
            }
            var permuted = new TestProblem { Spec = spec, Shape = s, Query = problem.Query, Key = key, Value = value, Output = problem.Output };
            var (after, _) = permuted.Run();
            // Summation order changes, so compare within the contract's bound rather than bitwise.
            var (expected, _) = problem.Reference();
            Assert.True(Tolerance.OutputErrorInUnits(problem, after, expected) <= Tolerance.Factor, $"{spec}: permuted output off the reference");
            Assert.True(Tolerance.OutputErrorInUnits(problem, before, expected) <= Tolerance.Factor, $"{spec}: output off the reference");
        });

    [Property(MaxTest = 200)]
    public Property Compute_AllValueRowsEqual_OutputIsThatRow() =>
        Prop.ForAll(Dense(allowCausal: true).ToArbitrary(), spec =>
        {
            var problem = TestProblem.Create(spec);
            var s = problem.Shape;
            var row = Enumerable.Range(0, s.ValueHeadSize).Select(c => (float)Math.Sin(c + 1)).ToArray();
            for (int b = 0; b < s.Batch; b++)
            for (int h = 0; h < s.KeyValueHeads; h++)
            for (int j = 0; j < s.KeyCount; j++)
            for (int c = 0; c < s.ValueHeadSize; c++)
                problem.Value[At(s.ValueLayout, b, h, j, c)] = row[c];
            var (output, _) = problem.Run();
            for (int n = 0; n < output.Length; n++)
            {
                int i = n / s.ValueHeadSize % s.QueryCount;
                bool anyVisible = Enumerable.Range(0, s.KeyCount).Any(j => ReferenceAttention.IsVisible(spec.Causal, i, j, s.QueryCount, s.KeyCount));
                double expected = anyVisible ? row[n % s.ValueHeadSize] : 0;
                // Output = (sum of p_j v) / (sum of p_j): each sum of Lk rounded terms is within about Lk ulp
                // (the summation bound), so the row within 2 Lk + 8 ulp of its magnitude. The former bound,
                // 8 max(1, Lk/8), sat below this for 8 < Lk < 64 and failed on the scalar path at Lk 11 (9 ulp).
                Assert.True(Math.Abs(output[n] - expected) <= (8 + 2 * s.KeyCount) * Tolerance.Unit, $"{spec}: element {n} is {output[n]}, expected {expected}");
            }
        });

    [Property(MaxTest = 200)]
    public Property Compute_Causal_RowsIgnoreLaterKeysBitwise() =>
        Prop.ForAll(Dense(allowCausal: true).Select(s => s with { Causal = s.Causal == CausalMask.None ? CausalMask.TopLeft : s.Causal }).ToArbitrary(), spec =>
        {
            var problem = TestProblem.Create(spec);
            var (before, beforeLse) = problem.Run();
            var s = problem.Shape;
            // Rewrite every key and value row that row `pivot` cannot see, with NaN for good measure.
            int pivot = s.QueryCount / 2;
            var random = new Random(spec.Seed);
            for (int b = 0; b < s.Batch; b++)
            for (int h = 0; h < s.KeyValueHeads; h++)
            for (int j = 0; j < s.KeyCount; j++)
            {
                if (ReferenceAttention.IsVisible(spec.Causal, pivot, j, s.QueryCount, s.KeyCount)) continue;
                for (int t = 0; t < s.HeadSize; t++) problem.Key[At(s.KeyLayout, b, h, j, t)] = random.Next(3) == 0 ? float.NaN : random.NextSingle() * 50;
                for (int c = 0; c < s.ValueHeadSize; c++) problem.Value[At(s.ValueLayout, b, h, j, c)] = random.Next(3) == 0 ? float.PositiveInfinity : float.NaN;
            }
            var (after, afterLse) = problem.Run();
            for (int b = 0; b < s.Batch; b++)
            for (int h = 0; h < s.QueryHeads; h++)
            for (int i = 0; i <= pivot; i++)
            {
                long row = ((long)b * s.QueryHeads + h) * s.QueryCount + i;
                for (int c = 0; c < s.ValueHeadSize; c++)
                    Assert.Equal(BitConverter.SingleToInt32Bits(before[row * s.ValueHeadSize + c]), BitConverter.SingleToInt32Bits(after[row * s.ValueHeadSize + c]));
                Assert.Equal(BitConverter.SingleToInt32Bits(beforeLse[row]), BitConverter.SingleToInt32Bits(afterLse[row]));
            }
        });

    private static long At(TensorLayout l, int b, int h, int r, int c) => l.Offset + b * l.BatchStride + h * l.HeadStride + r * l.RowStride + c;
}
