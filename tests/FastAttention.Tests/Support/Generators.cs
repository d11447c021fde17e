using FsCheck;
using FsCheck.Fluent;

namespace FastAttention.Tests.Support;

/// <summary>FsCheck generators of attention problems. Sizes are bounded so that the fp64 reference stays quick.</summary>
internal static class Generators
{
    private static readonly int[] Ratios = [1, 2, 3, 4, 8];

    public static Gen<ProblemSpec> Problems(float magnitude = 2f, bool allowCausal = true) =>
        from kvHeads in Gen.Choose(1, 2)
        from ratio in Gen.Elements(Ratios)
        from batch in Gen.Choose(1, 2)
        from headSize in Gen.Frequency((3, Gen.Choose(1, 40)), (1, Gen.Choose(41, 300)))
        from valueHeadSize in Gen.Frequency((2, Gen.Constant(headSize)), (1, Gen.Choose(1, 70)))
        from queryCount in Gen.Frequency((3, Gen.Choose(1, 24)), (1, Gen.Choose(25, 70)))
        from keyCount in Gen.Frequency((1, Gen.Constant(1)), (1, Gen.Constant(queryCount)), (3, Gen.Choose(1, 90)))
        from layout in Gen.Elements(LayoutKind.Bhsd, LayoutKind.Bshd, LayoutKind.PackedQkv, LayoutKind.Strided)
        from causal in allowCausal ? Gen.Elements(CausalMask.None, CausalMask.TopLeft, CausalMask.BottomRight) : Gen.Constant(CausalMask.None)
        from scale in Gen.Frequency((3, Gen.Constant<float?>(null)), (1, Gen.Choose(-300, 300).Select(x => (float?)(x / 100f))))
        from seed in Gen.Choose(0, int.MaxValue)
        let packed = layout == LayoutKind.PackedQkv
        select new ProblemSpec(batch, kvHeads * ratio, kvHeads,
            queryCount, packed ? queryCount : keyCount, headSize, packed ? headSize : valueHeadSize,
            layout, causal, scale, magnitude, seed);
}
