using System.Runtime.ExceptionServices;
using FastAttention.Buffers;

namespace FastAttention.Scheduling;

/// <summary>
/// Runs the items of one phase on the .NET thread pool without allocating: helper work items are created once
/// per job and re-queued; the calling thread takes part and claims items like any helper; items are claimed
/// with one atomic counter, so an item runs exactly once whichever thread takes it.
/// <para>
/// A helper that starts late (the pool was busy) finds no item left and returns: the caller never waits for a
/// helper that has not claimed an item, so calls from pool threads, or from many threads at once, cannot
/// deadlock. A stale helper from an earlier call may claim items of a later call of the same job: it claims
/// before it reads the job's state, and the caller waits until every claimed item is done, so that is safe.
/// </para>
/// </summary>
internal abstract class ParallelJob
{
    private readonly WorkspacePool _workspaces;
    private readonly ManualResetEventSlim _done = new(false);
    private Helper[] _helpers = [];
    private long _state; // (item count << 32) | next item
    private int _remaining;
    private ExceptionDispatchInfo? _error;

    protected ParallelJob(WorkspacePool workspaces) => _workspaces = workspaces;

    /// <summary>The pool this job's workers rent their workspaces from.</summary>
    public WorkspacePool Workspaces => _workspaces;

    /// <summary>Runs one item with the calling thread's workspace. Must not depend on which thread runs it.</summary>
    protected abstract void Execute(int item, Workspace workspace);

    /// <summary>Runs items 0..count−1 on up to <paramref name="threads"/> threads and returns when all are done.</summary>
    public void Run(int count, int threads)
    {
        if (count <= 0) return;
        threads = Math.Min(threads, count);
        if (threads <= 1)
        {
            Workspace workspace = _workspaces.Rent();
            try
            {
                for (int i = 0; i < count; i++) Execute(i, workspace);
            }
            finally
            {
                _workspaces.Return(workspace);
            }
            return;
        }

        if (_helpers.Length < threads - 1)
        {
            var helpers = new Helper[threads - 1];
            for (int i = 0; i < helpers.Length; i++) helpers[i] = i < _helpers.Length ? _helpers[i] : new Helper(this);
            _helpers = helpers;
        }
        _error = null;
        _done.Reset();
        Volatile.Write(ref _remaining, count);
        Volatile.Write(ref _state, (long)count << 32); // publishes the job's fields written before this call
        for (int i = 0; i < threads - 1; i++) ThreadPool.UnsafeQueueUserWorkItem(_helpers[i], preferLocal: false);

        Work();
        if (Volatile.Read(ref _remaining) != 0) _done.Wait();
        _error?.Throw();
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

    private void Work()
    {
        if (!TryClaim(out int item)) return;
        Workspace workspace = _workspaces.Rent();
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
            if (!more)
            {
                // Give the workspace back before the last decrement, so that it is home when the caller returns.
                _workspaces.Return(workspace);
            }
            if (Interlocked.Decrement(ref _remaining) == 0) _done.Set();
            if (!more) return;
            item = next;
        }
    }

    private sealed class Helper(ParallelJob job) : IThreadPoolWorkItem
    {
        public void Execute() => job.Work();
    }
}
