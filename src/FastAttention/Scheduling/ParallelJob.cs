using System.Runtime.ExceptionServices;
using FastAttention.Buffers;
using FastAttention.Planning;

namespace FastAttention.Scheduling;

/// <summary>
/// Runs the items of one phase on the .NET thread pool without allocating: helper work items are created once
/// per job and re-queued; the calling thread takes part and claims items like any helper; items are claimed
/// with one atomic counter, so an item runs exactly once whichever thread takes it.
/// <para>
/// A helper that starts late (the pool was busy) finds no item left and returns: the caller never waits for a
/// helper that has not claimed an item, so calls from pool threads, or from many threads at once, cannot
/// deadlock. A helper still queued from an earlier call may claim items of a later call of the same job: it
/// claims before it reads the job's state, and the caller waits until every claimed item is done, so that is safe.
/// </para>
/// <para>
/// Scratch comes from the caller's <see cref="CallWorkspace"/>: the caller is participant 0 and helper i always
/// participant i + 1. A helper never runs twice at once (it is re-queued only once it has finished), so no two
/// threads share a participant's workspace.
/// </para>
/// </summary>
internal abstract class ParallelJob
{
    private readonly WorkspacePool _workspaces;
    private readonly object _gate = new(); // the caller sleeps on it when helpers still run after its own items
    private Helper[] _helpers = [];
    private CallWorkspace? _call;
    private long _state; // (item count << 32) | next item
    private int _remaining;
    private ExceptionDispatchInfo? _error;

    protected ParallelJob(WorkspacePool workspaces) => _workspaces = workspaces;

    /// <summary>The pool the calling thread rents its call workspace from.</summary>
    public WorkspacePool Workspaces => _workspaces;

    /// <summary>Runs one item with the participant's workspace. Must not depend on which thread runs it.</summary>
    protected abstract void Execute(int item, Workspace workspace);

    /// <summary>Runs items 0..count−1 on up to <paramref name="threads"/> threads with a call workspace of its own.</summary>
    public void Run(int count, int threads)
    {
        CallWorkspace call = _workspaces.Rent();
        try
        {
            Run(count, threads, call, default);
        }
        finally
        {
            _workspaces.Return(call);
        }
    }

    /// <summary>Runs items 0..count−1 on up to <paramref name="threads"/> threads and returns when all are done.</summary>
    /// <param name="count">Items.</param>
    /// <param name="threads">Most threads to use, the caller included.</param>
    /// <param name="call">The caller's call workspace, which every participant's scratch comes from.</param>
    /// <param name="scratch">Scratch each participant needs, sized here before any item runs.</param>
    public void Run(int count, int threads, CallWorkspace call, in WorkerScratch scratch)
    {
        if (count <= 0) return;
        threads = Math.Min(threads, count);
        if (threads <= 1)
        {
            call.EnsureWorkers(1, scratch);
            Workspace workspace = call.Worker(0);
            for (int i = 0; i < count; i++) Execute(i, workspace);
            return;
        }

        if (_helpers.Length < threads - 1)
        {
            var helpers = new Helper[threads - 1];
            for (int i = 0; i < helpers.Length; i++) helpers[i] = i < _helpers.Length ? _helpers[i] : new Helper(this, i + 1);
            _helpers = helpers;
        }
        call.EnsureWorkers(_helpers.Length + 1, scratch); // a helper queued by an earlier, wider call may join this one
        _call = call;
        _error = null;
        Volatile.Write(ref _remaining, count);
        Volatile.Write(ref _state, (long)count << 32); // publishes the job's fields written before this call
        for (int i = 0; i < threads - 1; i++) _helpers[i].Queue();

        Work(0);
        WaitForClaimedItems();
        _call = null;
        _error?.Throw();
    }

    /// <summary>
    /// Returns once every item is done: spins briefly (helpers usually finish their last item within
    /// microseconds), then sleeps on the gate. Only the count decides; a pulse is a hint, so a late pulse from the
    /// previous call's last helper is harmless. Monitor waits allocate no managed memory.
    /// </summary>
    private void WaitForClaimedItems()
    {
        var spinner = new SpinWait();
        while (Volatile.Read(ref _remaining) != 0)
        {
            if (!spinner.NextSpinWillYield)
            {
                spinner.SpinOnce(sleep1Threshold: -1);
                continue;
            }
            lock (_gate)
            {
                while (Volatile.Read(ref _remaining) != 0) Monitor.Wait(_gate);
            }
        }
    }

    private bool TryClaim(out int item)
    {
        while (true)
        {
            long state = Volatile.Read(ref _state);
            int count = (int)(state >> 32), next = (int)state;
            if (next >= count)
            {
                item = -1;
                return false;
            }
            if (Interlocked.CompareExchange(ref _state, state + 1, state) == state)
            {
                item = next;
                return true;
            }
        }
    }

    private bool HasItems()
    {
        long state = Volatile.Read(ref _state);
        return (int)state < (int)(state >> 32);
    }

    /// <summary>Claims and runs items until none is left, with the workspace of <paramref name="participant"/>.</summary>
    private void Work(int participant)
    {
        if (!TryClaim(out int item)) return;
        Workspace workspace = _call!.Worker(participant); // read after the claim: the call's fields are published
        while (true)
        {
            try
            {
                Execute(item, workspace);
            }
            catch (Exception e)
            {
                // Kept and rethrown on the calling thread once every claimed item is done.
                Interlocked.CompareExchange(ref _error, ExceptionDispatchInfo.Capture(e), null);
            }
            bool more = TryClaim(out int next);
            if (Interlocked.Decrement(ref _remaining) == 0)
            {
                lock (_gate) Monitor.PulseAll(_gate);
            }
            if (!more) return;
            item = next;
        }
    }

    /// <summary>
    /// A reusable pool work item with a fixed participant number. It is queued only when it is neither waiting in
    /// the pool's queue nor running: so it never runs twice at once, and when the pool is saturated (every pool
    /// thread busy, say with callers of their own) helpers cannot pile up in its queue. Before it gives up its
    /// queued mark it looks once more for items, so a call that found it still running loses no help.
    /// </summary>
    private sealed class Helper(ParallelJob job, int participant) : IThreadPoolWorkItem
    {
        private int _queued;

        public void Queue()
        {
            if (Interlocked.Exchange(ref _queued, 1) == 0) ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }

        public void Execute()
        {
            while (true)
            {
                job.Work(participant);
                Volatile.Write(ref _queued, 0);
                // A call that started meanwhile saw us as queued and did not queue us: take its items here, unless
                // it has queued us since (then that run takes them).
                if (!job.HasItems() || Interlocked.Exchange(ref _queued, 1) != 0) return;
            }
        }
    }
}
