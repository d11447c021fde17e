using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using FastAttention.Kernels;

namespace FastAttention.Bench;

/// <summary>The machine's own limits, measured in the same process as the kernels: FMA peak and read bandwidth.</summary>
public static class MachinePeaks
{
    /// <summary>GFLOP/s of independent FMA chains (12 accumulators per thread) at the width the kernels use here.</summary>
    public static double FmaPeakGflops(int threads)
    {
        KernelWidth width = KernelDispatch.Best;
        int lanes = KernelDispatch.Lanes(width);
        long iterations = 320_000_000 / lanes;
        double best = 0;
        for (int rep = 0; rep < 5; rep++) // a peak is the best of several: on a shared machine other tenants only ever slow it down
        {
            var sw = Stopwatch.StartNew();
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ => Sink(width switch
            {
                KernelWidth.Vector512 => Fma<Vector512<float>, Vector512Ops>(iterations),
                KernelWidth.Vector256 => Fma<Vector256<float>, Vector256Ops>(iterations),
                KernelWidth.Vector128 => Fma<Vector128<float>, Vector128Ops>(iterations),
                _ => Fma<float, ScalarOps>(iterations),
            }));
            double seconds = sw.Elapsed.TotalSeconds;
            double flops = threads * (double)iterations * 12 * 2 * lanes;
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
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
            {
                ref float start = ref buffer[t * chunk];
                Sink(twoStreams ? Sum(ref start, ref buffer[t * chunk + half], half, 16) : Sum(ref start, ref buffer[t * chunk + 16], chunk, 32));
            });
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

    /// <summary>
    /// Sums x[i..i+16) and y[i..i+16) for i = 0, step, 2·step, … below <paramref name="length"/>: with y = x + 16 and
    /// step 32 that is one sequential stream, with two separate halves and step 16 it is two streams side by side.
    /// </summary>
    private static float Sum(ref float x, ref float y, int length, int step)
    {
        Vector256<float> a = default, b = default, c = default, d = default;
        for (int i = 0; i + step <= length; i += step)
        {
            a += Vector256.LoadUnsafe(ref x, (nuint)i);
            b += Vector256.LoadUnsafe(ref x, (nuint)i + 8);
            c += Vector256.LoadUnsafe(ref y, (nuint)i);
            d += Vector256.LoadUnsafe(ref y, (nuint)i + 8);
        }
        return Vector256.Sum(a + b + c + d);
    }

    /// <summary>12 independent chains a = a·x + y, written once over the kernels' vector operations.</summary>
    private static float Fma<TVec, TOps>(long n)
        where TVec : unmanaged
        where TOps : IVectorOps<TVec>
    {
        TVec x = TOps.Create(0.999999f), y = TOps.Create(1e-7f);
        TVec a0 = x, a1 = x, a2 = x, a3 = x, a4 = x, a5 = x, a6 = x, a7 = x, a8 = x, a9 = x, a10 = x, a11 = x;
        for (long i = 0; i < n; i++)
        {
            a0 = TOps.MultiplyAdd(a0, x, y); a1 = TOps.MultiplyAdd(a1, x, y); a2 = TOps.MultiplyAdd(a2, x, y);
            a3 = TOps.MultiplyAdd(a3, x, y); a4 = TOps.MultiplyAdd(a4, x, y); a5 = TOps.MultiplyAdd(a5, x, y);
            a6 = TOps.MultiplyAdd(a6, x, y); a7 = TOps.MultiplyAdd(a7, x, y); a8 = TOps.MultiplyAdd(a8, x, y);
            a9 = TOps.MultiplyAdd(a9, x, y); a10 = TOps.MultiplyAdd(a10, x, y); a11 = TOps.MultiplyAdd(a11, x, y);
        }
        TVec sum = TOps.Add(TOps.Add(TOps.Add(a0, a1), TOps.Add(a2, a3)), TOps.Add(TOps.Add(a4, a5), TOps.Add(a6, a7)));
        return TOps.SumAcross(TOps.Add(sum, TOps.Add(TOps.Add(a8, a9), TOps.Add(a10, a11))));
    }
}
