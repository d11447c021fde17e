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
        for (int offset = 0; offset < bytes; offset += 64) Sse.Prefetch0((byte*)start + offset);
    }

    /// <summary><see cref="Prefetch"/> for <paramref name="count"/> rows of <paramref name="rowBytes"/> bytes, <paramref name="stride"/> floats apart.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void PrefetchRows(float* first, nint stride, int count, int rowBytes)
    {
        for (int r = 0; r < count; r++) Prefetch(first + r * stride, rowBytes);
    }
}
