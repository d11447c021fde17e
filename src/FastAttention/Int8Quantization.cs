using FastAttention.Internal;

namespace FastAttention;

/// <summary>
/// Symmetric per-row int8 quantisation for keys and values (<see cref="AttentionTensor.Int8"/>): each row of
/// <c>n</c> floats becomes <c>n</c> int8 values and one fp32 scale, <c>scale = max|x| / 127</c> and
/// <c>value = round(x / scale)</c> (ties to even), so that <c>(float)value · scale</c> is within <c>scale / 2</c> of x
/// (plus one fp32 rounding). A row of zeros gets scale 0.
/// </summary>
public static class Int8Quantization
{
    /// <summary>Quantises consecutive rows of <paramref name="rowLength"/> floats.</summary>
    /// <param name="rows">fp32 rows, <c>rowCount · rowLength</c> elements, all finite.</param>
    /// <param name="rowLength">Elements per row (the head size), at least 1.</param>
    /// <param name="values">Receives <c>rowCount · rowLength</c> int8 values.</param>
    /// <param name="scales">Receives <c>rowCount</c> scales.</param>
    /// <exception cref="ArgumentException">A length does not fit, or an element is NaN or ±∞ (nothing is written then).</exception>
    public static void QuantizeRows(ReadOnlySpan<float> rows, int rowLength, Span<sbyte> values, Span<float> scales)
    {
        int count = RowCount(rows.Length, rowLength);
        if (values.Length < rows.Length) ThrowHelper.TooShort(nameof(values), $"[{count}, {rowLength}]", rows.Length, values.Length);
        if (scales.Length < count) ThrowHelper.TooShort(nameof(scales), $"[{count}]", count, scales.Length);
        for (int i = 0; i < rows.Length; i++)
        {
            if (!float.IsFinite(rows[i])) ThrowHelper.Argument(nameof(rows), $"rows[{i}] = {rows[i]}: only finite values can be quantised.");
        }
        for (int r = 0; r < count; r++)
        {
            ReadOnlySpan<float> row = rows.Slice(r * rowLength, rowLength);
            float max = 0f;
            foreach (float x in row) max = MathF.Max(max, MathF.Abs(x));
            float scale = max / 127f;
            scales[r] = scale;
            Span<sbyte> destination = values.Slice(r * rowLength, rowLength);
            if (scale == 0f)
            {
                destination.Clear();
                continue;
            }
            for (int c = 0; c < rowLength; c++)
                destination[c] = (sbyte)Math.Clamp(MathF.Round(row[c] / scale, MidpointRounding.ToEven), -127f, 127f);
        }
    }

    /// <summary>The fp32 rows int8 rows stand for: <c>(float)value · scale</c>, as the kernels widen them.</summary>
    /// <exception cref="ArgumentException">A length does not fit.</exception>
    public static void DequantizeRows(ReadOnlySpan<sbyte> values, ReadOnlySpan<float> scales, int rowLength, Span<float> rows)
    {
        int count = RowCount(values.Length, rowLength);
        if (scales.Length < count) ThrowHelper.TooShort(nameof(scales), $"[{count}]", count, scales.Length);
        if (rows.Length < values.Length) ThrowHelper.TooShort(nameof(rows), $"[{count}, {rowLength}]", values.Length, rows.Length);
        for (int i = 0; i < values.Length; i++) rows[i] = values[i] * scales[i / rowLength];
    }

    private static int RowCount(int length, int rowLength)
    {
        if (rowLength < 1) ThrowHelper.ArgumentOutOfRange(nameof(rowLength), $"rowLength must be at least 1; got {rowLength}.");
        if (length % rowLength != 0)
            ThrowHelper.Argument(nameof(rowLength), $"The element count {length} is not a whole number of rows of {rowLength}.");
        return length / rowLength;
    }
}
