using FastAttention.Buffers;
using FastAttention.Tests.Support;
using Xunit;
using MemoryMarshal = System.Runtime.InteropServices.MemoryMarshal;

namespace FastAttention.Tests.Allocation;

/// <summary>
/// Many services call at once: 64 callers (half on dedicated threads, half on thread-pool threads, whose helpers
/// then queue on the same pool they occupy) × 1,000 calls of mixed shapes, serial and parallel, prefill and
/// decode, with degrees 1, 2, 3 and the default. Every output is bitwise the single-threaded result, and after
/// the warm-up no caller allocates and no workspace is created or grown. The callers share a workspace pool of their
/// own, as they would share <c>WorkspacePool.Shared</c>: its counters then count their calls alone, never those of
/// anything else the test process runs meanwhile (one full-suite run in about seven saw 16 more workspaces created in
/// the shared pool during the measured calls, none in the callers' own allocations and none in 8 runs of this test
/// alone).
/// </summary>
[Collection(nameof(SerialCollection))]
public class ConcurrencyTests
{
    private const int Callers = 64;
    private const int CallsPerCaller = 1000;

    private static readonly ProblemSpec[] Shapes =
    [
        new(1, 1, 1, 16, 16, 64, 64, LayoutKind.Bhsd, CausalMask.None, null, 2f, 1),           // tiny, direct kernel
        new(1, 8, 2, 1, 700, 64, 64, LayoutKind.Bhsd, CausalMask.None, null, 2f, 2),          // GQA decode, two slices
        new(1, 4, 4, 96, 160, 32, 32, LayoutKind.Bshd, CausalMask.None, null, 2f, 3),         // prefill above the parallel threshold
        new(2, 4, 4, 2, 1500, 64, 64, LayoutKind.Bhsd, CausalMask.BottomRight, null, 2f, 4),  // decode above the threshold
        new(1, 2, 1, 64, 64, 48, 40, LayoutKind.Strided, CausalMask.TopLeft, 0.3f, 2f, 5),    // causal prefill, strided
    ];

    private static readonly int?[] Degrees = [null, 1, 2, 3];

    [Fact]
    public void Compute_64ConcurrentCallersMixedShapes_BitwiseSingleThreadedAndAllocationFree()
    {
        // Inputs are shared (read-only); each caller owns its outputs, all allocated here before any caller starts.
        var problems = Shapes.Select(TestProblem.Create).ToArray();
        // Not disposed: like the events below, nothing a pool thread might still touch is disposed under it.
        var pool = new WorkspacePool(System.Buffers.ArrayPool<float>.Shared);
        var expected = problems.Select(p => Run(pool, p, p.Output, new float[p.Shape.LogSumExpLength], degree: 1)).ToArray();
        var outputs = new float[Callers][][];
        var logSumExps = new float[Callers][][];
        var orders = new int[Callers][];
        for (int c = 0; c < Callers; c++)
        {
            outputs[c] = problems.Select(p => Enumerable.Repeat(TestProblem.OutputSentinel, p.Output.Length).ToArray()).ToArray();
            logSumExps[c] = problems.Select(p => new float[p.Shape.LogSumExpLength]).ToArray();
            var random = new Random(c);
            orders[c] = Enumerable.Range(0, CallsPerCaller).Select(_ => random.Next(Shapes.Length)).ToArray();
        }

        var failures = new List<string>();
        var allocated = new long[Callers];
        long createdAfterWarmUp = 0, grownAfterWarmUp = 0;
        int poolThreadsAfterWarmUp = 0;
        // Between the warm-up and the measured calls: every caller has run every shape at every degree (barrier 1),
        // then this thread collects garbage and reads the counters, then the callers go on (barrier 2).
        using var warmedUp = new Barrier(Callers + 1);
        using var measure = new Barrier(Callers + 1);
        ThreadPool.GetMinThreads(out int minWorkers, out int minIo);
        int poolSize = Math.Max(minWorkers, Callers + 2 * Environment.ProcessorCount);
        ThreadPool.SetMinThreads(poolSize, minIo); // pool callers start at once, helpers find free threads
        try
        {
            // The .NET thread pool allocates on the thread that queues work in two cases: a new pool thread (its
            // Thread object), and a new segment of its global queue when the queue reaches a new peak length. Both
            // are the pool's, not FastAttention's, so bring the pool to its size and its queue to a peak far above
            // the 64 × 2 helpers these callers can have queued, before any caller starts.
            // These three events are never disposed: a pool thread can count itself running and then reach
            // release.Wait() only after the release (Wait on a disposed event throws on that pool thread and ends
            // the process, as it once did in CI), and none of them holds a kernel handle to free.
            var running = new CountdownEvent(poolSize);
            var release = new ManualResetEventSlim(false);
            var released = new CountdownEvent(poolSize);
            for (int i = 0; i < poolSize; i++) ThreadPool.UnsafeQueueUserWorkItem(_ => { running.Signal(); release.Wait(); released.Signal(); }, null);
            try
            {
                Assert.True(running.Wait(TimeSpan.FromMinutes(1), TestContext.Current.CancellationToken), "the thread pool did not grow to its minimum size");
                for (int i = 0; i < 4096; i++) ThreadPool.UnsafeQueueUserWorkItem(static _ => { }, null); // waits in the global queue
            }
            finally
            {
                release.Set();
            }
            Assert.True(released.Wait(TimeSpan.FromMinutes(1), TestContext.Current.CancellationToken), "the pool threads held for the warm-up were not released");

            var threads = new Thread[Callers];
            for (int c = 0; c < Callers; c++)
            {
                int caller = c;
                void Body()
                {
                    try
                    {
                        allocated[caller] = CallerLoop(pool, caller, problems, outputs[caller], logSumExps[caller], orders[caller], expected, warmedUp, measure);
                    }
                    catch (Exception e)
                    {
                        lock (failures) failures.Add($"caller {caller}: {e}");
                        // Never leave the others waiting at a barrier.
                        if (warmedUp.ParticipantsRemaining > 0 && warmedUp.CurrentPhaseNumber == 0) warmedUp.RemoveParticipant();
                        if (measure.CurrentPhaseNumber == 0) measure.RemoveParticipant();
                    }
                }
                if (caller % 2 == 0)
                {
                    threads[caller] = new Thread(Body) { IsBackground = true, Name = $"caller {caller}" };
                    threads[caller].Start();
                }
                else
                {
                    var done = new ManualResetEventSlim(false);
                    ThreadPool.UnsafeQueueUserWorkItem(_ => { Body(); done.Set(); }, null); // a thread-pool caller
                    threads[caller] = new Thread(() => done.Wait()) { IsBackground = true };
                    threads[caller].Start();
                }
            }
            Assert.True(warmedUp.SignalAndWait(TimeSpan.FromMinutes(5), TestContext.Current.CancellationToken), "the callers did not finish their warm-up in 5 minutes");
            // A full collection drops runtime caches (a type's enum tables, say); a call that allocates them again
            // after it is caught here.
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            createdAfterWarmUp = pool.Created;
            grownAfterWarmUp = pool.Grown;
            poolThreadsAfterWarmUp = ThreadPool.ThreadCount;
            measure.SignalAndWait(TestContext.Current.CancellationToken);

            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(5);
            foreach (var thread in threads)
            {
                var left = deadline - DateTime.UtcNow;
                Assert.True(thread.Join(left > TimeSpan.Zero ? left : TimeSpan.Zero), "deadlock or starvation: a caller did not finish in 5 minutes");
            }
        }
        finally
        {
            ThreadPool.SetMinThreads(minWorkers, minIo);
        }

        Assert.Empty(failures);
        Assert.Equal(createdAfterWarmUp, pool.Created);
        Assert.Equal(grownAfterWarmUp, pool.Grown);
        for (int c = 0; c < Callers; c++)
            Assert.True(allocated[c] == 0, $"caller {c} allocated {allocated[c]} bytes over {CallsPerCaller} calls after warm-up; pool threads {poolThreadsAfterWarmUp} -> {ThreadPool.ThreadCount}");
    }

