using System.Runtime.CompilerServices;

namespace FastAttention.Kernels;

/// <summary>
/// How one stored element type becomes fp32 lanes, for kernels that read narrower tensors in place (decode streams
/// K and V once, so it widens as it goes; prefill and staged decode widen into scratch with the same loaders).
/// <c>scale</c> is the row's int8 scale and is ignored by the other types. Every loader but
/// <see cref="Int8ValueLoader"/> gives exactly what <see cref="ElementConversion{TVec, TOps}"/> writes for the same
/// elements; that one leaves the scale out for the caller to fold into a score or a weight.
/// </summary>
internal unsafe interface IElementLoader
{
    /// <summary>Bytes per element.</summary>
    static abstract int Size { get; }

    /// <summary>TOps.Count elements at <paramref name="source"/> as fp32 (int8: times <paramref name="scale"/>).</summary>
    static abstract TVec Load<TVec, TOps>(byte* source, TVec scale) where TVec : unmanaged where TOps : IVectorOps<TVec>;

    /// <summary>Whether the loader leaves each row's scale out, for the kernel to multiply into the row's score or weight.</summary>
    static virtual bool FoldsRowScale => false;

    /// <summary>
    /// For the 16-bit types (<see cref="Size"/> 2): what <see cref="Load"/> gives from the patterns already in the lanes,
    /// sign-extended (<see cref="IVectorOps{TVec}.LoadInt16Bits"/>), so that wider loads can feed it.
    /// </summary>
    static virtual TVec FromInt16Bits<TVec, TOps>(TVec bits) where TVec : unmanaged where TOps : IVectorOps<TVec> =>
        throw new NotSupportedException("Only 16-bit element types convert from 16-bit patterns.");
}

internal unsafe struct Float32Loader : IElementLoader
{
    public static int Size => 4;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Load<TVec, TOps>(byte* source, TVec scale) where TVec : unmanaged where TOps : IVectorOps<TVec> => TOps.LoadStreamed((float*)source);
}

internal unsafe struct HalfLoader : IElementLoader
{
    public static int Size => 2;

    /// <summary>
    /// IEEE half to fp32, exactly, from the sign-extended pattern: shifted left 13, one mask keeps the sign (bit 31)
    /// with exponent and mantissa in place, and a multiply by 2¹¹² rebiases (normalising subnormals, keeping ±0).
    /// Only exponent 31 (±∞, NaN) lands at or above 2¹⁶, which no finite half reaches: those lanes take the all-ones
    /// exponent instead (NaN payloads kept, not quietened).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Load<TVec, TOps>(byte* source, TVec scale) where TVec : unmanaged where TOps : IVectorOps<TVec> =>
        FromInt16Bits<TVec, TOps>(TOps.LoadInt16Bits((short*)source));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec FromInt16Bits<TVec, TOps>(TVec bits) where TVec : unmanaged where TOps : IVectorOps<TVec>
    {
        TVec t = TOps.And(TOps.ShiftLeft(bits, 13), TOps.Create(BitConverter.UInt32BitsToSingle(0x8FFF_E000u)));
        TVec rebiased = TOps.Multiply(t, TOps.Create(BitConverter.UInt32BitsToSingle(0x7780_0000u))); // 2¹¹²
        return TOps.SelectLess(TOps.Abs(rebiased), TOps.Create(65536f), rebiased, TOps.Or(t, TOps.Create(BitConverter.UInt32BitsToSingle(0x7000_0000u))));
    }
}

/// <summary>
/// <see cref="HalfLoader"/> for halves known to be finite (see <see cref="ElementConversion{TVec, TOps}.AllHalvesFinite"/>):
/// the same bits without the ±∞/NaN fix-up, three operations fewer per vector.
/// </summary>
internal unsafe struct FiniteHalfLoader : IElementLoader
{
    public static int Size => 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Load<TVec, TOps>(byte* source, TVec scale) where TVec : unmanaged where TOps : IVectorOps<TVec> =>
        FromInt16Bits<TVec, TOps>(TOps.LoadInt16Bits((short*)source));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec FromInt16Bits<TVec, TOps>(TVec bits) where TVec : unmanaged where TOps : IVectorOps<TVec> =>
        TOps.Multiply(HalfBitsLoader.FromInt16Bits<TVec, TOps>(bits), TOps.Create(BitConverter.UInt32BitsToSingle(0x7780_0000u)));
}

/// <summary>
/// Finite halves as fp32 times 2⁻¹¹², exactly (possibly subnormal): <see cref="FiniteHalfLoader"/> without its
/// rebiasing multiply. Decode puts the 2¹¹² into the other factor instead (the query row, or the weights), which
/// is exact both ways, so every product and sum is bit for bit the one of the widened values.
/// </summary>
internal unsafe struct HalfBitsLoader : IElementLoader
{
    public static int Size => 2;

    /// <summary>The factor the other operand carries.</summary>
    public const float Rebias = 5.192296858534828e33f; // 2¹¹²

    /// <summary>2⁻⁹⁶: what exponent 31 (±∞, NaN) reads as at the least; every finite half reads as less in magnitude.</summary>
    public static float NonFinite => BitConverter.UInt32BitsToSingle(0x0F80_0000u);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Load<TVec, TOps>(byte* source, TVec scale) where TVec : unmanaged where TOps : IVectorOps<TVec> =>
        FromInt16Bits<TVec, TOps>(TOps.LoadInt16Bits((short*)source));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec FromInt16Bits<TVec, TOps>(TVec bits) where TVec : unmanaged where TOps : IVectorOps<TVec> =>
        TOps.And(TOps.ShiftLeft(bits, 13), TOps.Create(BitConverter.UInt32BitsToSingle(0x8FFF_E000u)));
}

internal unsafe struct BFloat16Loader : IElementLoader
{
    public static int Size => 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Load<TVec, TOps>(byte* source, TVec scale) where TVec : unmanaged where TOps : IVectorOps<TVec> =>
        FromInt16Bits<TVec, TOps>(TOps.LoadInt16Bits((short*)source));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec FromInt16Bits<TVec, TOps>(TVec bits) where TVec : unmanaged where TOps : IVectorOps<TVec> => TOps.ShiftLeft(bits, 16);
}

internal unsafe struct Int8Loader : IElementLoader
{
    public static int Size => 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Load<TVec, TOps>(byte* source, TVec scale) where TVec : unmanaged where TOps : IVectorOps<TVec> =>
        TOps.Multiply(TOps.LoadInt8((sbyte*)source), scale);
}

/// <summary>
/// int8 values as fp32, exactly, without the row's scale: decode multiplies the scale into the row's score and its
/// weight instead, one multiply per key rather than one per element.
/// </summary>
internal unsafe struct Int8ValueLoader : IElementLoader
{
    public static int Size => 1;

    public static bool FoldsRowScale => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Load<TVec, TOps>(byte* source, TVec scale) where TVec : unmanaged where TOps : IVectorOps<TVec> =>
        TOps.LoadInt8((sbyte*)source);
}
