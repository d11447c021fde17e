using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace FastAttention.Bench;

/// <summary>The machine's own limits, measured in the same process as the kernels: FMA peak and read bandwidth.</summary>
public static class MachinePeaks
{
    /// <summary>GFLOP/s of independent FMA chains (12 accumulators per thread) at the widest accelerated width.</summary>
    public static double FmaPeakGflops(int threads)
    {
        const long iterations = 40_000_000;
        double best = 0;
        for (int rep = 0; rep < 5; rep++) // a peak is the best of several: on a shared machine other tenants only ever slow it down
        {
            var sw = Stopwatch.StartNew();
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ => Sink(Vector512.IsHardwareAccelerated ? Fma512(iterations / 2) : Fma256(iterations)));
            double seconds = sw.Elapsed.TotalSeconds;
            double flops = threads * (double)iterations * 12 * 2 * Vector256<float>.Count;
            best = Math.Max(best, flops / seconds / 1e9);
        }
        return best;
    }

    /// <summary>GB/s of summing a 512 MiB array with 256-bit loads, split across threads, one or two streams each; the best of six.</summary>
    public static double ReadBandwidthGbs(int threads, float[] buffer)
    {
        double best = 0;
        for (int rep = 0; rep < 6; rep++)
        {
            var sw = Stopwatch.StartNew();
            int chunk = buffer.Length / threads, half = chunk / 2;
            // One stream per thread, then two (as attention reads K and V): the memory system favours either at
            // different thread counts here, and a bandwidth figure is the best the machine gives.
            bool twoStreams = rep % 2 == 1;
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads },
                t => Sink(twoStreams ? Sum(buffer.AsSpan(t * chunk, half), buffer.AsSpan(t * chunk + half, half)) : Sum(buffer.AsSpan(t * chunk, half), buffer.AsSpan(t * chunk + half, half), oneStream: true)));
            best = Math.Max(best, (double)buffer.Length * sizeof(float) / sw.Elapsed.TotalSeconds / 1e9);
        }
        return best;
    }

    public static float[] AllocateBandwidthBuffer()
    {
        var buffer = GC.AllocateUninitializedArray<float>(128 * 1024 * 1024);
        buffer.AsSpan().Fill(1f);
        return buffer;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Sink(float value) { if (value == 12345.678f) Console.Write(""); }

    /// <summary>Sums both halves: side by side (two streams), or the first whole and then the second (one stream).</summary>
    private static float Sum(ReadOnlySpan<float> first, ReadOnlySpan<float> second, bool oneStream = false)
    {
        if (oneStream) return Sum(first, first.Length) + Sum(second, second.Length);
        Vector256<float> a = default, b = default, c = default, d = default;
        ref float x = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(first);
        ref float y = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(second);
        int n = Math.Min(first.Length, second.Length) / 16 * 16;
        for (int i = 0; i < n; i += 16)
        {
            a += Vector256.LoadUnsafe(ref x, (nuint)i);
            b += Vector256.LoadUnsafe(ref x, (nuint)i + 8);
            c += Vector256.LoadUnsafe(ref y, (nuint)i);
            d += Vector256.LoadUnsafe(ref y, (nuint)i + 8);
        }
        return Vector256.Sum(a + b + c + d);
    }

    private static float Sum(ReadOnlySpan<float> data, int length)
    {
        Vector256<float> a = default, b = default, c = default, d = default;
        ref float r = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(data);
        for (int i = 0; i + 32 <= length; i += 32)
        {
            a += Vector256.LoadUnsafe(ref r, (nuint)i);
            b += Vector256.LoadUnsafe(ref r, (nuint)i + 8);
            c += Vector256.LoadUnsafe(ref r, (nuint)i + 16);
            d += Vector256.LoadUnsafe(ref r, (nuint)i + 24);
        }
        return Vector256.Sum(a + b + c + d);
    }

    private static float Fma256(long n)
    {
        Vector256<float> x = Vector256.Create(0.999999f), y = Vector256.Create(1e-7f);
        Vector256<float> a0 = x, a1 = x, a2 = x, a3 = x, a4 = x, a5 = x, a6 = x, a7 = x, a8 = x, a9 = x, a10 = x, a11 = x;
        for (long i = 0; i < n; i++)
        {
            a0 = Vector256.FusedMultiplyAdd(a0, x, y); a1 = Vector256.FusedMultiplyAdd(a1, x, y); a2 = Vector256.FusedMultiplyAdd(a2, x, y);
            a3 = Vector256.FusedMultiplyAdd(a3, x, y); a4 = Vector256.FusedMultiplyAdd(a4, x, y); a5 = Vector256.FusedMultiplyAdd(a5, x, y);
            a6 = Vector256.FusedMultiplyAdd(a6, x, y); a7 = Vector256.FusedMultiplyAdd(a7, x, y); a8 = Vector256.FusedMultiplyAdd(a8, x, y);
            a9 = Vector256.FusedMultiplyAdd(a9, x, y); a10 = Vector256.FusedMultiplyAdd(a10, x, y); a11 = Vector256.FusedMultiplyAdd(a11, x, y);
        }
        return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    private static float Fma512(long n)
    {
        Vector512<float> x = Vector512.Create(0.999999f), y = Vector512.Create(1e-7f);
        Vector512<float> a0 = x, a1 = x, a2 = x, a3 = x, a4 = x, a5 = x, a6 = x, a7 = x, a8 = x, a9 = x, a10 = x, a11 = x;
        for (long i = 0; i < n; i++)
        {
            a0 = Vector512.FusedMultiplyAdd(a0, x, y); a1 = Vector512.FusedMultiplyAdd(a1, x, y); a2 = Vector512.FusedMultiplyAdd(a2, x, y);
            a3 = Vector512.FusedMultiplyAdd(a3, x, y); a4 = Vector512.FusedMultiplyAdd(a4, x, y); a5 = Vector512.FusedMultiplyAdd(a5, x, y);
            a6 = Vector512.FusedMultiplyAdd(a6, x, y); a7 = Vector512.FusedMultiplyAdd(a7, x, y); a8 = Vector512.FusedMultiplyAdd(a8, x, y);
            a9 = Vector512.FusedMultiplyAdd(a9, x, y); a10 = Vector512.FusedMultiplyAdd(a10, x, y); a11 = Vector512.FusedMultiplyAdd(a11, x, y);
        }
        return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }
}
