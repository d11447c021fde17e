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

    /// <summary>
    /// A prefetch hint for the cache line holding <paramref name="first"/> and for those at the same place in the 3 rows
    /// after it, <paramref name="rowBytes"/> apart (the 4 rows a decode tile reads side by side), where the CPU has one.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void PrefetchLine4(void* first, nint rowBytes)
    {
        if (!Sse.IsSupported) return;
        byte* line = (byte*)first;
        Sse.Prefetch0(line); Sse.Prefetch0(line + rowBytes); Sse.Prefetch0(line + 2 * rowBytes); Sse.Prefetch0(line + 3 * rowBytes);
    }

    /// <summary>
    /// A prefetch hint at <paramref name="start"/> and every 64 bytes after it below start + <paramref name="bytes"/>,
    /// unrolled when <paramref name="bytes"/> is a JIT-time constant (up to 4 lines): for streams whose rows are read
    /// in order, where a row's unaligned last line is the next row's first.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void PrefetchLines(byte* start, int bytes)
    {
        if (!Sse.IsSupported) return;
        Sse.Prefetch0(start);
        if (bytes > 64) Sse.Prefetch0(start + 64);
        if (bytes > 128) Sse.Prefetch0(start + 128);
        if (bytes > 192) Sse.Prefetch0(start + 192);
        for (int line = 256; line < bytes; line += 64) Sse.Prefetch0(start + line);
    }

    /// <summary><see cref="Prefetch"/> into the L2 and outer levels only, for lines wanted later than the next few hundred cycles.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void PrefetchToL2(void* start, int bytes)
    {
        if (!Sse.IsSupported) return;
        for (byte* line = FirstLine(start), end = (byte*)start + bytes; line < end; line += 64) Sse.Prefetch1(line);
    }

    /// <summary>
    /// Rows (a multiple of 4) that decode's single-row passes over 16- and 8-bit rows prefetch ahead of the row they read,
    /// for rows of <paramref name="rowBytes"/>: about 8 KiB of the stream, a prefetch per line read. The hardware
    /// prefetcher alone left these narrower streams short of the bandwidth fp32 rows get (why is not measured
    /// here; its stop at each 4 KiB page is one candidate). Zen 5, dec32k at 1 thread, medians of 9
    /// alternated runs: Half K/V 6.14 -> 5.24 ms, int8 2.89 -> 2.59 ms at 2 KiB ahead; 4 KiB ahead measured
    /// better again on a noisier host (medians of 5-7: Half 1 t 5.80 -> 5.35 ms, 2 t 3.07 -> 2.74 ms; int8 1 t
    /// 4.04 -> 3.28, 2 t 2.01 -> 1.68). 8 KiB against 4 KiB, both builds loaded into one process and called in turn on
    /// the same arrays (medians of 31-41 calls each, 4-8 such runs; the host's speed moved by a third between runs,
    /// the ratio by a few percent): Half 1 thread 0.94-0.99× the time, 2 threads 0.93-1.07× (median 0.99); int8
    /// 1 thread 0.92-0.98×, 2 threads 0.98-1.04×; 2 KiB 1.12-1.15× and 16 KiB 1.05× (Half, 1 thread). With K/V in L3 (4096
    /// keys, repeated calls) Half is unchanged by it. A real model's cache is read once per layer per step, from
    /// memory, so the memory case decides. fp32 rows take <see cref="Float32KeyAheadRows"/> instead.
    /// </summary>
    public static int StreamAheadRows(int rowBytes) => Math.Max(4, StreamAheadBytes / rowBytes / 4 * 4);

    private const int StreamAheadBytes = 8192;

    /// <summary>
    /// Rows (a multiple of 4) that decode's single-row pass over fp32 key rows prefetches ahead: about 4 KiB, a prefetch
    /// per line read. Both builds in one process, called in turn on the same arrays (Zen 5, medians of 31-101 calls
    /// each, 5 runs): dec32k 0.90-0.99× the time at 1 thread and 0.93-0.98× at 2, dec4kH8 (partly in L3) 0.94-1.00×;
    /// never slower by more than 0.3 %. The more the host's memory was contended (its fp32 dec32k at 10.9 against
    /// 8.8 ms), the more it helped. The value rows gained nothing from it (0.98-1.03×) and 8 KiB ahead cost up to 7 %
    /// where the memory was not contended, so neither is done.
    /// </summary>
    public static int Float32KeyAheadRows(int rowBytes) => Math.Max(4, Float32KeyAheadBytes / rowBytes / 4 * 4);

    private const int Float32KeyAheadBytes = 4096;

    private static byte* FirstLine(void* start) => (byte*)((nuint)start & ~(nuint)63);
}
