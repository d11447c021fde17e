using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FastAttention.Buffers;
using FastAttention.Internal;
using FastAttention.Kernels;
using FastAttention.Planning;
using FastAttention.Scheduling;

namespace FastAttention;

/// <summary>
/// Fused scaled dot-product attention on the CPU:
/// <c>O = softmax(scale · Q·Kᵀ, masked) · V</c> for every batch and query head, computed tile by tile without
/// materialising the queryCount × keyCount score matrix, in fp32 with SIMD and on several threads.
/// </summary>
/// <remarks>
/// <para>It effectively computes, for batch b, query head h (key-value head g = h / (Hq/Hkv)) and query row i:</para>
/// <code>
///   s_j = scale · Σ_d Q[b,h,i,d]·K[b,g,j,d]            for every key j visible to row i
///   m   = max_j s_j,   l = Σ_j e^(s_j − m)
///   O[b,h,i,:] = Σ_j e^(s_j − m) / l · V[b,g,j,:]      logSumExp[b,h,i] = m + ln l
/// </code>
/// <para>
/// Masked keys are skipped, never multiplied by zero: NaN or ±∞ in their K or V rows cannot reach the output.
/// A row with no visible key gets zeros and a log-sum-exp of −∞. NaN or ±∞ in visible inputs propagate as IEEE
/// arithmetic says. Results are bitwise identical for every <see cref="AttentionOptions.MaxDegreeOfParallelism"/>;
/// they may differ in the last bits between instruction sets (FMA or not, vector width).
/// </para>
/// <para>Steady state allocates nothing: scratch comes from pooled workspaces that only grow.</para>
/// </remarks>
public static unsafe partial class Attention
{
    /// <summary>Computes attention into <paramref name="output"/>.</summary>
    /// <param name="query">Q, <c>[batch, queryHeads, queryCount, headSize]</c> laid out as <see cref="AttentionShape.QueryLayout"/> says.</param>
    /// <param name="key">K, <c>[batch, keyValueHeads, keyCount, headSize]</c>.</param>
    /// <param name="value">V, <c>[batch, keyValueHeads, keyCount, valueHeadSize]</c>.</param>
    /// <param name="output">O, <c>[batch, queryHeads, queryCount, valueHeadSize]</c>; must not overlap any input.</param>
    /// <param name="shape">Sizes and layouts.</param>
    /// <param name="options">Scale, causal mask, parallelism.</param>
    /// <exception cref="ArgumentException">A buffer is shorter than its shape needs, or the output overlaps an input or itself.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range, or the shape was never initialised.</exception>
    public static void Compute(ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value, Span<float> output,
        in AttentionShape shape, in AttentionOptions options = default) =>
        Run(query, key, value, output, default, false, shape, options, KernelDispatch.Best, WorkspacePool.Shared);

    /// <summary>Computes attention into <paramref name="output"/> and the log-sum-exp of every query row into <paramref name="logSumExp"/>.</summary>
    /// <param name="query">Q, <c>[batch, queryHeads, queryCount, headSize]</c>.</param>
    /// <param name="key">K, <c>[batch, keyValueHeads, keyCount, headSize]</c>.</param>
    /// <param name="value">V, <c>[batch, keyValueHeads, keyCount, valueHeadSize]</c>.</param>
    /// <param name="output">O, <c>[batch, queryHeads, queryCount, valueHeadSize]</c>.</param>
    /// <param name="logSumExp">Dense <c>[batch, queryHeads, queryCount]</c>: m + ln Σ e^(s − m) per row, −∞ for a row with no visible key.</param>
    /// <param name="shape">Sizes and layouts.</param>
    /// <param name="options">Scale, causal mask, parallelism.</param>
    /// <exception cref="ArgumentException">A buffer is too short, or an output overlaps an input, itself or the other output.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range, or the shape was never initialised.</exception>
    public static void Compute(ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value, Span<float> output,
        Span<float> logSumExp, in AttentionShape shape, in AttentionOptions options = default) =>
        Run(query, key, value, output, logSumExp, true, shape, options, KernelDispatch.Best, WorkspacePool.Shared);

