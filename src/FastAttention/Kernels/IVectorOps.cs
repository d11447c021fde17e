using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FastAttention.Kernels;

/// <summary>
/// The arithmetic the kernels need, for one vector width. Kernels are written once as generic methods over
/// <typeparamref name="TVec"/> and an implementing struct; the JIT specialises each instantiation, so these
/// static calls inline into plain SIMD instructions with no dispatch in the hot loops.
/// </summary>
internal unsafe interface IVectorOps<TVec> where TVec : unmanaged
{
    /// <summary>Lanes per vector.</summary>
    static abstract int Count { get; }

    /// <summary>Whether this width runs on hardware instructions here (otherwise it is emulated, slowly but exactly).</summary>
    static abstract bool IsHardwareAccelerated { get; }

    static abstract TVec Zero { get; }
    static abstract TVec Create(float value);
    static abstract TVec Load(float* source);

    /// <summary>
    /// <see cref="Load"/> for rows streamed from memory once (decode keys and values): a 512-bit vector is read as
    /// two 256-bit halves, which the memory system streams much faster on AMD Zen 5 (measured here, one thread
    /// summing 268 MB: 43 GB/s against 29 with 512-bit loads; two threads 65 against 55), at one shuffle per vector.
    /// Narrower widths load as usual.
    /// </summary>
    static abstract TVec LoadStreamed(float* source);
    static abstract void Store(TVec value, float* destination);
    static abstract TVec Add(TVec a, TVec b);
    static abstract TVec Subtract(TVec a, TVec b);
    static abstract TVec Multiply(TVec a, TVec b);
    static abstract TVec Divide(TVec a, TVec b);

    /// <summary>Whether <see cref="ReciprocalEstimate"/> is the hardware's 14-bit estimate (AVX-512): cheap, where a division is the slowest floating-point instruction.</summary>
    static abstract bool HasReciprocalEstimate { get; }

    /// <summary>1/x to within 2⁻¹⁴ relative where <see cref="HasReciprocalEstimate"/>; the division elsewhere.</summary>
    static abstract TVec ReciprocalEstimate(TVec x);
    static abstract TVec Abs(TVec x);

    /// <summary>The lane numbers 0, 1, …, Count − 1 as floats.</summary>
    static abstract TVec Indices { get; }

    /// <summary>a·b + c, fused where the hardware has FMA.</summary>
    static abstract TVec MultiplyAdd(TVec a, TVec b, TVec c);

    /// <summary>Lane-wise maximum; which operand a NaN lane yields is unspecified.</summary>
    static abstract TVec Max(TVec a, TVec b);

    /// <summary>
    /// max(<paramref name="tracker"/>, |x|) lane-wise, for a non-negative tracker and lanes that are not NaN: one
    /// vrangeps where the CPU has AVX-512DQ, otherwise an and and a maximum.
    /// </summary>
    static abstract TVec MaxMagnitude(TVec tracker, TVec x);

    static abstract TVec Round(TVec x);
    static abstract TVec Floor(TVec x);

    /// <summary>2ⁿ for lanes holding integral n in [−126, 127].</summary>
    static abstract TVec Pow2(TVec n);

    /// <summary>
    /// p·2ⁿ rounded once, for lanes holding p in [0.5, 2) (the exp's polynomial) and integral n in [−150, 128]: one
    /// vscalefps where the CPU has AVX-512; otherwise n added to p's exponent field where every lane's n is in
    /// [−125, 127], so that each result is normal and the sum exact (3 operations, a compare and a branch practically
    /// never taken in a softmax), and <see cref="VectorMath.ScaleByPow2Exactly{TVec, TOps}"/> for the rest (10
    /// operations). The same bits every way.
    /// </summary>
    static abstract TVec ScaleByPow2(TVec p, TVec n);

    /// <summary>Lanes where x &lt; edge take <paramref name="replacement"/>, the others <paramref name="value"/>.</summary>
    static abstract TVec SelectLess(TVec x, TVec edge, TVec replacement, TVec value);

    /// <summary>Lanes where x &gt; edge take <paramref name="replacement"/>, the others <paramref name="value"/>.</summary>
    static abstract TVec SelectGreater(TVec x, TVec edge, TVec replacement, TVec value);

    /// <summary>Lanes where x == edge take <paramref name="replacement"/>, the others <paramref name="value"/>.</summary>
    static abstract TVec SelectEqual(TVec x, TVec edge, TVec replacement, TVec value);

    /// <summary>Lanes whose byte in <paramref name="flags"/> is nonzero keep <paramref name="value"/>, the others take <paramref name="fill"/> (a bool mask, read in place).</summary>
    static abstract TVec SelectByBytes(byte* flags, TVec value, TVec fill);

    /// <summary>Lanes below <paramref name="count"/> keep <paramref name="value"/>, the others take <paramref name="fill"/>: a vector tail without scalar code.</summary>
    static abstract TVec SelectFirst(int count, TVec value, TVec fill);

