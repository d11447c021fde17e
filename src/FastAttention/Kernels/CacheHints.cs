using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace FastAttention.Kernels;

/// <summary>Software prefetch, for the access patterns the hardware prefetcher does not follow.</summary>
internal static unsafe class CacheHints
{
    /// <summary>A prefetch hint for each cache line of [start, start + bytes) where the CPU has one (never faults).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Prefetch(void* start, int bytes)
    {
        if (!Sse.IsSupported) return;
        for (byte* line = FirstLine(start), end = (byte*)start + bytes; line < end; line += 64) Sse.Prefetch0(line);
    }

    /// <summary><see cref="Prefetch"/> into the L2 and outer levels only, for lines wanted later than the next few hundred cycles.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void PrefetchToL2(void* start, int bytes)
    {
        if (!Sse.IsSupported) return;
        for (byte* line = FirstLine(start), end = (byte*)start + bytes; line < end; line += 64) Sse.Prefetch1(line);
    }

    private static byte* FirstLine(void* start) => (byte*)((nuint)start & ~(nuint)63);

    /// <summary><see cref="Prefetch"/> for <paramref name="count"/> rows of <paramref name="rowBytes"/> bytes, <paramref name="stride"/> floats apart.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void PrefetchRows(float* first, nint stride, int count, int rowBytes)
    {
        for (int r = 0; r < count; r++) Prefetch(first + r * stride, rowBytes);
    }
}