    /// <summary>Computes attention with masks, biases and per-head terms into <paramref name="output"/>.</summary>
    /// <param name="query">Q, <c>[batch, queryHeads, queryCount, headSize]</c>.</param>
    /// <param name="key">K, <c>[batch, keyValueHeads, keyCount, headSize]</c>.</param>
    /// <param name="value">V, <c>[batch, keyValueHeads, keyCount, valueHeadSize]</c>.</param>
    /// <param name="output">O, <c>[batch, queryHeads, queryCount, valueHeadSize]</c>; must not overlap any input.</param>
    /// <param name="shape">Sizes and layouts.</param>
    /// <param name="options">Scale, causal mask, window, soft-cap, parallelism.</param>
    /// <param name="masks">Bias, boolean mask, key lengths, ALiBi slopes and sinks; see <see cref="AttentionMasks"/>.</param>
    /// <exception cref="ArgumentException">A buffer or mask tensor is too short, or an output overlaps an input.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option or a key length is out of range.</exception>
    public static void Compute(ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value, Span<float> output,
        in AttentionShape shape, in AttentionOptions options, scoped in AttentionMasks masks) =>
        Run(query, key, value, output, default, false, shape, options, KernelDispatch.Best, WorkspacePool.Shared, null, masks);

    /// <summary>Computes attention with masks, biases and per-head terms, and the log-sum-exp of every query row.</summary>
    /// <param name="query">Q, <c>[batch, queryHeads, queryCount, headSize]</c>.</param>
    /// <param name="key">K, <c>[batch, keyValueHeads, keyCount, headSize]</c>.</param>
    /// <param name="value">V, <c>[batch, keyValueHeads, keyCount, valueHeadSize]</c>.</param>
    /// <param name="output">O, <c>[batch, queryHeads, queryCount, valueHeadSize]</c>.</param>
    /// <param name="logSumExp">Dense <c>[batch, queryHeads, queryCount]</c>: m + ln l, sink included; −∞ (or the sink) for a row with no visible key.</param>
    /// <param name="shape">Sizes and layouts.</param>
    /// <param name="options">Scale, causal mask, window, soft-cap, parallelism.</param>
    /// <param name="masks">Bias, boolean mask, key lengths, ALiBi slopes and sinks; see <see cref="AttentionMasks"/>.</param>
    /// <exception cref="ArgumentException">A buffer or mask tensor is too short, or an output overlaps an input.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option or a key length is out of range.</exception>
    public static void Compute(ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value, Span<float> output,
        Span<float> logSumExp, in AttentionShape shape, in AttentionOptions options, scoped in AttentionMasks masks) =>
        Run(query, key, value, output, logSumExp, true, shape, options, KernelDispatch.Best, WorkspacePool.Shared, null, masks);

    /// <summary>
    /// Computes attention over inputs stored as fp32, <see cref="Half"/>, <see cref="BFloat16"/> or (keys and values)
    /// int8 with row scales, in any mix, into an fp32, Half or BFloat16 output. Elements are widened to fp32 on load
    /// and every product, sum and the softmax are fp32, as for fp32 inputs: the result equals that of fp32 inputs
    /// holding the widened values (then rounded to the output type).
    /// </summary>
    /// <param name="query">Q, <c>[batch, queryHeads, queryCount, headSize]</c>: float, Half or BFloat16.</param>
    /// <param name="key">K, <c>[batch, keyValueHeads, keyCount, headSize]</c>: any <see cref="AttentionTensor"/>.</param>
    /// <param name="value">V, <c>[batch, keyValueHeads, keyCount, valueHeadSize]</c>: any <see cref="AttentionTensor"/>.</param>
    /// <param name="output">O, <c>[batch, queryHeads, queryCount, valueHeadSize]</c>: float, Half or BFloat16; must not overlap any input.</param>
    /// <param name="shape">Sizes and layouts, counted in elements.</param>
    /// <param name="options">Scale, causal mask, window, soft-cap, parallelism.</param>
    /// <param name="masks">Bias, boolean mask, key lengths, ALiBi slopes and sinks.</param>
    /// <exception cref="ArgumentException">A buffer or scale tensor is too short, the query is int8, or an output overlaps an input.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option or a key length is out of range.</exception>
    public static void Compute(AttentionTensor query, AttentionTensor key, AttentionTensor value, AttentionOutput output,
        in AttentionShape shape, in AttentionOptions options = default, scoped in AttentionMasks masks = default) =>
        Run(query, key, value, output, default, false, shape, options, KernelDispatch.Best, WorkspacePool.Shared, null, masks);

