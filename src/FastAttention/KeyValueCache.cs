using FastAttention.Internal;

namespace FastAttention;

/// <summary>
/// Keys and values of past positions for incremental decoding with <see cref="MultiHeadAttention.ForwardStep"/>:
/// <c>[batch, keyValueHeads, position, headSize]</c> in fp32, a fixed capacity allocated once. Appending past the
/// capacity throws, unless the cache was made with sliding-window eviction: then it keeps the newest
/// <see cref="Capacity"/> positions (storage is twice the capacity, so the live rows move only once per
/// <see cref="Capacity"/> appended positions). Not thread-safe: one cache per sequence being decoded.
/// </summary>
public sealed class KeyValueCache
{
    private readonly float[] _keys, _values;
    private readonly int _rows; // stored rows per head
    private int _start;

    /// <param name="batch">Sequences decoded together.</param>
    /// <param name="keyValueHeads">Key-value heads of the layer.</param>
    /// <param name="headSize">Elements per head.</param>
    /// <param name="capacity">Positions held at most.</param>
    /// <param name="slidingWindow">Evict the oldest positions instead of throwing when full.</param>
    /// <exception cref="ArgumentOutOfRangeException">A size is below 1.</exception>
    public KeyValueCache(int batch, int keyValueHeads, int headSize, int capacity, bool slidingWindow = false)
    {
        if (batch < 1) ThrowHelper.ArgumentOutOfRange(nameof(batch), $"batch must be at least 1; got {batch}.");
        if (keyValueHeads < 1) ThrowHelper.ArgumentOutOfRange(nameof(keyValueHeads), $"keyValueHeads must be at least 1; got {keyValueHeads}.");
        if (headSize < 1) ThrowHelper.ArgumentOutOfRange(nameof(headSize), $"headSize must be at least 1; got {headSize}.");
        if (capacity < 1) ThrowHelper.ArgumentOutOfRange(nameof(capacity), $"capacity must be at least 1; got {capacity}.");
        Batch = batch;
        KeyValueHeads = keyValueHeads;
        HeadSize = headSize;
        Capacity = capacity;
        SlidingWindow = slidingWindow;
        _rows = slidingWindow ? 2 * capacity : capacity;
        _keys = new float[(long)batch * keyValueHeads * _rows * headSize];
        _values = new float[_keys.Length];
    }

    /// <summary>Sequences held.</summary>
    public int Batch { get; }

    /// <summary>Key-value heads per position.</summary>
    public int KeyValueHeads { get; }

    /// <summary>Elements per head.</summary>
    public int HeadSize { get; }

    /// <summary>Positions held at most.</summary>
    public int Capacity { get; }

    /// <summary>Whether the oldest positions are evicted when full (otherwise appending throws).</summary>
    public bool SlidingWindow { get; }

    /// <summary>Positions held now.</summary>
    public int Length { get; private set; }

    /// <summary>Forgets every position.</summary>
    public void Clear()
    {
        Length = 0;
        _start = 0;
    }

    /// <summary>Keeps the first <paramref name="length"/> positions held (say, to rewind a rejected speculative step).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative or above <see cref="Length"/>.</exception>
    public void Truncate(int length)
    {
        if ((uint)length > (uint)Length) ThrowHelper.ArgumentOutOfRange(nameof(length), $"length must be within 0..{Length}; got {length}.");
        Length = length;
    }

    internal ReadOnlySpan<float> Keys => _keys;
    internal ReadOnlySpan<float> Values => _values;

    /// <summary>The layout of the live keys (and values): <c>[batch, keyValueHeads, Length, headSize]</c> inside the storage.</summary>
    internal TensorLayout Layout => new((long)KeyValueHeads * _rows * HeadSize, (long)_rows * HeadSize, HeadSize, (long)_start * HeadSize);

    /// <summary>Throws before anything changes when <paramref name="steps"/> more positions do not fit.</summary>
    internal void EnsureRoom(int steps)
    {
        if (steps > Capacity || (!SlidingWindow && Length + steps > Capacity))
        {
            throw new InvalidOperationException(
                $"The key-value cache holds {Length} of {Capacity} positions; appending {steps} more would exceed its capacity" +
                (SlidingWindow ? " in one step." : ". Make it larger, Clear() it, or create it with slidingWindow: true."));
        }
    }

    /// <summary>
    /// Appends <paramref name="steps"/> positions: for batch b, step s and key-value head h, the key row is at
    /// source[(b·steps + s)·rowStride + keyOffset + h·headSize] and the value row at the same place + valueOffset − keyOffset.
    /// </summary>
    internal void Append(ReadOnlySpan<float> source, int steps, int rowStride, int keyOffset, int valueOffset)
    {
        EnsureRoom(steps);
        int d = HeadSize;
        if (_start + Length + steps > _rows)
        {
            // Sliding window: move the newest positions that stay to the front, once per Capacity appended.
            int keep = Math.Min(Length, Capacity - steps);
            int from = _start + Length - keep;
            for (int b = 0; b < Batch; b++)
            for (int h = 0; h < KeyValueHeads; h++)
            {
                long head = ((long)b * KeyValueHeads + h) * _rows * d;
                _keys.AsSpan((int)(head + (long)from * d), keep * d).CopyTo(_keys.AsSpan((int)head));
                _values.AsSpan((int)(head + (long)from * d), keep * d).CopyTo(_values.AsSpan((int)head));
            }
            _start = 0;
            Length = keep;
        }
        for (int b = 0; b < Batch; b++)
        for (int s = 0; s < steps; s++)
        for (int h = 0; h < KeyValueHeads; h++)
        {
            int row = (b * steps + s) * rowStride + h * d;
            long at = (((long)b * KeyValueHeads + h) * _rows + _start + Length + s) * d;
            source.Slice(row + keyOffset, d).CopyTo(_keys.AsSpan((int)at, d));
            source.Slice(row + valueOffset, d).CopyTo(_values.AsSpan((int)at, d));
        }
        Length += steps;
        if (Length > Capacity)
        {
            _start += Length - Capacity;
            Length = Capacity;
        }
    }
}
