using System.Runtime.InteropServices;
using FastAttention.Kernels;

namespace FastAttention;

/// <summary>
/// An input tensor of any element type the kernels read: fp32, <see cref="Half"/>, <see cref="BFloat16"/>, or
/// (keys and values only) symmetric int8 with one fp32 scale per row. Converts implicitly from spans and arrays of
/// the floating-point types; <see cref="Int8"/> makes the quantised form. Elements are widened to fp32 on load and
/// everything after is computed in fp32. Layouts (offsets, strides) count elements, whatever their size.
/// </summary>
public readonly ref struct AttentionTensor
{
    private readonly ReadOnlySpan<byte> _bytes;

    private AttentionTensor(ReadOnlySpan<byte> bytes, ElementType type, int length, ReadOnlySpan<float> scales = default, int scaleRows = 0)
    {
        _bytes = bytes;
        Type = type;
        Length = length;
        Scales = scales;
        ScaleRows = scaleRows;
    }

    /// <summary>Elements in the tensor's buffer.</summary>
    public int Length { get; }

    /// <summary>Int8 only: the scale of each row, <c>[batch, heads, <see cref="ScaleRows"/>]</c> dense (the last head's rows past the key count may be absent).</summary>
    public ReadOnlySpan<float> Scales { get; }

    /// <summary>Int8 only: rows per head in <see cref="Scales"/>; 0 means the shape's row count (key count).</summary>
    public int ScaleRows { get; }

    internal ElementType Type { get; }

    internal ReadOnlySpan<byte> Bytes => _bytes;

    /// <summary>
    /// Symmetric int8 rows: element <c>(b, h, row, c)</c> stands for <c>(float)values[…] · scales[(b·heads + h)·rows + row]</c>
    /// (one fp32 rounding), with <c>rows</c> = <paramref name="scaleRows"/> or, when 0, the key count. Keys and values only.
    /// <see cref="Int8Quantization.QuantizeRows"/> makes both from fp32 rows.
    /// </summary>
    public static AttentionTensor Int8(ReadOnlySpan<sbyte> values, ReadOnlySpan<float> scales, int scaleRows = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(scaleRows);
        return new(MemoryMarshal.AsBytes(values), ElementType.Int8, values.Length, scales, scaleRows);
    }

    /// <summary>Views <paramref name="span"/> without copying.</summary>
    public static implicit operator AttentionTensor(ReadOnlySpan<float> span) => new(MemoryMarshal.AsBytes(span), ElementType.Float32, span.Length);
    /// <summary>Views <paramref name="span"/> without copying.</summary>
    public static implicit operator AttentionTensor(Span<float> span) => (ReadOnlySpan<float>)span;
    /// <summary>Views <paramref name="array"/> without copying.</summary>
    public static implicit operator AttentionTensor(float[]? array) => (ReadOnlySpan<float>)array;
    /// <summary>Views <paramref name="span"/> without copying.</summary>
    public static implicit operator AttentionTensor(ReadOnlySpan<Half> span) => new(MemoryMarshal.AsBytes(span), ElementType.Float16, span.Length);
    /// <summary>Views <paramref name="span"/> without copying.</summary>
    public static implicit operator AttentionTensor(Span<Half> span) => (ReadOnlySpan<Half>)span;
    /// <summary>Views <paramref name="array"/> without copying.</summary>
    public static implicit operator AttentionTensor(Half[]? array) => (ReadOnlySpan<Half>)array;
    /// <summary>Views <paramref name="span"/> without copying.</summary>
    public static implicit operator AttentionTensor(ReadOnlySpan<BFloat16> span) => new(MemoryMarshal.AsBytes(span), ElementType.BFloat16, span.Length);
    /// <summary>Views <paramref name="span"/> without copying.</summary>
    public static implicit operator AttentionTensor(Span<BFloat16> span) => (ReadOnlySpan<BFloat16>)span;
    /// <summary>Views <paramref name="array"/> without copying.</summary>
    public static implicit operator AttentionTensor(BFloat16[]? array) => (ReadOnlySpan<BFloat16>)array;
}

/// <summary>The output tensor: fp32, <see cref="Half"/> or <see cref="BFloat16"/> (rounded to nearest even from the fp32 result). Converts implicitly from spans and arrays.</summary>
public readonly ref struct AttentionOutput
{
    private readonly Span<byte> _bytes;

    private AttentionOutput(Span<byte> bytes, ElementType type, int length)
    {
        _bytes = bytes;
        Type = type;
        Length = length;
    }

    /// <summary>Elements in the output buffer.</summary>
    public int Length { get; }

    internal ElementType Type { get; }

    internal Span<byte> Bytes => _bytes;

    /// <summary>Views <paramref name="span"/> without copying.</summary>
    public static implicit operator AttentionOutput(Span<float> span) => new(MemoryMarshal.AsBytes(span), ElementType.Float32, span.Length);
    /// <summary>Views <paramref name="array"/> without copying.</summary>
    public static implicit operator AttentionOutput(float[]? array) => (Span<float>)array;
    /// <summary>Views <paramref name="span"/> without copying.</summary>
    public static implicit operator AttentionOutput(Span<Half> span) => new(MemoryMarshal.AsBytes(span), ElementType.Float16, span.Length);
    /// <summary>Views <paramref name="array"/> without copying.</summary>
    public static implicit operator AttentionOutput(Half[]? array) => (Span<Half>)array;
    /// <summary>Views <paramref name="span"/> without copying.</summary>
    public static implicit operator AttentionOutput(Span<BFloat16> span) => new(MemoryMarshal.AsBytes(span), ElementType.BFloat16, span.Length);
    /// <summary>Views <paramref name="array"/> without copying.</summary>
    public static implicit operator AttentionOutput(BFloat16[]? array) => (Span<BFloat16>)array;
}