    /// <summary>As <see cref="Compute(AttentionTensor, AttentionTensor, AttentionTensor, AttentionOutput, in AttentionShape, in AttentionOptions, in AttentionMasks)"/>, with the log-sum-exp of every query row (fp32).</summary>
    /// <param name="query">Q: float, Half or BFloat16.</param>
    /// <param name="key">K: any <see cref="AttentionTensor"/>.</param>
    /// <param name="value">V: any <see cref="AttentionTensor"/>.</param>
    /// <param name="output">O: float, Half or BFloat16.</param>
    /// <param name="logSumExp">Dense <c>[batch, queryHeads, queryCount]</c>.</param>
    /// <param name="shape">Sizes and layouts, counted in elements.</param>
    /// <param name="options">Scale, causal mask, window, soft-cap, parallelism.</param>
    /// <param name="masks">Bias, boolean mask, key lengths, ALiBi slopes and sinks.</param>
    /// <exception cref="ArgumentException">A buffer or scale tensor is too short, the query is int8, or an output overlaps an input or the other output.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option or a key length is out of range.</exception>
    public static void Compute(AttentionTensor query, AttentionTensor key, AttentionTensor value, AttentionOutput output, Span<float> logSumExp,
        in AttentionShape shape, in AttentionOptions options = default, scoped in AttentionMasks masks = default) =>
        Run(query, key, value, output, logSumExp, true, shape, options, KernelDispatch.Best, WorkspacePool.Shared, null, masks);

    /// <summary>Hands the arrays of idle workspaces back to <see cref="System.Buffers.ArrayPool{T}.Shared"/>.</summary>
    public static void TrimWorkspaces() => WorkspacePool.Shared.Trim();

    internal static void Run(AttentionTensor query, AttentionTensor key, AttentionTensor value, AttentionOutput output,
        Span<float> logSumExp, bool wantLogSumExp, in AttentionShape shape, in AttentionOptions options, KernelWidth width, WorkspacePool workspaces,
        KernelKind? kind = null, scoped in AttentionMasks masks = default)
    {
        Validate(query, key, value, output, logSumExp, wantLogSumExp, shape, options);
        ValidateMasks(output, logSumExp, wantLogSumExp, shape, options, masks);
        if (shape.Batch == 0 || shape.QueryCount == 0) return;

        fixed (byte* q = query.Bytes)
        fixed (byte* k = key.Bytes)
        fixed (byte* v = value.Bytes)
        fixed (float* keyScales = key.Scales)
        fixed (float* valueScales = value.Scales)
        fixed (byte* o = output.Bytes)
        fixed (float* lse = logSumExp)
        fixed (float* bias = masks.Bias)
        fixed (bool* mask = masks.Mask)
        fixed (int* keyLengths = masks.KeyLengths)
        fixed (float* slopes = masks.AlibiSlopes)
        fixed (float* sinks = masks.Sinks)
        {
            KernelArguments args = Arguments(shape, options, wantLogSumExp ? lse : null);
            args.Query = Operand(q, query.Type, shape.QueryLayout);
            args.Key = Operand(k, key.Type, shape.KeyLayout, keyScales, ScaleRows(key, shape), shape.KeyValueHeads);
            args.Value = Operand(v, value.Type, shape.ValueLayout, valueScales, ScaleRows(value, shape), shape.KeyValueHeads);
            args.Output = Operand(o, output.Type, shape.OutputLayout);
            long slice = (long)shape.QueryCount * shape.KeyCount;
            if (!masks.Bias.IsEmpty)
            {
                args.Bias = bias;
                args.BiasHeadStride = (masks.BiasBroadcast & MaskBroadcast.Heads) != 0 ? 0 : (nint)slice;
                args.BiasBatchStride = (masks.BiasBroadcast & MaskBroadcast.Batch) != 0 ? 0 : (nint)(slice * ((masks.BiasBroadcast & MaskBroadcast.Heads) != 0 ? 1 : shape.QueryHeads));
            }
            if (!masks.Mask.IsEmpty)
            {
                args.Mask = (byte*)mask;
                args.MaskHeadStride = (masks.MaskBroadcast & MaskBroadcast.Heads) != 0 ? 0 : (nint)slice;
                args.MaskBatchStride = (masks.MaskBroadcast & MaskBroadcast.Batch) != 0 ? 0 : (nint)(slice * ((masks.MaskBroadcast & MaskBroadcast.Heads) != 0 ? 1 : shape.QueryHeads));
            }
            if (!masks.KeyLengths.IsEmpty) args.KeyLengths = keyLengths;
            if (!masks.AlibiSlopes.IsEmpty) args.AlibiSlopes = slopes;
            if (!masks.Sinks.IsEmpty) args.Sinks = sinks;
            int threads = options.MaxDegreeOfParallelism ?? Environment.ProcessorCount;
            AttentionPlan plan = Planner.Plan(args, width, threads, kind);
            long scratchLength = plan.Kind == KernelKind.Decode ? plan.PartialLength : plan.PackedKeyLength + plan.StagedValueLength;
            if (scratchLength > Array.MaxLength)
                ThrowHelper.ArgumentOutOfRange(nameof(key), $"The keys of shape {shape} need {scratchLength} floats of scratch, more than one array holds.");

            AttentionJob.ForCurrentThread(workspaces).Run(args, plan, (int)scratchLength);
        }
    }

