using System.Buffers;

namespace FastAttention.Buffers;

/// <summary>
/// The workspaces of all calls in the process. A call rents one per participating thread and returns it when the
/// call ends, also when it throws; a returned workspace keeps its arrays, so a repeated call of the same size
/// allocates nothing. <see cref="Trim"/> hands every idle array back to the array pool.
/// </summary>
internal sealed class WorkspacePool
{
    private readonly object _lock = new();
    private readonly ArrayPool<float> _arrays;
    private Workspace[] _idle = new Workspace[8];
    private int _idleCount;
    private int _outstanding;

    public WorkspacePool(ArrayPool<float> arrays) => _arrays = arrays;

    public static WorkspacePool Shared { get; } = new(ArrayPool<float>.Shared);

    /// <summary>Workspaces rented and not yet returned.</summary>
    public int Outstanding => Volatile.Read(ref _outstanding);

    public Workspace Rent()
    {
        lock (_lock)
        {
            _outstanding++;
            if (_idleCount > 0)
            {
                Workspace w = _idle[--_idleCount];
                _idle[_idleCount] = null!;
                return w;
            }
        }
        return new Workspace(_arrays);
    }

    public void Return(Workspace workspace)
    {
        lock (_lock)
        {
            _outstanding--;
            if (_idleCount == _idle.Length) Array.Resize(ref _idle, _idle.Length * 2);
            _idle[_idleCount++] = workspace;
        }
    }

    /// <summary>Returns the arrays of every idle workspace to the array pool.</summary>
    public void Trim()
    {
        lock (_lock)
        {
            for (int i = 0; i < _idleCount; i++) _idle[i].Release();
        }
    }
}
