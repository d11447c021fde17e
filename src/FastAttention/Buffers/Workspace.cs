using System.Buffers;
using System.Runtime.CompilerServices;

namespace FastAttention.Buffers;

/// <summary>
/// Scratch for one worker of a call: a few float arrays rented from an <see cref="ArrayPool{T}"/>, re-rented only
/// to grow. Kernels pin them for the duration of one work item. Rented memory is never cleared: kernels must not
/// read scratch they did not write (or must discard what they read, as masked vector tails do).
/// </summary>
internal sealed class Workspace
{
    public const int SlotCount = 5;

    private readonly CallWorkspace _owner;
    private readonly float[]?[] _slots = new float[]?[SlotCount];

    public Workspace(CallWorkspace owner) => _owner = owner;

    /// <summary>An array of at least <paramref name="length"/> floats in slot <paramref name="slot"/>, re-rented only to grow.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float[] Get(int slot, int length)
    {
        float[]? array = _slots[slot];
        return array is not null && array.Length >= length ? array : Grow(slot, length);
    }

    /// <summary>Grows slot <paramref name="slot"/> to at least <paramref name="length"/> floats now (nothing for 0).</summary>
    public void Reserve(int slot, int length)
    {
        if (length > 0) Get(slot, length);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private float[] Grow(int slot, int length)
    {
        float[] array = _owner.Replace(_slots[slot], length);
        _slots[slot] = array;
        return array;
    }

    /// <summary>Gives every array back to the pool.</summary>
    public void Release()
    {
        for (int i = 0; i < _slots.Length; i++)
        {
            _owner.Replace(_slots[i], 0);
            _slots[i] = null;
        }
    }
}