    private static int ScaleRows(AttentionTensor tensor, in AttentionShape shape) => tensor.ScaleRows == 0 ? shape.KeyCount : tensor.ScaleRows;

    private static Operand Operand(byte* data, ElementType type, in TensorLayout layout, float* scales = null, int scaleRows = 0, int heads = 0) => new()
    {
        Data = data + layout.Offset * Kernels.Operand.ElementSize(type),
        Type = type,
        BatchStride = (nint)layout.BatchStride,
        HeadStride = (nint)layout.HeadStride,
        RowStride = (nint)layout.RowStride,
        Scales = type == ElementType.Int8 ? scales : null,
        ScaleHeadStride = scaleRows,
        ScaleBatchStride = (nint)scaleRows * heads,
    };

    private static KernelArguments Arguments(in AttentionShape shape, in AttentionOptions options, float* lse) => new()
    {
        LogSumExp = lse,
        Batch = shape.Batch,
        QueryHeads = shape.QueryHeads,
        KeyValueHeads = shape.KeyValueHeads,
        GroupSize = shape.GroupSize,
        QueryCount = shape.QueryCount,
        KeyCount = shape.KeyCount,
        HeadSize = shape.HeadSize,
        ValueHeadSize = shape.ValueHeadSize,
        Scale = options.Scale ?? 1f / MathF.Sqrt(shape.HeadSize),
        Causal = options.Causal,
        BottomRightAligned = options.Causal == CausalMask.BottomRight || (options.Causal == CausalMask.None && options.Alignment == DiagonalAlignment.BottomRight),
        HasWindow = options.Window is not null,
        WindowLeft = options.Window?.Left ?? 0,
        WindowRight = options.Window?.Right ?? 0,
        SoftCap = options.SoftCap ?? 0f,
    };

