using FastAttention.Kernels;
using FastAttention.Planning;
using FastAttention.Tests.Support;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace FastAttention.Tests.ElementTypes;

/// <summary>
/// Half, BFloat16 and int8 inputs (and Half or BFloat16 outputs) against fp32: every product and sum stays fp32,
/// so a typed call must give exactly what an fp32 call gives on the widened values, whatever the kernel, width,
/// thread count, layout or mask; and that result must be within the fp32 bound of the fp64 reference computed on
/// those same (already rounded) values. One exception by design: decode reading int8 keys and values in place
/// multiplies each row's scale into its score and weight (one multiply per key, not per element), which rounds
/// differently unless the scales are powers of two; there the bound holds, and the bits for power-of-two scales.
/// </summary>
public class ElementTypeProperties
{
    private static readonly Gen<Storage> QueryStorage = Gen.Elements(Storage.Float32, Storage.Half, Storage.BFloat16);
    private static readonly Gen<Storage> InputStorage = Gen.Elements(Storage.Float32, Storage.Half, Storage.BFloat16, Storage.Int8, Storage.Int8PowerOfTwo);

    private static Gen<(TypedProblem Problem, Storage Output, KernelWidth Width, KernelKind? Kind, int Threads)> Cases() =>
        from pair in MaskGenerators.Problems(maxQueries: 40)
        from withMasks in Gen.Elements(false, true)
        from q in QueryStorage
        from k in InputStorage
        from v in InputStorage
        from output in QueryStorage
        from width in Gen.Elements(KernelDispatch.All.ToArray())
        from kind in Gen.Elements<KernelKind?>(null, KernelKind.Prefill, KernelKind.Decode, KernelKind.Small)
        from threads in Gen.Elements(1, 2)
        where q != Storage.Float32 || k != Storage.Float32 || v != Storage.Float32 || output != Storage.Float32
        select (TypedProblem.Create(MaskedProblem.Create(pair.Spec, withMasks ? pair.Masks : MaskSpec.None), q, k, v), output, width, kind, threads);

    /// <summary>Whether decode may fold int8 scales (int8 with any scale, a kernel other than prefill).</summary>
    private static bool MayFoldScales(TypedProblem problem, KernelKind? kind) =>
        (problem.KeyStorage == Storage.Int8 || problem.ValueStorage == Storage.Int8) && kind != KernelKind.Prefill;

    [Property(MaxTest = 250)]
    public Property TypedInputs_EqualFp32OnTheWidenedValues_Bitwise() =>
        Prop.ForAll(Cases().Where(c => !MayFoldScales(c.Problem, c.Kind)).ToArbitrary(), c =>
        {
            var (expected, expectedLse) = c.Problem.Widened.Run(c.Width, c.Threads, c.Kind);
            var (actual, lse) = c.Problem.Run(c.Output, c.Width, c.Threads, c.Kind);
            float[] narrowed = TypedProblem.Narrowed(expected, c.Output);
            string label = $"{c.Problem} out {c.Output} {c.Width} {c.Kind} {c.Threads}t";
            for (int n = 0; n < actual.Length; n++)
            {
                bool same = BitConverter.SingleToInt32Bits(actual[n]) == BitConverter.SingleToInt32Bits(narrowed[n]) || (float.IsNaN(actual[n]) && float.IsNaN(narrowed[n]));
                Assert.True(same, $"{label}: output {n} is {actual[n]}, fp32 on the widened values gives {narrowed[n]}");
            }
            Assert.True(expectedLse.AsSpan().SequenceEqual(lse), $"{label}: log-sum-exp differs");
        });

    [Property(MaxTest = 120)]
    public Property TypedInputs_WithinTheFp32BoundOfTheReferenceOnTheRoundedInputs() =>
        Prop.ForAll(Cases().ToArbitrary(), c =>
        {
            var (actual, lse) = c.Problem.Run(Storage.Float32, c.Width, c.Threads, c.Kind);
            c.Problem.Widened.AssertClose(actual, lse);
        });

