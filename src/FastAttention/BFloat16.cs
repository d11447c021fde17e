using System.Runtime.CompilerServices;

namespace FastAttention;

/// <summary>
/// A bfloat16 number as stored: the upper 16 bits of an IEEE fp32 (1 sign, 8 exponent, 7 mantissa bits). .NET 10
/// has no such type; this is storage only. Widening to <see cref="float"/> is exact; narrowing rounds to nearest,
/// ties to even, as PyTorch and the hardware conversions do, keeps ±∞ and turns every NaN into a quiet NaN of the
/// same sign.
/// </summary>
public readonly struct BFloat16 : IEquatable<BFloat16>
{
    private BFloat16(ushort bits) => RawValue = bits;

    /// <summary>The 16-bit pattern.</summary>
    public ushort RawValue { get; }

    /// <summary>The number with bit pattern <paramref name="bits"/>.</summary>
    public static BFloat16 FromBits(ushort bits) => new(bits);

    /// <summary>Exact: the pattern shifted into the upper half of an fp32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static implicit operator float(BFloat16 value) => BitConverter.UInt32BitsToSingle((uint)value.RawValue << 16);

    /// <summary>Rounds to nearest, ties to even; NaN stays NaN (quiet, same sign).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static explicit operator BFloat16(float value) => new(Round(BitConverter.SingleToUInt32Bits(value)));

    /// <summary>The nearest bfloat16 pattern of the fp32 pattern <paramref name="bits"/> (ties to even).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ushort Round(uint bits)
    {
        if ((bits & 0x7FFF_FFFFu) > 0x7F80_0000u) return (ushort)((bits >> 16) | 0x0040u); // NaN: keep sign and payload top, set quiet bit
        return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16); // overflow to ±∞ falls out of the carry
    }

    /// <summary>Whether the value is a NaN.</summary>
    public static bool IsNaN(BFloat16 value) => (value.RawValue & 0x7FFF) > 0x7F80;

    /// <summary>Bitwise equality of the patterns (so NaN equals the same NaN; +0 and −0 differ).</summary>
    public bool Equals(BFloat16 other) => RawValue == other.RawValue;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is BFloat16 other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => RawValue;

    /// <summary>The value as an fp32 would print.</summary>
    public override string ToString() => ((float)this).ToString();
}
