using System.Buffers;
using FastAttention.Planning;

namespace FastAttention.Buffers;

/// <summary>
/// All the scratch of one call, owned by the calling thread for the duration of the call: the scratch every
/// worker shares (packed keys, decode partials) and one <see cref="Workspace"/> per participant (the caller is
/// participant 0, helper i is participant i + 1). Helpers borrow the caller's, so a call's memory never depends
/// on which pool threads happen to help, and a thread that has run its largest call once allocates nothing more.
/// </summary>
internal sealed class CallWorkspace
{
    private readonly WorkspacePool _pool;
    private readonly ArrayPool<float> _arrays;
    private Workspace[] _workers = [];
    private float[]? _shared;

    public CallWorkspace(WorkspacePool pool, ArrayPool<float> arrays)
    {
        _pool = pool;
        _arrays = arrays;
    }

    /// <summary>The first of <paramref name="length"/> floats of shared scratch (re-rented only to grow), at a 64-byte boundary as <see cref="Workspace.Get"/>'s.</summary>
    public ref float Shared(int length)
    {
        if (_shared is null || _shared.Length < length + Workspace.AlignmentSlack) _shared = Replace(_shared, length + Workspace.AlignmentSlack);
        return ref Workspace.AlignedStart(_shared);
    }

    /// <summary>
    /// Makes sure participants 0..count−1 have a workspace with at least <paramref name="scratch"/> in its slots.
    /// Called by the calling thread before helpers can start: so growth depends on the calls a thread makes, never
    /// on which participants happen to claim items.
    /// </summary>
    public void EnsureWorkers(int count, in WorkerScratch scratch)
    {
        if (_workers.Length < count)
        {
            var workers = new Workspace[count];
            for (int i = 0; i < count; i++) workers[i] = i < _workers.Length ? _workers[i] : new Workspace(this);
            _workers = workers;
        }
        for (int i = 0; i < count; i++)
        {
            Workspace worker = _workers[i];
            worker.Reserve(0, scratch.Query);
            worker.Reserve(1, scratch.Accumulators);
            worker.Reserve(2, scratch.Scores);
            worker.Reserve(3, scratch.Stats);
            worker.Reserve(4, scratch.Staging);
        }
    }

    /// <summary>The workspace of one participant; <see cref="EnsureWorkers"/> has made it.</summary>
    public Workspace Worker(int participant) => _workers[participant];

    /// <summary>Returns <paramref name="old"/> (if any) to the array pool and rents one of at least <paramref name="length"/> floats (none for 0).</summary>
    internal float[] Replace(float[]? old, int length)
    {
        if (old is not null) _arrays.Return(old);
        if (length == 0) return null!;
        _pool.CountGrowth();
        return _arrays.Rent(Math.Max(length, 1024));
    }

    /// <summary>Gives every array back to the array pool.</summary>
    public void Release()
    {
        _shared = Replace(_shared, 0);
        foreach (Workspace worker in _workers) worker.Release();
    }
}
