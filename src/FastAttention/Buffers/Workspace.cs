using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

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

    /// <summary>
    /// The first of <paramref name="length"/> floats in slot <paramref name="slot"/> (re-rented only to grow), at a
    /// 64-byte boundary: the kernels' 512-bit loads and stores of scratch rows then never straddle two cache lines,
    /// which costs a core of this kind a second load for each (a 4-row tile over rows 16 bytes off a line runs at 77 %
    /// of the FMA peak instead of 95 %). Pin it with <c>fixed (float* p = &amp;workspace.Get(slot, length))</c>. The
    /// boundary is found before pinning; should the collector move the array in between, only the alignment is lost.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref float Get(int slot, int length)
    {
        float[]? array = _slots[slot];
        if (array is null || array.Length < length + AlignmentSlack) array = Grow(slot, length);
        return ref AlignedStart(array);
    }

    /// <summary>Grows slot <paramref name="slot"/> to at least <paramref name="length"/> floats now (nothing for 0).</summary>
    public void Reserve(int slot, int length)
    {
        if (length > 0) Get(slot, length);
    }

    /// <summary>Floats an array holds beyond what was asked for, so that its data can start at a 64-byte boundary.</summary>
    internal const int AlignmentSlack = 16;

    /// <summary>The element of <paramref name="array"/> (one of its first 16) at which a 64-byte line starts.</summary>
    internal static unsafe ref float AlignedStart(float[] array)
    {
        ref float first = ref MemoryMarshal.GetArrayDataReference(array);
        nuint misalignment = (nuint)Unsafe.AsPointer(ref first) % 64;
        return ref Unsafe.Add(ref first, misalignment == 0 ? 0 : (int)(64 - misalignment) / sizeof(float));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private float[] Grow(int slot, int length)
    {
        float[] array = _owner.Replace(_slots[slot], length + AlignmentSlack);
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
