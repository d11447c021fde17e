using System.Buffers;

namespace FastAttention.Buffers;

/// <summary>
/// The call workspaces of the process. A calling thread rents one per call and returns it when the call ends, also
/// when it throws; a returned workspace keeps its arrays, so a repeated call allocates nothing. Helpers rent
/// nothing: they borrow the caller's (<see cref="CallWorkspace"/>).
/// <para>
/// Each thread first gets back the workspace it returned last (a per-thread slot, taken and refilled with one
/// atomic exchange, no lock), so a thread's scratch grows only with that thread's own calls: after a thread has
/// run its largest call once, it allocates nothing more, however many other threads call concurrently. Only
/// when the slot is empty (first use, or a nested rent) does the thread fall back to the shared stack.
/// </para>
/// <see cref="Trim"/> hands every idle array back to the array pool, those parked in thread slots included.
/// </summary>
internal sealed class WorkspacePool : IDisposable
{
    private readonly object _lock = new();
    private readonly ArrayPool<float> _arrays;
    private readonly ThreadLocal<Slot> _slots = new(() => new Slot(), trackAllValues: true);
    private CallWorkspace[] _idle = new CallWorkspace[8];
    private int _idleCount;
    private int _outstanding;
    private long _created;
    private long _grown;

    public WorkspacePool(ArrayPool<float> arrays) => _arrays = arrays;

    public static WorkspacePool Shared { get; } = new(ArrayPool<float>.Shared);

    /// <summary>Workspaces rented and not yet returned.</summary>
    public int Outstanding => Volatile.Read(ref _outstanding);

    /// <summary>Call workspaces created so far: constant once every calling thread has made its first call.</summary>
    public long Created => Interlocked.Read(ref _created);

    /// <summary>Arrays rented to grow a workspace so far: constant once every calling thread has run its largest call.</summary>
    public long Grown => Interlocked.Read(ref _grown);

    internal void CountGrowth() => Interlocked.Increment(ref _grown);

    public CallWorkspace Rent()
    {
        Interlocked.Increment(ref _outstanding);
        CallWorkspace? workspace = Interlocked.Exchange(ref _slots.Value!.Parked, null);
        if (workspace is not null) return workspace;
        lock (_lock)
        {
            if (_idleCount > 0)
            {
                workspace = _idle[--_idleCount];
                _idle[_idleCount] = null!;
                return workspace;
            }
        }
        Interlocked.Increment(ref _created);
        return new CallWorkspace(this, _arrays);
    }

    public void Return(CallWorkspace workspace)
    {
        if (Interlocked.CompareExchange(ref _slots.Value!.Parked, workspace, null) is not null) Push(workspace);
        Interlocked.Decrement(ref _outstanding);
    }

    /// <summary>Returns the arrays of every idle workspace, parked or stacked, to the array pool.</summary>
    public void Trim()
    {
        foreach (Slot slot in _slots.Values)
        {
            if (Interlocked.Exchange(ref slot.Parked, null) is { } parked)
            {
                parked.Release();
                Push(parked);
            }
        }
        lock (_lock)
        {
            for (int i = 0; i < _idleCount; i++) _idle[i].Release();
        }
    }

    public void Dispose() => _slots.Dispose();

    private void Push(CallWorkspace workspace)
    {
        lock (_lock)
        {
            if (_idleCount == _idle.Length) Array.Resize(ref _idle, _idle.Length * 2);
            _idle[_idleCount++] = workspace;
        }
    }

    private sealed class Slot
    {
        public CallWorkspace? Parked;
    }
}
