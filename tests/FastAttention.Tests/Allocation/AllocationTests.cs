using System.Buffers;
using FastAttention.Buffers;
using FastAttention.Kernels;
using FastAttention.Scheduling;
using FastAttention.Tests.Support;
using Xunit;

namespace FastAttention.Tests.Allocation;

[CollectionDefinition(nameof(SerialCollection), DisableParallelization = true)]
public sealed class SerialCollection;

/// <summary>Steady state allocates nothing, and every rented buffer goes home, also when an item throws.</summary>
[Collection(nameof(SerialCollection))]
public class AllocationTests
{
    [Theory]
    [InlineData(1, 16, 16, 64, 1)]     // tiny: stays on the calling thread
    [InlineData(8, 128, 128, 64, 1)]
    [InlineData(8, 256, 256, 64, 2)]   // crosses the parallel threshold: helpers on the pool
    public void Compute_RepeatedCall_AllocatesZeroBytes(int heads, int lq, int lk, int d, int threads)
    {
        var shape = AttentionShape.Bhsd(1, heads, heads, lq, lk, d);
        var q = new float[shape.QueryLength];
        var k = new float[shape.KeyLength];
        var v = new float[shape.ValueLength];
        var o = new float[shape.OutputLength];
        var lse = new float[shape.LogSumExpLength];
        new Random(1).NextBytes(new byte[1]);
        for (int i = 0; i < q.Length; i++) q[i] = MathF.Sin(i);
        for (int i = 0; i < k.Length; i++) k[i] = MathF.Cos(i);
        for (int i = 0; i < v.Length; i++) v[i] = i % 7;
        var options = new AttentionOptions { Causal = CausalMask.TopLeft, MaxDegreeOfParallelism = threads };
        for (int i = 0; i < 5; i++) Attention.Compute(q, k, v, o, lse, shape, options);
        GC.Collect(); // drops runtime caches: a call that rebuilds one (Enum.IsDefined's tables did) allocates below
        GC.WaitForPendingFinalizers();

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 20; i++) Attention.Compute(q, k, v, o, lse, shape, options);
        long after = GC.GetAllocatedBytesForCurrentThread();
        // The calling thread allocates nothing. Pool helpers run ParallelJob.Work, which allocates nothing either
        // (preallocated work items, pooled workspaces); a process-wide count cannot check that here, since the test
        // runner's own threads allocate meanwhile. The quick benchmark reports process-wide bytes per call.
        Assert.Equal(0, after - before);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]   // decode
    public void Compute_RepeatedCallWithEveryMask_AllocatesZeroBytes(int queryCount)
    {
        var shape = AttentionShape.Bhsd(2, 4, 2, queryCount, 96, 32);
        var q = new float[shape.QueryLength];
        var k = new float[shape.KeyLength];
        var v = new float[shape.ValueLength];
        var o = new float[shape.OutputLength];
        var lse = new float[shape.LogSumExpLength];
        for (int i = 0; i < k.Length; i++) k[i] = MathF.Cos(i);
        var bias = new float[4 * queryCount * 96];
        var mask = new bool[queryCount * 96];
        Array.Fill(mask, true);
        int[] lengths = [96, 50];
        float[] slopes = Alibi.Slopes(4), sinks = [0.5f, 0f, -1f, 2f];
        var options = new AttentionOptions { Causal = CausalMask.BottomRight, Window = new SlidingWindow(40, 0), SoftCap = 20f, MaxDegreeOfParallelism = 1 };
        void Call() => Attention.Compute(q, k, v, o, lse, shape, options, new AttentionMasks
        {
            Bias = bias, BiasBroadcast = MaskBroadcast.Batch, Mask = mask, MaskBroadcast = MaskBroadcast.All,
            KeyLengths = lengths, AlibiSlopes = slopes, Sinks = sinks,
        });
        for (int i = 0; i < 5; i++) Call();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 20; i++) Call();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Compute_ManyCalls_EveryWorkspaceAndArrayReturned()
    {
        var arrays = new TrackingArrayPool();
        using var workspaces = new WorkspacePool(arrays);
        var problem = TestProblem.Create(new ProblemSpec(1, 4, 2, 150, 170, 32, 32, LayoutKind.Bhsd, CausalMask.None, null, 1f, 5));
        var lse = new float[problem.Shape.LogSumExpLength];
        for (int i = 0; i < 10; i++)
            Attention.Run(problem.Query, problem.Key, problem.Value, problem.Output, lse, true, problem.Shape, new AttentionOptions { MaxDegreeOfParallelism = 2 }, KernelDispatch.Best, workspaces);
        Assert.Equal(0, workspaces.Outstanding);
        Assert.True(arrays.Outstanding > 0);
        workspaces.Trim();
        Assert.Equal(0, arrays.Outstanding);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    public void Scheduler_ItemThrows_RethrowsOnCallerAndReturnsEveryWorkspace(int threads)
    {
        var arrays = new TrackingArrayPool();
        using var workspaces = new WorkspacePool(arrays);
        var job = new FaultyJob(workspaces, failAt: 17);
        var e = Assert.Throws<InvalidOperationException>(() => job.Run(64, threads));
        Assert.Equal("item 17", e.Message);
        Assert.Equal(0, workspaces.Outstanding);
        Assert.Equal(threads == 1 ? 18 : 64, job.Executed); // every claimed item still ran to the end of the phase
        workspaces.Trim();
        Assert.Equal(0, arrays.Outstanding);

        // The job is reusable after a failure.
        job.FailAt = -1;
        job.Run(40, threads);
        Assert.Equal(0, workspaces.Outstanding);
    }

    private sealed class FaultyJob(WorkspacePool pool, int failAt) : ParallelJob(pool)
    {
        private int _executed;
        public int FailAt { get; set; } = failAt;
        public int Executed => _executed;

        protected override void Execute(int item, Workspace workspace)
        {
            workspace.Get(0, 100 + item);
            Interlocked.Increment(ref _executed);
            if (item == FailAt) throw new InvalidOperationException($"item {item}");
        }
    }

    private sealed class TrackingArrayPool : ArrayPool<float>
    {
        private int _outstanding;
        public int Outstanding => Volatile.Read(ref _outstanding);

        public override float[] Rent(int minimumLength)
        {
            Interlocked.Increment(ref _outstanding);
            return new float[minimumLength];
        }

        public override void Return(float[] array, bool clearArray = false) => Interlocked.Decrement(ref _outstanding);
    }
}