    /// <summary>The checks of the options and tensors of <see cref="AttentionMasks"/>, before anything is written.</summary>
    private static void ValidateMasks(AttentionOutput output, Span<float> logSumExp, bool wantLogSumExp, in AttentionShape shape, in AttentionOptions options, scoped in AttentionMasks masks)
    {
        if (options.SoftCap is float cap && !(cap > 0f && float.IsFinite(cap)))
            ThrowHelper.ArgumentOutOfRange(nameof(options), $"options.SoftCap must be finite and greater than 0; got {cap}.");
        if (options.Window is SlidingWindow window && (window.Left < 0 || window.Right < 0))
            ThrowHelper.ArgumentOutOfRange(nameof(options), $"options.Window bounds must be at least 0; got (Left: {window.Left}, Right: {window.Right}).");
        if (options.Alignment is DiagonalAlignment alignment)
        {
            if ((uint)alignment > (uint)DiagonalAlignment.BottomRight)
                ThrowHelper.ArgumentOutOfRange(nameof(options), $"options.Alignment is not a defined DiagonalAlignment value: {(int)alignment}.");
            if (options.Causal != CausalMask.None && (alignment == DiagonalAlignment.BottomRight) != (options.Causal == CausalMask.BottomRight))
                ThrowHelper.Argument(nameof(options), $"options.Alignment {alignment} disagrees with options.Causal {options.Causal}; give one alignment per call.");
        }
        if (masks.IsEmpty) return;

        int b = shape.Batch, hq = shape.QueryHeads, lq = shape.QueryCount, lk = shape.KeyCount;
        if ((uint)masks.BiasBroadcast > (uint)MaskBroadcast.All || (uint)masks.MaskBroadcast > (uint)MaskBroadcast.All)
            ThrowHelper.ArgumentOutOfRange(nameof(masks), "masks.BiasBroadcast and masks.MaskBroadcast must be MaskBroadcast values.");
        if (!masks.Bias.IsEmpty && masks.Bias.Length < BroadcastLength(masks.BiasBroadcast, b, hq, lq, lk))
        {
            ThrowHelper.TooShort(nameof(masks), "masks.Bias", BroadcastDims(masks.BiasBroadcast, b, hq, lq, lk),
                BroadcastLength(masks.BiasBroadcast, b, hq, lq, lk), masks.Bias.Length);
        }
        if (!masks.Mask.IsEmpty && masks.Mask.Length < BroadcastLength(masks.MaskBroadcast, b, hq, lq, lk))
        {
            ThrowHelper.TooShort(nameof(masks), "masks.Mask", BroadcastDims(masks.MaskBroadcast, b, hq, lq, lk),
                BroadcastLength(masks.MaskBroadcast, b, hq, lq, lk), masks.Mask.Length);
        }
        if (!masks.KeyLengths.IsEmpty)
        {
            if (masks.KeyLengths.Length < b) ThrowHelper.TooShort(nameof(masks), "masks.KeyLengths", $"[{b}]", b, masks.KeyLengths.Length);
            for (int i = 0; i < b; i++)
            {
                if ((uint)masks.KeyLengths[i] > (uint)lk)
                    ThrowHelper.ArgumentOutOfRange(nameof(masks), $"masks.KeyLengths[{i}] = {masks.KeyLengths[i]} is outside 0..{lk} (the key count).");
            }
        }
        if (!masks.AlibiSlopes.IsEmpty)
        {
            if (masks.AlibiSlopes.Length < hq) ThrowHelper.TooShort(nameof(masks), "masks.AlibiSlopes", $"[{hq}]", hq, masks.AlibiSlopes.Length);
            for (int h = 0; h < hq; h++)
            {
                if (!float.IsFinite(masks.AlibiSlopes[h]))
                    ThrowHelper.ArgumentOutOfRange(nameof(masks), $"masks.AlibiSlopes[{h}] = {masks.AlibiSlopes[h]} must be finite.");
            }
        }
        if (!masks.Sinks.IsEmpty)
        {
            if (masks.Sinks.Length < hq) ThrowHelper.TooShort(nameof(masks), "masks.Sinks", $"[{hq}]", hq, masks.Sinks.Length);
            for (int h = 0; h < hq; h++)
            {
                if (float.IsNaN(masks.Sinks[h]) || float.IsPositiveInfinity(masks.Sinks[h]))
                    ThrowHelper.ArgumentOutOfRange(nameof(masks), $"masks.Sinks[{h}] = {masks.Sinks[h]} must be a number below +∞ (−∞ means no sink).");
            }
        }

        // The outputs must not share memory with any mask tensor either.
        ReadOnlySpan<byte> written = Used(output, shape.OutputLength);
        ReadOnlySpan<byte> lse = wantLogSumExp ? MemoryMarshal.AsBytes(logSumExp[..(int)shape.LogSumExpLength]) : default;
        if (Overlaps(written, lse, MemoryMarshal.AsBytes(masks.Bias)) || Overlaps(written, lse, MemoryMarshal.AsBytes(masks.Mask)) ||
            Overlaps(written, lse, MemoryMarshal.AsBytes(masks.KeyLengths)) || Overlaps(written, lse, MemoryMarshal.AsBytes(masks.AlibiSlopes)) ||
            Overlaps(written, lse, MemoryMarshal.AsBytes(masks.Sinks)))
        {
            ThrowHelper.Argument(nameof(masks), "A tensor of masks shares memory with output or logSumExp: outputs must not overlap any input.");
        }
    }

