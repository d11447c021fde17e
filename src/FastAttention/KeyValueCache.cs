using System.Numerics.Tensors;
using FastAttention.Internal;

namespace FastAttention;

/// <summary>How a <see cref="KeyValueCache"/> stores keys and values: decode reads every cached byte once per step.</summary>
public enum KeyValueStorage
{
    /// <summary>fp32, as projected.</summary>
    Float32,

    /// <summary>IEEE half (rounded to nearest even): half the bytes.</summary>
    Half,

    /// <summary>Symmetric int8 with one fp32 scale per row (<see cref="Int8Quantization"/>): about a quarter of the bytes.</summary>
    Int8,
}

/// <summary>
/// Keys and values of past positions for incremental decoding with <see cref="MultiHeadAttention.ForwardStep"/>:
/// <c>[batch, keyValueHeads, position, headSize]</c> in fp32, Half or int8 (<see cref="KeyValueStorage"/>; attention
/// widens them to fp32 on load), a fixed capacity allocated once. Appending past the
/// capacity throws, unless the cache was made with sliding-window eviction: then it keeps the newest
/// <see cref="Capacity"/> positions (storage is twice the capacity, so the live rows move only once per
/// <see cref="Capacity"/> appended positions). Not thread-safe: one cache per sequence being decoded.
/// </summary>
public sealed class KeyValueCache
{
    private readonly Rows _keys, _values;
    private readonly int _rows; // stored rows per head
    private int _start;

    /// <param name="batch">Sequences decoded together.</param>
    /// <param name="keyValueHeads">Key-value heads of the layer.</param>
    /// <param name="headSize">Elements per head.</param>
    /// <param name="capacity">Positions held at most.</param>
    /// <param name="slidingWindow">Evict the oldest positions instead of throwing when full.</param>
    /// <param name="storage">Element type of the stored keys and values.</param>
    /// <exception cref="ArgumentOutOfRangeException">A size is below 1, or the storage is not a defined value.</exception>
    public KeyValueCache(int batch, int keyValueHeads, int headSize, int capacity, bool slidingWindow = false, KeyValueStorage storage = KeyValueStorage.Float32)
    {
        if (batch < 1) ThrowHelper.ArgumentOutOfRange(nameof(batch), $"batch must be at least 1; got {batch}.");
        if (keyValueHeads < 1) ThrowHelper.ArgumentOutOfRange(nameof(keyValueHeads), $"keyValueHeads must be at least 1; got {keyValueHeads}.");
        if (headSize < 1) ThrowHelper.ArgumentOutOfRange(nameof(headSize), $"headSize must be at least 1; got {headSize}.");
        if (capacity < 1) ThrowHelper.ArgumentOutOfRange(nameof(capacity), $"capacity must be at least 1; got {capacity}.");
        if ((uint)storage > (uint)KeyValueStorage.Int8) ThrowHelper.ArgumentOutOfRange(nameof(storage), $"storage is not a defined KeyValueStorage value: {(int)storage}.");
        Batch = batch;
        KeyValueHeads = keyValueHeads;
        HeadSize = headSize;
        Capacity = capacity;
        SlidingWindow = slidingWindow;
        _rows = slidingWindow ? 2 * capacity : capacity;
        Storage = storage;
        _keys = new Rows(storage, batch * keyValueHeads * _rows, headSize);
        _values = new Rows(storage, batch * keyValueHeads * _rows, headSize);
    }

    /// <summary>Element type of the stored keys and values.</summary>
    public KeyValueStorage Storage { get; }

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

    /// <summary>The live keys as attention reads them, with <see cref="Layout"/>.</summary>
    internal AttentionTensor Keys => _keys.Tensor(_start, _rows);

    /// <summary>The live values as attention reads them, with <see cref="Layout"/>.</summary>
    internal AttentionTensor Values => _values.Tensor(_start, _rows);

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
                int head = (b * KeyValueHeads + h) * _rows;
                _keys.Move(head + from, head, keep);
                _values.Move(head + from, head, keep);
            }
            _start = 0;
            Length = keep;
        }
        for (int b = 0; b < Batch; b++)
        for (int s = 0; s < steps; s++)
        for (int h = 0; h < KeyValueHeads; h++)
        {
            int row = (b * steps + s) * rowStride + h * d;
            int at = (b * KeyValueHeads + h) * _rows + _start + Length + s;
            _keys.Write(at, source.Slice(row + keyOffset, d));
            _values.Write(at, source.Slice(row + valueOffset, d));
        }
        Length += steps;
        if (Length > Capacity)
        {
            _start += Length - Capacity;
            Length = Capacity;
        }
    }

    /// <summary>One stored tensor: [rows, headSize] in the cache's element type, and the int8 row scales.</summary>
    private sealed class Rows
    {
        private readonly int _d;
        private readonly float[]? _float;
        private readonly Half[]? _half;
        private readonly sbyte[]? _int8;
        private readonly float[]? _scales;

        public Rows(KeyValueStorage storage, int rows, int d)
        {
            _d = d;
            long length = (long)rows * d;
            switch (storage)
            {
                case KeyValueStorage.Float32: _float = new float[length]; break;
                case KeyValueStorage.Half: _half = new Half[length]; break;
                default: _int8 = new sbyte[length]; _scales = new float[rows]; break;
            }
        }

        /// <summary>Stores one fp32 row (rounded or quantised for the narrower types).</summary>
        public void Write(int row, ReadOnlySpan<float> values)
        {
            if (_float is not null) values.CopyTo(_float.AsSpan(row * _d, _d));
            else if (_half is not null) TensorPrimitives.ConvertToHalf(values, _half.AsSpan(row * _d, _d));
            else Int8Quantization.QuantizeRows(values, _d, _int8.AsSpan(row * _d, _d), _scales.AsSpan(row, 1));
        }

        /// <summary>Moves <paramref name="count"/> rows from <paramref name="from"/> to <paramref name="to"/> (to ≤ from).</summary>
        public void Move(int from, int to, int count)
        {
            if (_float is not null) _float.AsSpan(from * _d, count * _d).CopyTo(_float.AsSpan(to * _d));
            else if (_half is not null) _half.AsSpan(from * _d, count * _d).CopyTo(_half.AsSpan(to * _d));
            else
            {
                _int8.AsSpan(from * _d, count * _d).CopyTo(_int8.AsSpan(to * _d));
                _scales.AsSpan(from, count).CopyTo(_scales.AsSpan(to));
            }
        }

        /// <summary>
        /// The tensor attention reads: the whole array (the layout's offset selects the live rows); int8 scales from
        /// the first live row, <paramref name="rowsPerHead"/> apart per head, as <see cref="AttentionTensor.Int8"/> indexes them.
        /// </summary>
        public AttentionTensor Tensor(int start, int rowsPerHead) =>
            _float is not null ? _float : _half is not null ? _half : AttentionTensor.Int8(_int8, _scales.AsSpan(start), rowsPerHead);
    }
}
