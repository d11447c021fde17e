using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace FastAttention.Kernels;

/// <summary>
/// Widening of stored elements to fp32, written once over a vector width: exact for Half and BFloat16, one fp32
/// multiply for int8 (the definition of its value). Kernels widen a block into scratch that stays in cache and
/// run their fp32 loops over it, so results equal those of fp32 inputs holding the widened values, bit for bit.
/// </summary>
internal static unsafe class ElementConversion<TVec, TOps>
    where TVec : unmanaged
    where TOps : IVectorOps<TVec>
{
    /// <summary>Rows <paramref name="firstRow"/>.. of (b, h), <paramref name="columns"/> elements each, into fp32 rows <paramref name="destinationStride"/> apart.</summary>
    public static void WidenRows(in Operand source, int b, int h, int firstRow, int rows, int columns, float* destination, nint destinationStride)
    {
        for (int r = 0; r < rows; r++)
            Widen(source.Type, source.Row(b, h, firstRow + r), destination + r * destinationStride, columns, source.Scale(b, h, firstRow + r));
    }

    /// <summary>Row (b, h, row) of an fp32, Half or BFloat16 tensor times <paramref name="scale"/>, as fp32 (the gathered, pre-scaled query rows).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ScaledRow(in Operand source, int b, int h, int row, float* destination, int count, float scale)
    {
        if (source.IsFloat32)
        {
            MicroKernels<TVec, TOps>.Scale(source.Floats(b, h, row), destination, count, scale);
            return;
        }
        Widen(source.Type, source.Row(b, h, row), destination, count, 1f);
        MicroKernels<TVec, TOps>.Scale(destination, destination, count, scale);
    }

    /// <summary><paramref name="count"/> elements of <paramref name="type"/> at <paramref name="source"/> as fp32 (int8 times <paramref name="scale"/>).</summary>
    public static void Widen(ElementType type, byte* source, float* destination, int count, float scale)
    {
        int w = TOps.Count, i = 0;
        switch (type)
        {
            case ElementType.Float32:
                Buffer.MemoryCopy(source, destination, (long)count * 4, (long)count * 4);
                return;
            case ElementType.Float16:
                for (; i + w <= count; i += w) TOps.Store(HalfToSingle<TVec, TOps>(TOps.LoadUInt16Bits((ushort*)source + i)), destination + i);
                for (; i < count; i++) destination[i] = HalfToSingle<float, ScalarOps>(ScalarOps.LoadUInt16Bits((ushort*)source + i));
                return;
            case ElementType.BFloat16:
                for (; i + w <= count; i += w) TOps.Store(TOps.ShiftLeft(TOps.LoadUInt16Bits((ushort*)source + i), 16), destination + i);
                for (; i < count; i++) destination[i] = BitConverter.UInt32BitsToSingle((uint)((ushort*)source)[i] << 16);
                return;
            default:
                TVec s = TOps.Create(scale);
                for (; i + w <= count; i += w) TOps.Store(TOps.Multiply(TOps.LoadInt8((sbyte*)source + i), s), destination + i);
                for (; i < count; i++) destination[i] = ((sbyte*)source)[i] * scale;
                return;
        }
    }

    /// <summary>
    /// IEEE half bit patterns (zero-extended in the lanes) to fp32, exactly: exponent and mantissa moved into
    /// place and rebiased by a multiply by 2¹¹², which also normalises subnormals; ±∞ and NaN get the all-ones
    /// exponent (NaN payloads kept, not quietened); the sign is put back last.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV HalfToSingle<TV, TO>(TV bits) where TV : unmanaged where TO : IVectorOps<TV>
    {
        TV sign = TO.ShiftLeft(TO.And(bits, TO.Create(BitConverter.UInt32BitsToSingle(0x8000u))), 16);
        TV magnitude = TO.ShiftLeft(TO.And(bits, TO.Create(BitConverter.UInt32BitsToSingle(0x7FFFu))), 13);
        TV rebiased = TO.Multiply(magnitude, TO.Create(BitConverter.UInt32BitsToSingle(0x7780_0000u))); // 2¹¹²
        // magnitude ≥ 0x0F80_0000 (half exponent all ones): as fp32 bit patterns of positive numbers compare like integers.
        TV special = TO.Or(magnitude, TO.Create(BitConverter.UInt32BitsToSingle(0x7000_0000u)));
        return TO.Or(TO.SelectLess(magnitude, TO.Create(BitConverter.UInt32BitsToSingle(0x0F80_0000u)), rebiased, special), sign);
    }
}

/// <summary>Narrowing of finished fp32 output rows to the output's element type (round to nearest, ties to even).</summary>
internal static unsafe class OutputConversion
{
    public static void Narrow(ElementType type, float* source, byte* destination, int count)
    {
        if (type == ElementType.Float16)
        {
            TensorPrimitives.ConvertToHalf(new ReadOnlySpan<float>(source, count), new Span<Half>(destination, count));
            return;
        }
        ushort* target = (ushort*)destination;
        for (int i = 0; i < count; i++) target[i] = BFloat16.Round(BitConverter.SingleToUInt32Bits(source[i]));
    }
}
