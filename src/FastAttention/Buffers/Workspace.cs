using System.Buffers;
using System.Runtime.CompilerServices;

namespace FastAttention.Buffers;

/// <summary>
/// Scratch for one worker: a few float arrays rented from an <see cref="ArrayPool{T}"/>, re-rented only to grow.
/// Kernels pin them for the duration of one work item. Rented memory is never cleared: kernels must not read
/// scratch they did not write.
/// </summary>
internal sealed class Workspace
{
    private readonly ArrayPool<float> _pool;
    private readonly float[]?[] _slots = new float[]?[SlotCount];

    public const int SlotCount = 4;

    public Workspace(ArrayPool<float> pool) => _pool = pool;

    /// <summary>An array of at least <paramref name="length"/> floats in slot <paramref name="slot"/>, re-rented only to grow.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float[] Get(int slot, int length)
    {
        float[]? array = _slots[slot];
        return array is not null && array.Length >= length ? array : Grow(slot, length);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private float[] Grow(int slot, int length)
    {
        float[]? old = _slots[slot];
        _slots[slot] = null;
        if (old is not null) _pool.Return(old);
        float[] array = _pool.Rent(Math.Max(length, 1024));
        _slots[slot] = array;
        return array;
    }

    /// <summary>Gives every array back to the pool.</summary>
    public void Release()
    {
        for (int i = 0; i < _slots.Length; i++)
        {
            if (_slots[i] is { } array)
            {
                _slots[i] = null;
                _pool.Return(array);
            }
        }
    }
}