    private static bool Overlaps(ReadOnlySpan<byte> output, ReadOnlySpan<byte> logSumExp, ReadOnlySpan<byte> input) =>
        !input.IsEmpty && (output.Overlaps(input) || logSumExp.Overlaps(input));

    private static long BroadcastLength(MaskBroadcast broadcast, int batch, int heads, int queryCount, int keyCount) =>
        (long)((broadcast & MaskBroadcast.Batch) != 0 ? 1 : batch) * ((broadcast & MaskBroadcast.Heads) != 0 ? 1 : heads) * queryCount * keyCount;

    /// <summary>The broadcast shape as text: only for exception messages (building it allocates).</summary>
    private static string BroadcastDims(MaskBroadcast broadcast, int batch, int heads, int queryCount, int keyCount) =>
        $"[{((broadcast & MaskBroadcast.Batch) != 0 ? 1 : batch)}, {((broadcast & MaskBroadcast.Heads) != 0 ? 1 : heads)}, {queryCount}, {keyCount}]";

    /// <summary>Every check, before anything is written.</summary>
    private static void Validate(AttentionTensor query, AttentionTensor key, AttentionTensor value, AttentionOutput output,
        Span<float> logSumExp, bool wantLogSumExp, in AttentionShape shape, in AttentionOptions options)
    {
        if (shape.QueryHeads == 0)
            ThrowHelper.ArgumentOutOfRange(nameof(shape), "The shape is default(AttentionShape); create it with a constructor or a factory such as AttentionShape.Bhsd.");
        if (options.Scale is float scale && !float.IsFinite(scale))
            ThrowHelper.ArgumentOutOfRange(nameof(options), $"options.Scale must be finite; got {scale}.");
        if (options.MaxDegreeOfParallelism is int dop && dop < 1)
            ThrowHelper.ArgumentOutOfRange(nameof(options), $"options.MaxDegreeOfParallelism must be at least 1 (or null for every core); got {dop}.");
        // A range check, not Enum.IsDefined: that caches its tables in the enum type's runtime cache, which a full
        // garbage collection may drop, so the first call after such a collection would allocate them again.
        if ((uint)options.Causal > (uint)CausalMask.BottomRight)
            ThrowHelper.ArgumentOutOfRange(nameof(options), $"options.Causal is not a defined CausalMask value: {(int)options.Causal}.");

        long queryLength = shape.QueryLength, keyLength = shape.KeyLength, valueLength = shape.ValueLength, outputLength = shape.OutputLength;
        if (query.Length < queryLength)
            ThrowHelper.TooShort(nameof(query), $"[{shape.Batch}, {shape.QueryHeads}, {shape.QueryCount}, {shape.HeadSize}]", queryLength, query.Length);
        if (key.Length < keyLength)
            ThrowHelper.TooShort(nameof(key), $"[{shape.Batch}, {shape.KeyValueHeads}, {shape.KeyCount}, {shape.HeadSize}]", keyLength, key.Length);
        if (value.Length < valueLength)
            ThrowHelper.TooShort(nameof(value), $"[{shape.Batch}, {shape.KeyValueHeads}, {shape.KeyCount}, {shape.ValueHeadSize}]", valueLength, value.Length);
        if (output.Length < outputLength)
            ThrowHelper.TooShort(nameof(output), $"[{shape.Batch}, {shape.QueryHeads}, {shape.QueryCount}, {shape.ValueHeadSize}]", outputLength, output.Length);
        if (query.Type == ElementType.Int8)
            ThrowHelper.Argument(nameof(query), "query is int8: int8 with row scales is for keys and values; give the query as float, Half or BFloat16.");
        ValidateScales(key, nameof(key), shape);
        ValidateScales(value, nameof(value), shape);
        long lseLength = shape.LogSumExpLength;
        if (wantLogSumExp && logSumExp.Length < lseLength)
            ThrowHelper.TooShort(nameof(logSumExp), $"[{shape.Batch}, {shape.QueryHeads}, {shape.QueryCount}]", lseLength, logSumExp.Length);
        if (shape.OutputLayout.SelfOverlaps(shape.Batch, shape.QueryHeads, shape.QueryCount, shape.ValueHeadSize))
            ThrowHelper.Argument(nameof(output), $"The output layout {shape.OutputLayout} makes distinct elements of output [{shape.Batch}, {shape.QueryHeads}, {shape.QueryCount}, {shape.ValueHeadSize}] share memory.");

        ReadOnlySpan<byte> written = Used(output, outputLength);
        ReadOnlySpan<byte> q = Used(query, queryLength), k = Used(key, keyLength), v = Used(value, valueLength);
        if (written.Overlaps(q))
            ThrowHelper.Argument(nameof(output), "output overlaps query: the output must not share memory with any input.");
        if (written.Overlaps(k) || written.Overlaps(MemoryMarshal.AsBytes(key.Scales)))
            ThrowHelper.Argument(nameof(output), "output overlaps key: the output must not share memory with any input.");
        if (written.Overlaps(v) || written.Overlaps(MemoryMarshal.AsBytes(value.Scales)))
            ThrowHelper.Argument(nameof(output), "output overlaps value: the output must not share memory with any input.");
        if (wantLogSumExp)
        {
            ReadOnlySpan<byte> lse = MemoryMarshal.AsBytes(logSumExp[..(int)lseLength]);
            if (lse.Overlaps(q) || lse.Overlaps(k) || lse.Overlaps(v) || lse.Overlaps(MemoryMarshal.AsBytes(key.Scales)) || lse.Overlaps(MemoryMarshal.AsBytes(value.Scales)))
                ThrowHelper.Argument(nameof(logSumExp), "logSumExp overlaps an input: outputs must not share memory with any input.");
            if (lse.Overlaps(written))
                ThrowHelper.Argument(nameof(logSumExp), "logSumExp overlaps output.");
        }
    }