    [Theory]
    [InlineData("Half", 4)]
    [InlineData("BFloat16", 4)]
    [InlineData("Int8", 4)]
    [InlineData("Half", 1)]
    [InlineData("BFloat16", 1)]
    [InlineData("Int8PowerOfTwo", 1)]
    public void LongDecode_NarrowKeysAndValues_EqualFp32OnTheWidenedValues(string stored, int group)
    {
        var storage = Enum.Parse<Storage>(stored);
        // Several 512-key slices, a window and key lengths. A group of 4 rows widens each slice's visible rows into
        // scratch; a single row per head reads K and V in place, widening as it goes.
        var spec = new ProblemSpec(2, 2 * group, 2, 1, 1500, 72, 72, LayoutKind.Bshd, CausalMask.BottomRight, null, 2f, 7);
        var masks = MaskSpec.None with { KeyLengths = true, Window = new SlidingWindow(700, 0), Seed = 3 };
        var typed = TypedProblem.Create(MaskedProblem.Create(spec, masks), Storage.Float32, storage, storage);
        foreach (KernelWidth width in KernelDispatch.All)
        {
            var (expected, expectedLse) = typed.Widened.Run(width, 2);
            var (actual, lse) = typed.Run(Storage.Float32, width, 2);
            Assert.True(expected.AsSpan().SequenceEqual(actual), $"{storage} {width}: output differs from fp32 on the widened values");
            Assert.True(expectedLse.AsSpan().SequenceEqual(lse), $"{storage} {width}: log-sum-exp differs");
            typed.Widened.AssertClose(actual, lse);
        }
    }

    /// <summary>
    /// Prefill with a window much narrower than the keys, over several query blocks: each block's key tiles start at
    /// its first visible key (whole vectors), not at a multiple of the tile, so its keys come from the middle of the
    /// packed block and its values (widened once into scratch for the narrow types) from arbitrary rows; key lengths
    /// end some batches mid-tile. The same bits as fp32 on the widened values, within the bound, on any thread count.
    /// </summary>
    [Theory]
    [InlineData("Float32")]
    [InlineData("Half")]
    [InlineData("Int8")]
    public void Prefill_NarrowWindow_EqualFp32OnTheWidenedValues(string stored)
    {
        var storage = Enum.Parse<Storage>(stored);
        var spec = new ProblemSpec(2, 4, 2, 300, 1100, 72, 72, LayoutKind.Bshd, CausalMask.BottomRight, null, 2f, 11);
        var masks = MaskSpec.None with { KeyLengths = true, Window = new SlidingWindow(100, 3), Seed = 5 };
        var typed = TypedProblem.Create(MaskedProblem.Create(spec, masks), Storage.Float32, storage, storage);
        foreach (KernelWidth width in KernelDispatch.All)
        {
            var (expected, expectedLse) = typed.Widened.Run(width, 1, KernelKind.Prefill);
            typed.Widened.AssertClose(expected, expectedLse);
            foreach (int threads in new[] { 1, 3 })
            {
                var (actual, lse) = typed.Run(Storage.Float32, width, threads, KernelKind.Prefill);
                Assert.True(expected.AsSpan().SequenceEqual(actual), $"{storage} {width} {threads} threads: output differs from fp32 on the widened values");
                Assert.True(expectedLse.AsSpan().SequenceEqual(lse), $"{storage} {width} {threads} threads: log-sum-exp differs");
            }
        }
    }

    /// <summary>int8 read in place with any scales: the scales folded into scores and weights, within the bound, the same bits on any thread count.</summary>
    [Fact]
    public void LongDecode_Int8InPlace_WithinTheBoundOnAnyThreadCount()
    {
        var spec = new ProblemSpec(2, 2, 2, 1, 1500, 72, 72, LayoutKind.Bshd, CausalMask.BottomRight, null, 2f, 7);
        var masks = MaskSpec.None with { KeyLengths = true, Window = new SlidingWindow(700, 0), Seed = 3 };
        var typed = TypedProblem.Create(MaskedProblem.Create(spec, masks), Storage.Float32, Storage.Int8, Storage.Int8);
        foreach (KernelWidth width in KernelDispatch.All)
        {
            var (first, firstLse) = typed.Run(Storage.Float32, width, 1);
            typed.Widened.AssertClose(first, firstLse);
            foreach (int threads in new[] { 2, 3 })
            {
                var (output, lse) = typed.Run(Storage.Float32, width, threads);
                Assert.True(first.AsSpan().SequenceEqual(output), $"{width}: output differs at {threads} threads");
                Assert.True(firstLse.AsSpan().SequenceEqual(lse), $"{width}: log-sum-exp differs at {threads} threads");
            }
        }
    }

