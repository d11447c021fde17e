using FastAttention.Internal;

namespace FastAttention;

/// <summary>
/// Where the elements of one four-dimensional tensor <c>[batch, head, row, column]</c> live in a flat buffer:
/// element <c>(b, h, r, c)</c> is at <c>Offset + b·BatchStride + h·HeadStride + r·RowStride + c</c>.
/// The last dimension is always contiguous. Strides are in elements and never negative.
/// </summary>
public readonly record struct TensorLayout
{
    /// <summary>Creates a layout; every value must be zero or more.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A stride or the offset is negative.</exception>
    public TensorLayout(long batchStride, long headStride, long rowStride, long offset = 0)
    {
        if (batchStride < 0) ThrowHelper.ArgumentOutOfRange(nameof(batchStride), $"Strides must not be negative; got {batchStride}.");
        if (headStride < 0) ThrowHelper.ArgumentOutOfRange(nameof(headStride), $"Strides must not be negative; got {headStride}.");
        if (rowStride < 0) ThrowHelper.ArgumentOutOfRange(nameof(rowStride), $"Strides must not be negative; got {rowStride}.");
        if (offset < 0) ThrowHelper.ArgumentOutOfRange(nameof(offset), $"The offset must not be negative; got {offset}.");
        BatchStride = batchStride;
        HeadStride = headStride;
        RowStride = rowStride;
        Offset = offset;
    }

    /// <summary>Elements between consecutive batches.</summary>
    public long BatchStride { get; }

    /// <summary>Elements between consecutive heads.</summary>
    public long HeadStride { get; }

    /// <summary>Elements between consecutive rows (sequence positions).</summary>
    public long RowStride { get; }

    /// <summary>Index of element (0, 0, 0, 0).</summary>
    public long Offset { get; }

    /// <summary>The dense <c>[batch, head, row, column]</c> order (PyTorch's BHSD).</summary>
    public static TensorLayout Bhsd(int heads, int rows, int columns) =>
        new((long)heads * rows * columns, (long)rows * columns, columns);

    /// <summary>The dense <c>[batch, row, head, column]</c> order (BSHD, FlashAttention's).</summary>
    public static TensorLayout Bshd(int heads, int rows, int columns) =>
        new((long)rows * heads * columns, columns, (long)heads * columns);

    /// <summary>
    /// The smallest buffer length that holds every element of a tensor of these sizes, or −1 when that
    /// length does not fit in an <see cref="int"/> (or a size is zero, in which case 0 is returned).
    /// </summary>
    internal long RequiredLength(int batch, int heads, int rows, int columns)
    {
        if (batch == 0 || heads == 0 || rows == 0 || columns == 0) return 0;
        // Strides and offset are never negative, so the sum only grows: stop as soon as it reaches int.MaxValue,
        // before any product could overflow a long.
        long last = Offset;
        if (last >= int.MaxValue || !AddSpan(ref last, batch, BatchStride) || !AddSpan(ref last, heads, HeadStride) || !AddSpan(ref last, rows, RowStride))
            return -1;
        last += columns - 1;
        return last >= int.MaxValue ? -1 : last + 1;
    }

    /// <summary>last += (count − 1)·stride; false once it reaches int.MaxValue (last is below it on entry).</summary>
    private static bool AddSpan(ref long last, int count, long stride)
    {
        if (count <= 1 || stride == 0) return true;
        if (stride >= int.MaxValue) return false;
        last += (long)(count - 1) * stride; // below 2³¹ + 2³¹·2³¹: no overflow
        return last < int.MaxValue;
    }

    /// <summary>Whether two distinct elements of a tensor of these sizes can share an address.</summary>
    internal bool SelfOverlaps(int batch, int heads, int rows, int columns)
    {
        // Sort the three outer dimensions by stride; each must step over the whole extent of the smaller ones.
        Span<(long Stride, int Count)> dims = [(BatchStride, batch), (HeadStride, heads), (RowStride, rows)];
        // Three compare-exchanges sort three entries (a general sort costs more than the rest of a small call's checks).
        if (dims[1].Stride < dims[0].Stride) (dims[0], dims[1]) = (dims[1], dims[0]);
        if (dims[2].Stride < dims[1].Stride) (dims[1], dims[2]) = (dims[2], dims[1]);
        if (dims[1].Stride < dims[0].Stride) (dims[0], dims[1]) = (dims[1], dims[0]);
        Int128 extent = columns;
        foreach (var (stride, count) in dims)
        {
            if (count <= 1) continue;
            if (stride < extent) return true;
            extent = (Int128)stride * (count - 1) + extent;
        }
        return false;
    }
}