    /// <summary>Count 16-bit patterns from <paramref name="source"/>, sign-extended into the lanes' 32 bits (reads exactly Count·2 bytes).</summary>
    static abstract TVec LoadInt16Bits(short* source);

    /// <summary>
    /// 2·Count 16-bit patterns from <paramref name="source"/>, as <see cref="LoadInt16Bits"/> gives them at
    /// <paramref name="source"/> and Count further on; one 64-byte load where the vector is 512 bits wide (the memory
    /// system streams a row read in 64-byte loads faster than in 32-byte ones: see LoadStreamed). The narrower widths
    /// load each half on its own: one load there would cost a shuffle without filling a cache line either.
    /// </summary>
    static abstract void LoadInt16BitsPair(short* source, out TVec low, out TVec high);

    /// <summary>
    /// Folds Count IEEE half patterns at <paramref name="source"/> into <paramref name="tracker"/> (zero to start): per
    /// 16-bit lane, the largest pattern shifted left by one (the sign dropped). Works on 16-bit lanes, half a
    /// vector's width, so scanning costs a fraction of a conversion.
    /// </summary>
    static abstract TVec MaxHalfBits(TVec tracker, short* source);

    /// <summary>Whether a tracker of <see cref="MaxHalfBits"/> saw ±∞ or NaN (exponent all ones: shifted pattern ≥ 0xF800).</summary>
    static abstract bool AnyNonFiniteHalf(TVec tracker);

    /// <summary>Count int8 values from <paramref name="source"/> converted to float (reads exactly Count bytes).</summary>
    static abstract TVec LoadInt8(sbyte* source);

    /// <summary>
    /// Whether int8 rows are read a <see cref="LoadInt8Block"/> at a time and widened by <see cref="Int8Part"/> (512
    /// bits: one 64-byte load per cache line, a quarter out of it in one instruction) rather than a
    /// <see cref="LoadInt8"/> per vector (narrower widths, which widen straight from memory in one instruction, where
    /// taking a quarter out of a register costs a shuffle or more).
    /// </summary>
    static abstract bool ReadsInt8InBlocks { get; }

    /// <summary>
    /// 4·Count int8 values from <paramref name="source"/> as raw bytes in one vector-wide load; <see cref="Int8Part"/>
    /// converts a quarter. The kernels use it where <see cref="ReadsInt8InBlocks"/>.
    /// </summary>
    static abstract TVec LoadInt8Block(sbyte* source);

    /// <summary>Quarter <paramref name="part"/> (0-3, a constant) of a <see cref="LoadInt8Block"/> converted to float: as <see cref="LoadInt8"/> at source + part·Count.</summary>
    static abstract TVec Int8Part(TVec block, [ConstantExpected(Min = 0, Max = 3)] byte part);

    /// <summary>Bitwise and of the lanes' bits.</summary>
    static abstract TVec And(TVec a, TVec b);

    /// <summary>Bitwise or of the lanes' bits.</summary>
    static abstract TVec Or(TVec a, TVec b);

    /// <summary>Each lane's 32 bits shifted left by <paramref name="count"/>.</summary>
    static abstract TVec ShiftLeft(TVec x, int count);

    static abstract float MaxAcross(TVec v);
    static abstract float SumAcross(TVec v);

    /// <summary>destination[0..3] = the lane sums of a, b, c and d: four reductions sharing their shuffles.</summary>
    static abstract void StoreSums4(TVec a, TVec b, TVec c, TVec d, float* destination);

    /// <summary>
    /// A Count × Count block transposed: row i of <paramref name="source"/> (rows <paramref name="sourceStride"/>
    /// floats apart) becomes column i of <paramref name="destination"/> (rows <paramref name="destinationStride"/> apart).
    /// </summary>
    static abstract void TransposeBlock(float* source, nint sourceStride, float* destination, nint destinationStride);
}

/// <summary>The element-by-element block transpose, for widths the hardware does not accelerate.</summary>
internal static unsafe class TransposeFallback
{
    public static void Block(int count, float* source, nint sourceStride, float* destination, nint destinationStride)
    {
        for (int i = 0; i < count; i++)
        {
            for (int k = 0; k < count; k++) destination[k * destinationStride + i] = source[i * sourceStride + k];
        }
    }
}

/// <summary>Interleaves within each 128-bit lane, for the widths whose block transpose has hardware shuffles.</summary>
internal interface IInterleaveOps<TVec> where TVec : unmanaged
{
    /// <summary>unpcklps / unpckhps: 32-bit elements of a and b alternated, from the low or high half of each 128-bit lane.</summary>
    static abstract TVec Low32(TVec a, TVec b);
    static abstract TVec High32(TVec a, TVec b);

    /// <summary>The same with 64-bit pairs (unpcklpd / unpckhpd).</summary>
    static abstract TVec Low64(TVec a, TVec b);
    static abstract TVec High64(TVec a, TVec b);
}

