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
        if (source.Scales == null && source.RowStride == columns && destinationStride == columns)
        {
            // Dense rows without scales (Half, BFloat16): one run of rows × columns elements, one scan for ±∞ and NaN
            // and one loop, not a call, a scan and a loop per row (prefill L2048d64 with Half K and V: 0.99× the time).
            Widen(source.Type, source.Row(b, h, firstRow), destination, rows * columns, 1f);
            return;
        }
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
        switch (type)
        {
            case ElementType.Float32: Buffer.MemoryCopy(source, destination, (long)count * 4, (long)count * 4); break;
            case ElementType.Float16:
                if (AllHalvesFinite(source, 0, 1, count)) Widen<FiniteHalfLoader>(source, destination, count, scale);
                else Widen<HalfLoader>(source, destination, count, scale);
                break;
            case ElementType.BFloat16: Widen<BFloat16Loader>(source, destination, count, scale); break;
            default: Widen<Int8Loader>(source, destination, count, scale); break;
        }
    }

    /// <summary>
    /// Whether <paramref name="rows"/> rows of <paramref name="columns"/> IEEE halves, <paramref name="rowStride"/>
    /// elements apart, are all finite: a scan on 16-bit lanes (a shift and a maximum per half a vector) that lets the
    /// conversion skip its ±∞/NaN fix-up, which costs more.
    /// </summary>
    public static bool AllHalvesFinite(byte* source, nint rowStride, int rows, int columns)
    {
        int w = TOps.Count;
        TVec tracker = TOps.Zero;
        for (int r = 0; r < rows; r++)
        {
            short* row = (short*)source + r * rowStride;
            int c = 0;
            for (; c + w <= columns; c += w) tracker = TOps.MaxHalfBits(tracker, row + c);
            for (; c < columns; c++)
            {
                if ((ushort)(row[c] << 1) >= 0xF800) return false;
            }
        }
        return !TOps.AnyNonFiniteHalf(tracker);
    }

    private static void Widen<TLoad>(byte* source, float* destination, int count, float scale) where TLoad : IElementLoader
    {
        int w = TOps.Count, i = 0;
        TVec s = TOps.Create(scale);
        for (; i + w <= count; i += w) TOps.Store(TLoad.Load<TVec, TOps>(source + i * TLoad.Size, s), destination + i);
        for (; i < count; i++) destination[i] = TLoad.Load<float, ScalarOps>(source + i * TLoad.Size, scale);
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
