using System.Runtime.CompilerServices;

namespace FastAttention.Kernels;

/// <summary>How the elements of a tensor are stored. Every kernel computes in fp32: other types are widened on load.</summary>
internal enum ElementType : byte
{
    Float32,
    Float16,
    BFloat16,

    /// <summary>Symmetric int8 with one fp32 scale per row: the element is <c>(float)value · scale</c>, rounded once to fp32.</summary>
    Int8,
}

/// <summary>One tensor as the kernels see it: base address (layout offset applied), element type, strides in elements.</summary>
internal unsafe struct Operand
{
    public byte* Data;
    public ElementType Type;
    public nint BatchStride, HeadStride, RowStride;

    /// <summary>Int8 only: one fp32 scale per row, at <c>b·ScaleBatchStride + h·ScaleHeadStride + row</c>.</summary>
    public float* Scales;
    public nint ScaleBatchStride, ScaleHeadStride;

    public readonly bool IsFloat32 => Type == ElementType.Float32;

    public static int ElementSize(ElementType type) => type switch
    {
        ElementType.Float32 => 4,
        ElementType.Int8 => 1,
        _ => 2,
    };

    /// <summary>The first element of row <paramref name="row"/> of head <paramref name="h"/> of batch <paramref name="b"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly byte* Row(int b, int h, int row) => Data + (b * BatchStride + h * HeadStride + row * RowStride) * ElementSize(Type);

    /// <summary><see cref="Row"/> for an fp32 tensor.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly float* Floats(int b, int h, int row) => (float*)Data + b * BatchStride + h * HeadStride + row * RowStride;

    /// <summary>The scale of an int8 row (1 for the other types).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly float Scale(int b, int h, int row) => Scales == null ? 1f : Scales[b * ScaleBatchStride + h * ScaleHeadStride + row];
}