/// <summary>
/// Sizes and memory layouts of one attention problem:
/// query Q <c>[batch, queryHeads, queryCount, headSize]</c>, key K <c>[batch, keyValueHeads, keyCount, headSize]</c>,
/// value V <c>[batch, keyValueHeads, keyCount, valueHeadSize]</c> and output O <c>[batch, queryHeads, queryCount, valueHeadSize]</c>.
/// Query head <c>h</c> reads key-value head <c>h / (queryHeads / keyValueHeads)</c> (grouped-query and multi-query attention);
/// keys and values are never copied to expand heads.
/// </summary>
public readonly record struct AttentionShape
{
    /// <summary>Creates a shape with explicit layouts for the four tensors.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A size is out of range, or <paramref name="queryHeads"/> is not a multiple of <paramref name="keyValueHeads"/>.</exception>
    public AttentionShape(
        int batch, int queryHeads, int keyValueHeads, int queryCount, int keyCount, int headSize, int valueHeadSize,
        TensorLayout queryLayout, TensorLayout keyLayout, TensorLayout valueLayout, TensorLayout outputLayout)
    {
        if (batch < 0) ThrowHelper.ArgumentOutOfRange(nameof(batch), $"The batch size must be zero or more; got {batch}.");
        if (queryHeads < 1) ThrowHelper.ArgumentOutOfRange(nameof(queryHeads), $"There must be at least one query head; got {queryHeads}.");
        if (keyValueHeads < 1) ThrowHelper.ArgumentOutOfRange(nameof(keyValueHeads), $"There must be at least one key-value head; got {keyValueHeads}.");
        if (queryHeads % keyValueHeads != 0)
            ThrowHelper.ArgumentOutOfRange(nameof(queryHeads), $"queryHeads ({queryHeads}) must be a multiple of keyValueHeads ({keyValueHeads}).");
        if (queryCount < 0) ThrowHelper.ArgumentOutOfRange(nameof(queryCount), $"The query count must be zero or more; got {queryCount}.");
        if (keyCount < 0) ThrowHelper.ArgumentOutOfRange(nameof(keyCount), $"The key count must be zero or more; got {keyCount}.");
        if (headSize < 1) ThrowHelper.ArgumentOutOfRange(nameof(headSize), $"The head size must be at least 1; got {headSize}.");
        if (valueHeadSize < 1) ThrowHelper.ArgumentOutOfRange(nameof(valueHeadSize), $"The value head size must be at least 1; got {valueHeadSize}.");
        Batch = batch;
        QueryHeads = queryHeads;
        KeyValueHeads = keyValueHeads;
        QueryCount = queryCount;
        KeyCount = keyCount;
        HeadSize = headSize;
        ValueHeadSize = valueHeadSize;
        QueryLayout = queryLayout;
        KeyLayout = keyLayout;
        ValueLayout = valueLayout;
        OutputLayout = outputLayout;
        if (QueryLength < 0 || KeyLength < 0 || ValueLength < 0 || OutputLength < 0)
            ThrowHelper.ArgumentOutOfRange(nameof(batch), $"The shape {this} addresses more than {int.MaxValue} elements in one buffer.");
    }

    /// <summary>Batch size B.</summary>
    public int Batch { get; }

    /// <summary>Query heads Hq.</summary>
    public int QueryHeads { get; }

    /// <summary>Key-value heads Hkv; divides <see cref="QueryHeads"/>.</summary>
    public int KeyValueHeads { get; }

    /// <summary>Query rows per head, Lq.</summary>
    public int QueryCount { get; }

    /// <summary>Keys per head, Lk.</summary>
    public int KeyCount { get; }

    /// <summary>Size D of one query or key vector.</summary>
    public int HeadSize { get; }

    /// <summary>Size Dv of one value or output vector.</summary>
    public int ValueHeadSize { get; }

    /// <summary>Layout of Q.</summary>
    public TensorLayout QueryLayout { get; }

    /// <summary>Layout of K.</summary>
    public TensorLayout KeyLayout { get; }

    /// <summary>Layout of V.</summary>
    public TensorLayout ValueLayout { get; }

    /// <summary>Layout of O.</summary>
    public TensorLayout OutputLayout { get; }

    /// <summary>Query heads per key-value head.</summary>
    public int GroupSize => QueryHeads / KeyValueHeads;

    /// <summary>Minimum length of the query buffer.</summary>
    public long QueryLength => QueryLayout.RequiredLength(Batch, QueryHeads, QueryCount, HeadSize);

    /// <summary>Minimum length of the key buffer.</summary>
    public long KeyLength => KeyLayout.RequiredLength(Batch, KeyValueHeads, KeyCount, HeadSize);

    /// <summary>Minimum length of the value buffer.</summary>
    public long ValueLength => ValueLayout.RequiredLength(Batch, KeyValueHeads, KeyCount, ValueHeadSize);

    /// <summary>Minimum length of the output buffer.</summary>
    public long OutputLength => OutputLayout.RequiredLength(Batch, QueryHeads, QueryCount, ValueHeadSize);

    /// <summary>Length of the optional log-sum-exp output <c>[batch, queryHeads, queryCount]</c>, dense.</summary>
    public long LogSumExpLength => (long)Batch * QueryHeads * QueryCount;

    /// <summary>All four tensors dense in PyTorch's <c>[batch, head, sequence, column]</c> order.</summary>
    public static AttentionShape Bhsd(int batch, int queryHeads, int keyValueHeads, int queryCount, int keyCount, int headSize, int? valueHeadSize = null)
    {
        int dv = valueHeadSize ?? headSize;
        return new(batch, queryHeads, keyValueHeads, queryCount, keyCount, headSize, dv,
            TensorLayout.Bhsd(queryHeads, queryCount, headSize), TensorLayout.Bhsd(keyValueHeads, keyCount, headSize),
            TensorLayout.Bhsd(keyValueHeads, keyCount, dv), TensorLayout.Bhsd(queryHeads, queryCount, dv));
    }

    /// <summary>All four tensors dense in the <c>[batch, sequence, head, column]</c> order.</summary>
    public static AttentionShape Bshd(int batch, int queryHeads, int keyValueHeads, int queryCount, int keyCount, int headSize, int? valueHeadSize = null)
    {
        int dv = valueHeadSize ?? headSize;
        return new(batch, queryHeads, keyValueHeads, queryCount, keyCount, headSize, dv,
            TensorLayout.Bshd(queryHeads, queryCount, headSize), TensorLayout.Bshd(keyValueHeads, keyCount, headSize),
            TensorLayout.Bshd(keyValueHeads, keyCount, dv), TensorLayout.Bshd(queryHeads, queryCount, dv));
    }

    /// <summary>
    /// Self-attention over one packed projection buffer <c>[batch, sequenceLength, (queryHeads + 2·keyValueHeads)·headSize]</c>
    /// holding, per position, all query heads, then all key heads, then all value heads: pass that same buffer as
    /// query, key and value. The output is dense <c>[batch, sequenceLength, queryHeads·headSize]</c> (BSHD).
    /// </summary>
    public static AttentionShape PackedQkv(int batch, int queryHeads, int keyValueHeads, int sequenceLength, int headSize)
    {
        if (queryHeads < 1) ThrowHelper.ArgumentOutOfRange(nameof(queryHeads), $"There must be at least one query head; got {queryHeads}.");
        if (keyValueHeads < 1) ThrowHelper.ArgumentOutOfRange(nameof(keyValueHeads), $"There must be at least one key-value head; got {keyValueHeads}.");
        if (sequenceLength < 0) ThrowHelper.ArgumentOutOfRange(nameof(sequenceLength), $"The sequence length must be zero or more; got {sequenceLength}.");
        if (headSize < 1) ThrowHelper.ArgumentOutOfRange(nameof(headSize), $"The head size must be at least 1; got {headSize}.");
        long row = ((long)queryHeads + 2L * keyValueHeads) * headSize;
        long batchStride = row * sequenceLength;
        return new(batch, queryHeads, keyValueHeads, sequenceLength, sequenceLength, headSize, headSize,
            new TensorLayout(batchStride, headSize, row, 0),
            new TensorLayout(batchStride, headSize, row, (long)queryHeads * headSize),
            new TensorLayout(batchStride, headSize, row, ((long)queryHeads + keyValueHeads) * headSize),
            TensorLayout.Bshd(queryHeads, sequenceLength, headSize));
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"B={Batch} Hq={QueryHeads} Hkv={KeyValueHeads} Lq={QueryCount} Lk={KeyCount} D={HeadSize} Dv={ValueHeadSize}";
}