/// <summary>The first rounds of every width's block transpose, written once.</summary>
internal static unsafe class Interleave
{
    /// <summary>Four rows <paramref name="stride"/> floats apart interleaved: lane L of u[k] holds column 4L + k of them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Rows4<TVec, TOps>(float* source, nint stride, out TVec u0, out TVec u1, out TVec u2, out TVec u3)
        where TVec : unmanaged
        where TOps : IVectorOps<TVec>, IInterleaveOps<TVec>
    {
        TVec r0 = TOps.Load(source), r1 = TOps.Load(source + stride), r2 = TOps.Load(source + 2 * stride), r3 = TOps.Load(source + 3 * stride);
        TVec t0 = TOps.Low32(r0, r1), t1 = TOps.High32(r0, r1), t2 = TOps.Low32(r2, r3), t3 = TOps.High32(r2, r3);
        u0 = TOps.Low64(t0, t2);
        u1 = TOps.High64(t0, t2);
        u2 = TOps.Low64(t1, t3);
        u3 = TOps.High64(t1, t3);
    }
}

internal unsafe struct Vector512Ops : IVectorOps<Vector512<float>>, IInterleaveOps<Vector512<float>>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Low32(Vector512<float> a, Vector512<float> b) => Avx512F.UnpackLow(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> High32(Vector512<float> a, Vector512<float> b) => Avx512F.UnpackHigh(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Low64(Vector512<float> a, Vector512<float> b) => Avx512F.UnpackLow(a.AsDouble(), b.AsDouble()).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> High64(Vector512<float> a, Vector512<float> b) => Avx512F.UnpackHigh(a.AsDouble(), b.AsDouble()).AsSingle();
    public static int Count => Vector512<float>.Count;
    public static bool IsHardwareAccelerated => Vector512.IsHardwareAccelerated;
    public static Vector512<float> Zero => Vector512<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Create(float value) => Vector512.Create(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(float* source) => Vector512.Load(source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadStreamed(float* source) =>
        // The low half read by a 256-bit broadcast: Vector512.Create(lo, hi) or an insert into a widened load are fused
        // by the JIT into one 512-bit load again.
        Avx512F.IsSupported ? Avx512F.InsertVector256(Avx512F.BroadcastVector256ToVector512((double*)source).AsSingle(), Vector256.Load(source + 8), 1) : Vector512.Load(source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector512<float> value, float* destination) => value.Store(destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Subtract(Vector512<float> a, Vector512<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Multiply(Vector512<float> a, Vector512<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Divide(Vector512<float> a, Vector512<float> b) => a / b;
    public static bool HasReciprocalEstimate => Avx512F.IsSupported;
    public static bool ReadsInt8InBlocks => true;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> ReciprocalEstimate(Vector512<float> x) => Avx512F.IsSupported ? Avx512F.Reciprocal14(x) : Vector512<float>.One / x;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Abs(Vector512<float> x) => Vector512.Abs(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> MaxMagnitude(Vector512<float> tracker, Vector512<float> x) =>
        Avx512DQ.IsSupported ? Avx512DQ.Range(tracker, x, 0b1011) : Vector512.MaxNative(tracker, Vector512.Abs(x)); // 11: larger magnitude, 10: sign cleared
    public static Vector512<float> Indices => Vector512<float>.Indices;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> MaxHalfBits(Vector512<float> tracker, short* source) =>
        Vector256.Max(tracker.GetLower().AsUInt16(), Vector256.ShiftLeft(Vector256.Load((ushort*)source), 1)).AsSingle().ToVector512Unsafe();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool AnyNonFiniteHalf(Vector512<float> tracker) => Vector256.GreaterThanOrEqualAny(tracker.GetLower().AsUInt16(), Vector256.Create((ushort)0xF800));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> LoadInt16Bits(short* source) => Vector512.WidenLower(Vector256.Load(source).ToVector512Unsafe()).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadInt16BitsPair(short* source, out Vector512<float> low, out Vector512<float> high)
    {
        Vector512<short> bits = Vector512.Load(source);
        low = Vector512.WidenLower(bits).AsSingle();
        high = Vector512.WidenUpper(bits).AsSingle();
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> LoadInt8Block(sbyte* source) => Vector512.Load((float*)source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Int8Part(Vector512<float> block, [ConstantExpected(Min = 0, Max = 3)] byte part) =>
        Avx512F.IsSupported ? Vector512.ConvertToSingle(Avx512F.ConvertToVector512Int32(Avx512F.ExtractVector128(block.AsInt32(), part).AsSByte()))
        : Vector512.ConvertToSingle(Vector512.WidenLower(Vector256.WidenLower(Quarter(block.AsSByte(), part).ToVector256Unsafe()).ToVector512Unsafe()));

    private static Vector128<sbyte> Quarter(Vector512<sbyte> block, int part) => part switch
    {
        0 => block.GetLower().GetLower(),
        1 => block.GetLower().GetUpper(),
        2 => block.GetUpper().GetLower(),
        _ => block.GetUpper().GetUpper(),
    };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> LoadInt8(sbyte* source) => Vector512.ConvertToSingle(Avx512F.IsSupported ? Avx512F.ConvertToVector512Int32(Vector128.Load(source)) : Vector512.WidenLower(Vector256.WidenLower(Vector128.Load(source).ToVector256Unsafe()).ToVector512Unsafe()));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> And(Vector512<float> a, Vector512<float> b) => a & b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Or(Vector512<float> a, Vector512<float> b) => a | b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> ShiftLeft(Vector512<float> x, int count) => Vector512.ShiftLeft(x.AsUInt32(), count).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> SelectEqual(Vector512<float> x, Vector512<float> edge, Vector512<float> replacement, Vector512<float> value) =>
        Vector512.ConditionalSelect(Vector512.Equals(x, edge), replacement, value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> SelectByBytes(byte* flags, Vector512<float> value, Vector512<float> fill) =>
        Vector512.ConditionalSelect(Vector512.Equals(Vector512.WidenLower(Vector256.WidenLower(Vector128.Load(flags).ToVector256Unsafe()).ToVector512Unsafe()), Vector512<uint>.Zero).AsSingle(), fill, value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> MultiplyAdd(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.MultiplyAddEstimate(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Max(Vector512<float> a, Vector512<float> b) => Vector512.MaxNative(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Round(Vector512<float> x) => Vector512.Round(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Floor(Vector512<float> x) => Vector512.Floor(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Pow2(Vector512<float> n) =>
        Vector512.ShiftLeft(Vector512.ConvertToInt32Native(n) + Vector512.Create(127), 23).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ScaleByPow2(Vector512<float> p, Vector512<float> n) =>
        Avx512F.IsSupported ? Avx512F.Scale(p, n) : VectorMath.ScaleByPow2Exactly<Vector512<float>, Vector512Ops>(p, n);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> SelectLess(Vector512<float> x, Vector512<float> edge, Vector512<float> replacement, Vector512<float> value) =>
        Vector512.ConditionalSelect(Vector512.LessThan(x, edge), replacement, value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> SelectGreater(Vector512<float> x, Vector512<float> edge, Vector512<float> replacement, Vector512<float> value) =>
        Vector512.ConditionalSelect(Vector512.GreaterThan(x, edge), replacement, value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> SelectFirst(int count, Vector512<float> value, Vector512<float> fill) =>
        Vector512.ConditionalSelect(Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count)).AsSingle(), value, fill);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Vector512<float> v) => Vector256Ops.MaxAcross(Vector256.MaxNative(v.GetLower(), v.GetUpper()));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float SumAcross(Vector512<float> v) => Vector512.Sum(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreSums4(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d, float* destination) =>
        Vector256Ops.StoreSums4(a.GetLower() + a.GetUpper(), b.GetLower() + b.GetUpper(), c.GetLower() + c.GetUpper(), d.GetLower() + d.GetUpper(), destination);

    /// <summary>16 × 16 in 64 shuffles: 32-bit and 64-bit interleaves within 128-bit lanes, then two rounds across them.</summary>
    public static void TransposeBlock(float* source, nint sourceStride, float* destination, nint destinationStride)
    {
        if (!Avx512F.IsSupported)
        {
            TransposeFallback.Block(16, source, sourceStride, destination, destinationStride);
            return;
        }
        // Four rows at a time: lane L of u[k] holds column 4L + k of those rows (registers, not a stack array).
        Interleave.Rows4<Vector512<float>, Vector512Ops>(source, sourceStride, out var a0, out var a1, out var a2, out var a3);
        Interleave.Rows4<Vector512<float>, Vector512Ops>(source + 4 * sourceStride, sourceStride, out var b0, out var b1, out var b2, out var b3);
        Interleave.Rows4<Vector512<float>, Vector512Ops>(source + 8 * sourceStride, sourceStride, out var c0, out var c1, out var c2, out var c3);
        Interleave.Rows4<Vector512<float>, Vector512Ops>(source + 12 * sourceStride, sourceStride, out var d0, out var d1, out var d2, out var d3);
        Columns4(a0, b0, c0, d0, destination, destinationStride);
        Columns4(a1, b1, c1, d1, destination + destinationStride, destinationStride);
        Columns4(a2, b2, c2, d2, destination + 2 * destinationStride, destinationStride);
        Columns4(a3, b3, c3, d3, destination + 3 * destinationStride, destinationStride);
    }

    /// <summary>Columns k, 4 + k, 8 + k, 12 + k (rows at destination, 4 rows apart) from lane L of a, b, c, d: a 4 × 4 transpose of 128-bit lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Columns4(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d, float* destination, nint stride)
    {
        Vector512<float> v0 = Avx512F.Shuffle4x128(a, b, 0x44), v1 = Avx512F.Shuffle4x128(a, b, 0xEE);
        Vector512<float> v2 = Avx512F.Shuffle4x128(c, d, 0x44), v3 = Avx512F.Shuffle4x128(c, d, 0xEE);
        Avx512F.Shuffle4x128(v0, v2, 0x88).Store(destination);
        Avx512F.Shuffle4x128(v0, v2, 0xDD).Store(destination + 4 * stride);
        Avx512F.Shuffle4x128(v1, v3, 0x88).Store(destination + 8 * stride);
        Avx512F.Shuffle4x128(v1, v3, 0xDD).Store(destination + 12 * stride);
    }
}

internal unsafe struct Vector256Ops : IVectorOps<Vector256<float>>, IInterleaveOps<Vector256<float>>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Low32(Vector256<float> a, Vector256<float> b) => Avx.UnpackLow(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> High32(Vector256<float> a, Vector256<float> b) => Avx.UnpackHigh(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Low64(Vector256<float> a, Vector256<float> b) => Avx.UnpackLow(a.AsDouble(), b.AsDouble()).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> High64(Vector256<float> a, Vector256<float> b) => Avx.UnpackHigh(a.AsDouble(), b.AsDouble()).AsSingle();
    public static int Count => Vector256<float>.Count;
    public static bool IsHardwareAccelerated => Vector256.IsHardwareAccelerated;
    public static Vector256<float> Zero => Vector256<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Create(float value) => Vector256.Create(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(float* source) => Vector256.Load(source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> LoadStreamed(float* source) => Vector256.Load(source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector256<float> value, float* destination) => value.Store(destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Subtract(Vector256<float> a, Vector256<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Multiply(Vector256<float> a, Vector256<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Divide(Vector256<float> a, Vector256<float> b) => a / b;
    public static bool HasReciprocalEstimate => Avx512F.VL.IsSupported;
    public static bool ReadsInt8InBlocks => false;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> ReciprocalEstimate(Vector256<float> x) => Avx512F.VL.IsSupported ? Avx512F.VL.Reciprocal14(x) : Vector256<float>.One / x;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Abs(Vector256<float> x) => Vector256.Abs(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MaxMagnitude(Vector256<float> tracker, Vector256<float> x) =>
        Avx512DQ.VL.IsSupported ? Avx512DQ.VL.Range(tracker, x, 0b1011) : Vector256.MaxNative(tracker, Vector256.Abs(x));
    public static Vector256<float> Indices => Vector256<float>.Indices;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MaxHalfBits(Vector256<float> tracker, short* source) =>
        Vector128.Max(tracker.GetLower().AsUInt16(), Vector128.ShiftLeft(Vector128.Load((ushort*)source), 1)).AsSingle().ToVector256Unsafe();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool AnyNonFiniteHalf(Vector256<float> tracker) => Vector128.GreaterThanOrEqualAny(tracker.GetLower().AsUInt16(), Vector128.Create((ushort)0xF800));
    // One vpmovsxwd from memory; the portable widening is a load and a separate widen.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadInt16Bits(short* source) =>
        Avx2.IsSupported ? Avx2.ConvertToVector256Int32(source).AsSingle() : Vector256.WidenLower(Vector128.Load(source).ToVector256Unsafe()).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadInt16BitsPair(short* source, out Vector256<float> low, out Vector256<float> high) { low = LoadInt16Bits(source); high = LoadInt16Bits(source + Vector256<float>.Count); }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> LoadInt8Block(sbyte* source) => Vector256.Load((float*)source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Int8Part(Vector256<float> block, [ConstantExpected(Min = 0, Max = 3)] byte part) =>
        Vector256.ConvertToSingle(Vector256.WidenLower(Vector128.WidenLower(Vector128.CreateScalar(block.AsInt64().GetElement(part)).AsSByte()).ToVector256Unsafe()));
    // One vpmovsxbd from memory and the conversion; the portable widening went through a general register and two widens.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadInt8(sbyte* source) =>
        Vector256.ConvertToSingle(Avx2.IsSupported ? Avx2.ConvertToVector256Int32(source) : Vector256.WidenLower(Vector128.WidenLower(Vector128.CreateScalar(*(long*)source).AsSByte()).ToVector256Unsafe()));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> And(Vector256<float> a, Vector256<float> b) => a & b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Or(Vector256<float> a, Vector256<float> b) => a | b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> ShiftLeft(Vector256<float> x, int count) => Vector256.ShiftLeft(x.AsUInt32(), count).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> SelectEqual(Vector256<float> x, Vector256<float> edge, Vector256<float> replacement, Vector256<float> value) =>
        Vector256.ConditionalSelect(Vector256.Equals(x, edge), replacement, value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> SelectByBytes(byte* flags, Vector256<float> value, Vector256<float> fill) =>
        Vector256.ConditionalSelect(Vector256.Equals(Vector256.WidenLower(Vector128.WidenLower(Vector128.CreateScalar(*(ulong*)flags).AsByte()).ToVector256Unsafe()), Vector256<uint>.Zero).AsSingle(), fill, value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> MultiplyAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.MultiplyAddEstimate(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Max(Vector256<float> a, Vector256<float> b) => Vector256.MaxNative(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Round(Vector256<float> x) => Vector256.Round(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Floor(Vector256<float> x) => Vector256.Floor(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Pow2(Vector256<float> n) =>
        Vector256.ShiftLeft(Vector256.ConvertToInt32Native(n) + Vector256.Create(127), 23).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ScaleByPow2(Vector256<float> p, Vector256<float> n)
    {
        if (Avx512F.VL.IsSupported) return Avx512F.VL.Scale(p, n);
        Vector256<int> exponent = Vector256.ConvertToInt32Native(n);
        // n outside [−125, 127]: n + 125 above 252 as unsigned, compared signed with the sign bit flipped (no unsigned
        // compare without AVX-512: the JIT would flip it in a second add).
        if (Vector256.GreaterThanAny(exponent + Vector256.Create(125 + int.MinValue), Vector256.Create(252 + int.MinValue))) return VectorMath.ScaleByPow2Exactly<Vector256<float>, Vector256Ops>(p, n);
        return (p.AsInt32() + Vector256.ShiftLeft(exponent, 23)).AsSingle();
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> SelectLess(Vector256<float> x, Vector256<float> edge, Vector256<float> replacement, Vector256<float> value) =>
        Vector256.ConditionalSelect(Vector256.LessThan(x, edge), replacement, value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> SelectGreater(Vector256<float> x, Vector256<float> edge, Vector256<float> replacement, Vector256<float> value) =>
        Vector256.ConditionalSelect(Vector256.GreaterThan(x, edge), replacement, value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> SelectFirst(int count, Vector256<float> value, Vector256<float> fill) =>
        Vector256.ConditionalSelect(Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(count)).AsSingle(), value, fill);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Vector256<float> v) => Vector128Ops.MaxAcross(Vector128.MaxNative(v.GetLower(), v.GetUpper()));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float SumAcross(Vector256<float> v) => Vector256.Sum(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreSums4(Vector256<float> a, Vector256<float> b, Vector256<float> c, Vector256<float> d, float* destination)
    {
        if (Avx.IsSupported)
        {
            // [a01 a23 b01 b23 | a45 a67 b45 b67], then [Σa Σb Σc Σd] per 128-bit half; add the halves.
            Vector256<float> h = Avx.HorizontalAdd(Avx.HorizontalAdd(a, b), Avx.HorizontalAdd(c, d));
            (h.GetLower() + h.GetUpper()).Store(destination);
            return;
        }
        Vector128Ops.StoreSums4(a.GetLower() + a.GetUpper(), b.GetLower() + b.GetUpper(), c.GetLower() + c.GetUpper(), d.GetLower() + d.GetUpper(), destination);
    }

    /// <summary>8 × 8 in 24 shuffles: 32-bit and 64-bit interleaves within 128-bit lanes, then one round across them.</summary>
    public static void TransposeBlock(float* source, nint sourceStride, float* destination, nint destinationStride)
    {
        if (!Avx.IsSupported)
        {
            TransposeFallback.Block(8, source, sourceStride, destination, destinationStride);
            return;
        }
        Interleave.Rows4<Vector256<float>, Vector256Ops>(source, sourceStride, out var a0, out var a1, out var a2, out var a3);
        Interleave.Rows4<Vector256<float>, Vector256Ops>(source + 4 * sourceStride, sourceStride, out var b0, out var b1, out var b2, out var b3);
        Avx.Permute2x128(a0, b0, 0x20).Store(destination);
        Avx.Permute2x128(a0, b0, 0x31).Store(destination + 4 * destinationStride);
        Avx.Permute2x128(a1, b1, 0x20).Store(destination + destinationStride);
        Avx.Permute2x128(a1, b1, 0x31).Store(destination + 5 * destinationStride);
        Avx.Permute2x128(a2, b2, 0x20).Store(destination + 2 * destinationStride);
        Avx.Permute2x128(a2, b2, 0x31).Store(destination + 6 * destinationStride);
        Avx.Permute2x128(a3, b3, 0x20).Store(destination + 3 * destinationStride);
        Avx.Permute2x128(a3, b3, 0x31).Store(destination + 7 * destinationStride);
    }
}

internal unsafe struct Vector128Ops : IVectorOps<Vector128<float>>, IInterleaveOps<Vector128<float>>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Low32(Vector128<float> a, Vector128<float> b) => Sse.UnpackLow(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> High32(Vector128<float> a, Vector128<float> b) => Sse.UnpackHigh(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Low64(Vector128<float> a, Vector128<float> b) => Sse.MoveLowToHigh(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> High64(Vector128<float> a, Vector128<float> b) => Sse.MoveHighToLow(b, a);
    public static int Count => Vector128<float>.Count;
    public static bool IsHardwareAccelerated => Vector128.IsHardwareAccelerated;
    public static Vector128<float> Zero => Vector128<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Create(float value) => Vector128.Create(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Load(float* source) => Vector128.Load(source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> LoadStreamed(float* source) => Vector128.Load(source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector128<float> value, float* destination) => value.Store(destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Subtract(Vector128<float> a, Vector128<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Multiply(Vector128<float> a, Vector128<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Divide(Vector128<float> a, Vector128<float> b) => a / b;
    public static bool HasReciprocalEstimate => Avx512F.VL.IsSupported;
    public static bool ReadsInt8InBlocks => false;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> ReciprocalEstimate(Vector128<float> x) => Avx512F.VL.IsSupported ? Avx512F.VL.Reciprocal14(x) : Vector128<float>.One / x;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Abs(Vector128<float> x) => Vector128.Abs(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> MaxMagnitude(Vector128<float> tracker, Vector128<float> x) =>
        Avx512DQ.VL.IsSupported ? Avx512DQ.VL.Range(tracker, x, 0b1011) : Vector128.MaxNative(tracker, Vector128.Abs(x));
    public static Vector128<float> Indices => Vector128<float>.Indices;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> MaxHalfBits(Vector128<float> tracker, short* source) =>
        Vector128.Max(tracker.AsUInt16(), Vector128.ShiftLeft(Vector128.CreateScalar(*(ulong*)source).AsUInt16(), 1)).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool AnyNonFiniteHalf(Vector128<float> tracker) => Vector128.GreaterThanOrEqualAny(tracker.AsUInt16(), Vector128.Create((ushort)0xF800));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> LoadInt16Bits(short* source) =>
        Sse41.IsSupported ? Sse41.ConvertToVector128Int32(source).AsSingle() : Vector128.WidenLower(Vector128.CreateScalar(*(ulong*)source).AsInt16()).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadInt16BitsPair(short* source, out Vector128<float> low, out Vector128<float> high) { low = LoadInt16Bits(source); high = LoadInt16Bits(source + Vector128<float>.Count); }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> LoadInt8Block(sbyte* source) => Vector128.Load((float*)source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Int8Part(Vector128<float> block, [ConstantExpected(Min = 0, Max = 3)] byte part) =>
        Vector128.ConvertToSingle(Vector128.WidenLower(Vector128.WidenLower(Vector128.CreateScalar(block.AsInt32().GetElement(part)).AsSByte())));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> LoadInt8(sbyte* source) =>
        Vector128.ConvertToSingle(Sse41.IsSupported ? Sse41.ConvertToVector128Int32(source) : Vector128.WidenLower(Vector128.WidenLower(Vector128.CreateScalar(*(int*)source).AsSByte())));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> And(Vector128<float> a, Vector128<float> b) => a & b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Or(Vector128<float> a, Vector128<float> b) => a | b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> ShiftLeft(Vector128<float> x, int count) => Vector128.ShiftLeft(x.AsUInt32(), count).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> SelectEqual(Vector128<float> x, Vector128<float> edge, Vector128<float> replacement, Vector128<float> value) =>
        Vector128.ConditionalSelect(Vector128.Equals(x, edge), replacement, value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> SelectByBytes(byte* flags, Vector128<float> value, Vector128<float> fill) =>
        Vector128.ConditionalSelect(Vector128.Equals(Vector128.WidenLower(Vector128.WidenLower(Vector128.CreateScalar(*(uint*)flags).AsByte())), Vector128<uint>.Zero).AsSingle(), fill, value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> MultiplyAdd(Vector128<float> a, Vector128<float> b, Vector128<float> c) => Vector128.MultiplyAddEstimate(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Max(Vector128<float> a, Vector128<float> b) => Vector128.MaxNative(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Round(Vector128<float> x) => Vector128.Round(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Floor(Vector128<float> x) => Vector128.Floor(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Pow2(Vector128<float> n) =>
        Vector128.ShiftLeft(Vector128.ConvertToInt32Native(n) + Vector128.Create(127), 23).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> ScaleByPow2(Vector128<float> p, Vector128<float> n)
    {
        if (Avx512F.VL.IsSupported) return Avx512F.VL.Scale(p, n);
        Vector128<int> exponent = Vector128.ConvertToInt32Native(n);
        if (Vector128.GreaterThanAny(exponent + Vector128.Create(125 + int.MinValue), Vector128.Create(252 + int.MinValue))) return VectorMath.ScaleByPow2Exactly<Vector128<float>, Vector128Ops>(p, n);
        return (p.AsInt32() + Vector128.ShiftLeft(exponent, 23)).AsSingle();
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> SelectLess(Vector128<float> x, Vector128<float> edge, Vector128<float> replacement, Vector128<float> value) =>
        Vector128.ConditionalSelect(Vector128.LessThan(x, edge), replacement, value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> SelectGreater(Vector128<float> x, Vector128<float> edge, Vector128<float> replacement, Vector128<float> value) =>
        Vector128.ConditionalSelect(Vector128.GreaterThan(x, edge), replacement, value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> SelectFirst(int count, Vector128<float> value, Vector128<float> fill) =>
        Vector128.ConditionalSelect(Vector128.LessThan(Vector128<int>.Indices, Vector128.Create(count)).AsSingle(), value, fill);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Vector128<float> v)
    {
        // Lanes are combined in a fixed order so the result never depends on memory alignment.
        Vector128<float> m = Vector128.MaxNative(v, Vector128.Shuffle(v, Vector128.Create(2, 3, 0, 1)));
        m = Vector128.MaxNative(m, Vector128.Shuffle(m, Vector128.Create(1, 0, 3, 2)));
        return m.ToScalar();
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float SumAcross(Vector128<float> v) => Vector128.Sum(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreSums4(Vector128<float> a, Vector128<float> b, Vector128<float> c, Vector128<float> d, float* destination)
    {
        if (Sse3.IsSupported)
        {
            Sse3.HorizontalAdd(Sse3.HorizontalAdd(a, b), Sse3.HorizontalAdd(c, d)).Store(destination);
            return;
        }
        destination[0] = Vector128.Sum(a);
        destination[1] = Vector128.Sum(b);
        destination[2] = Vector128.Sum(c);
        destination[3] = Vector128.Sum(d);
    }

    /// <summary>4 × 4 in 8 shuffles.</summary>
    public static void TransposeBlock(float* source, nint sourceStride, float* destination, nint destinationStride)
    {
        if (!Sse.IsSupported)
        {
            TransposeFallback.Block(4, source, sourceStride, destination, destinationStride);
            return;
        }
        // One 128-bit lane: the interleaved rows are the columns.
        Interleave.Rows4<Vector128<float>, Vector128Ops>(source, sourceStride, out var u0, out var u1, out var u2, out var u3);
        u0.Store(destination);
        u1.Store(destination + destinationStride);
        u2.Store(destination + 2 * destinationStride);
        u3.Store(destination + 3 * destinationStride);
    }
}

/// <summary>One lane: the software fallback, and the reference shape of every kernel.</summary>
internal unsafe struct ScalarOps : IVectorOps<float>
{
    public static int Count => 1;
    public static bool IsHardwareAccelerated => true;
    public static float Zero => 0f;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Create(float value) => value;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Load(float* source) => *source;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float LoadStreamed(float* source) => *source;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float value, float* destination) => *destination = value;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Add(float a, float b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Subtract(float a, float b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Multiply(float a, float b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Divide(float a, float b) => a / b;
    public static bool HasReciprocalEstimate => false;
    public static bool ReadsInt8InBlocks => false;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float ReciprocalEstimate(float x) => 1f / x;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Abs(float x) => MathF.Abs(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float MaxMagnitude(float tracker, float x) => MathF.Max(tracker, MathF.Abs(x));
    public static float Indices => 0f;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxHalfBits(float tracker, short* source) =>
        BitConverter.UInt32BitsToSingle(Math.Max(BitConverter.SingleToUInt32Bits(tracker), (uint)(ushort)(ReadInt16(source) << 1)));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static bool AnyNonFiniteHalf(float tracker) => BitConverter.SingleToUInt32Bits(tracker) >= 0xF800u;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float LoadInt16Bits(short* source) => BitConverter.Int32BitsToSingle(ReadInt16(source));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadInt16BitsPair(short* source, out float low, out float high) { low = LoadInt16Bits(source); high = LoadInt16Bits(source + 1); }

    // Not inlined: inlined, the JIT (10.0.12) folded the 2-byte load and the float move into one 4-byte load,
    // reading 2 bytes past the element (seen in the disassembly of the scalar tail of the Half conversion).
    [MethodImpl(MethodImplOptions.NoInlining)] private static int ReadInt16(short* source) => *source;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float LoadInt8(sbyte* source) => *source;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float LoadInt8Block(sbyte* source) => *(float*)source;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Int8Part(float block, [ConstantExpected(Min = 0, Max = 3)] byte part) => (sbyte)(BitConverter.SingleToUInt32Bits(block) >> (8 * part));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float And(float a, float b) => BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(a) & BitConverter.SingleToUInt32Bits(b));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Or(float a, float b) => BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(a) | BitConverter.SingleToUInt32Bits(b));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float ShiftLeft(float x, int count) => BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(x) << count);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float SelectEqual(float x, float edge, float replacement, float value) => x == edge ? replacement : value;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float SelectByBytes(byte* flags, float value, float fill) => *flags != 0 ? value : fill;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float MultiplyAdd(float a, float b, float c) => float.MultiplyAddEstimate(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Max(float a, float b) => a > b ? a : b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Round(float x) => MathF.Round(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Floor(float x) => MathF.Floor(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Pow2(float n) => BitConverter.Int32BitsToSingle(((int)n + 127) << 23);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float ScaleByPow2(float p, float n) => VectorMath.ScaleByPow2Exactly<float, ScalarOps>(p, n);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float SelectLess(float x, float edge, float replacement, float value) => x < edge ? replacement : value;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float SelectGreater(float x, float edge, float replacement, float value) => x > edge ? replacement : value;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float SelectFirst(int count, float value, float fill) => count > 0 ? value : fill;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float MaxAcross(float v) => v;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float SumAcross(float v) => v;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreSums4(float a, float b, float c, float d, float* destination)
    {
        destination[0] = a;
        destination[1] = b;
        destination[2] = c;
        destination[3] = d;
    }

    public static void TransposeBlock(float* source, nint sourceStride, float* destination, nint destinationStride) => *destination = *source;
}