    [Theory]
    [InlineData(1, 1, 64)]   // plain decode: K and V read in place
    [InlineData(1, 1, 128)]  // plain decode with whole 8-vector column blocks at every width
    [InlineData(1, 1, 136)]  // and a head size that leaves a tail of columns after them
    [InlineData(4, 1, 64)]   // a group of 4 rows: each slice widened into scratch
    [InlineData(1, 40, 64)]  // prefill
    public void HalfKeysAndValues_WithInfinityAndNaN_PropagateAsFp32OnTheWidenedValues(int group, int queries, int d)
    {
        // ±∞ and NaN in visible Half rows take the conversion's exact path; the rest of the rows the fast one.
        // Key-value head 1 keeps finite scores, so its finite columns are compared bit for bit.
        var spec = new ProblemSpec(1, 3 * group, 3, queries, 700, d, d, LayoutKind.Bhsd, CausalMask.None, null, 1f, 5);
        var problem = MaskedProblem.Create(spec, MaskSpec.None);
        float[] key = problem.Problem.Key, value = problem.Problem.Value;
        key[3 * d + 5] = float.PositiveInfinity;             // head 0, key 3
        value[300 * d + d - 1] = float.PositiveInfinity;     // head 0, key 300, the last column
        value[(700 + 650) * d + 7] = float.NaN;              // head 1, key 650
        value[(700 + 20) * d + 9] = float.NegativeInfinity;
        value[(700 + 400) * d + d - 1] = float.PositiveInfinity; // head 1, key 400, the last column
        key[(1400 + 100) * d + d - 1] = float.NaN;           // head 2, key 100, the last column
        var typed = TypedProblem.Create(problem, Storage.Float32, Storage.Half, Storage.Half);
        foreach (KernelWidth width in KernelDispatch.All)
        {
            var (expected, expectedLse) = typed.Widened.Run(width, 1);
            var (actual, lse) = typed.Run(Storage.Float32, width, 1);
            Assert.Contains(actual, float.IsNaN); // the specials reached the output
            for (int n = 0; n < actual.Length; n++)
                Assert.True(BitConverter.SingleToInt32Bits(actual[n]) == BitConverter.SingleToInt32Bits(expected[n]) || (float.IsNaN(actual[n]) && float.IsNaN(expected[n])),
                    $"{width}: output {n} is {actual[n]}, fp32 on the widened values gives {expected[n]}");
            for (int n = 0; n < lse.Length; n++)
                Assert.True(BitConverter.SingleToInt32Bits(lse[n]) == BitConverter.SingleToInt32Bits(expectedLse[n]) || (float.IsNaN(lse[n]) && float.IsNaN(expectedLse[n])), $"{width}: log-sum-exp {n}");
        }
    }

    [Fact]
    public void HalfDecode_QueryTooLargeToRebias_TakesThePlainPathWithTheSameBits()
    {
        // |q·scale| up to 10⁵ ≥ 2¹⁶: the query cannot carry the halves' 2¹¹² without overflowing, so decode keeps
        // the rebiasing conversion. Keys up to 5·10⁴ stay finite in Half.
        var spec = new ProblemSpec(1, 2, 2, 1, 600, 64, 64, LayoutKind.Bhsd, CausalMask.None, 2f, 50000f, 9);
        var typed = TypedProblem.Create(MaskedProblem.Create(spec, MaskSpec.None), Storage.Float32, Storage.Half, Storage.Half);
        foreach (KernelWidth width in KernelDispatch.All)
        {
            var (expected, expectedLse) = typed.Widened.Run(width, 1);
            var (actual, lse) = typed.Run(Storage.Float32, width, 1);
            Assert.True(expected.AsSpan().SequenceEqual(actual), $"{width}: output differs from fp32 on the widened values");
            Assert.True(expectedLse.AsSpan().SequenceEqual(lse), $"{width}: log-sum-exp differs");
        }
    }
}