    /// <summary>An int8 tensor's scales cover <c>[batch, keyValueHeads, rows ≥ keyCount]</c>; other types have none.</summary>
    private static void ValidateScales(AttentionTensor tensor, string name, in AttentionShape shape)
    {
        if (tensor.Type != ElementType.Int8) return; // only AttentionTensor.Int8 carries scales
        int rows = ScaleRows(tensor, shape);
        if (rows < shape.KeyCount)
            ThrowHelper.ArgumentOutOfRange(name, $"{name}.ScaleRows = {rows} is less than the key count {shape.KeyCount}.");
        // Row j of head (b, h) reads scale (b·Hkv + h)·rows + j: the last head needs only its first keyCount rows.
        long heads = (long)shape.Batch * shape.KeyValueHeads;
        long needed = heads == 0 ? 0 : (heads - 1) * rows + shape.KeyCount;
        if (tensor.Scales.Length < needed)
            ThrowHelper.TooShort(name, $"{name}.Scales", $"[{shape.Batch}, {shape.KeyValueHeads}, {rows}]", needed, tensor.Scales.Length);
    }

    /// <summary>The bytes of the first <paramref name="length"/> elements (the validated part).</summary>
    private static ReadOnlySpan<byte> Used(AttentionTensor tensor, long length) =>
        tensor.Bytes[..(int)(length * Kernels.Operand.ElementSize(tensor.Type))];

    private static Span<byte> Used(AttentionOutput output, long length) =>
        output.Bytes[..(int)(length * Kernels.Operand.ElementSize(output.Type))];
}