    /// <summary>One caller: a warm-up over every shape and degree, the barrier, then the measured calls in its own order.</summary>
    /// <remarks>
    /// Fully optimised from its first call: its loop runs once per caller, so with tiering it would move to
    /// optimised code (on-stack replacement) in the middle of the measured calls. Without this attribute one caller
    /// in about one run of three showed 24 bytes in its measured window; with it, none in 12 runs.
    /// </remarks>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static long CallerLoop(WorkspacePool pool, int caller, TestProblem[] problems, float[][] outputs, float[][] logSumExps, int[] order,
        (float[] Output, float[] LogSumExp)[] expected, Barrier warmedUp, Barrier measure)
    {
        for (int s = 0; s < problems.Length; s++)
            foreach (int? degree in Degrees) Run(pool, problems[s], outputs[s], logSumExps[s], degree);
        warmedUp.SignalAndWait();
        measure.SignalAndWait();

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < order.Length; i++)
        {
            int s = order[i];
            Run(pool, problems[s], outputs[s], logSumExps[s], Degrees[(i + caller) % Degrees.Length]);
            // Bitwise, in place (no allocation); the output arrays include the layout's gaps, which must stay untouched.
            if (!MemoryMarshal.Cast<float, int>(outputs[s]).SequenceEqual(MemoryMarshal.Cast<float, int>(expected[s].Output)) ||
                !MemoryMarshal.Cast<float, int>(logSumExps[s]).SequenceEqual(MemoryMarshal.Cast<float, int>(expected[s].LogSumExp)))
            {
                throw new Xunit.Sdk.XunitException($"call {i}: {Shapes[s]} differs from the single-threaded result");
            }
        }
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    /// <summary>The public entry's work (Attention.Compute with a log-sum-exp) over the test's workspace pool.</summary>
    private static (float[] Output, float[] LogSumExp) Run(WorkspacePool pool, TestProblem problem, float[] output, float[] logSumExp, int? degree)
    {
        Attention.Run(problem.Query, problem.Key, problem.Value, output, logSumExp, true, problem.Shape,
            problem.Options with { MaxDegreeOfParallelism = degree }, FastAttention.Kernels.KernelDispatch.Best, pool);
        return (output, logSumExp);
    }
}
