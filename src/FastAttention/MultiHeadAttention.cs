using System.Buffers;
using FastAttention.Internal;

namespace FastAttention;

/// <summary>
/// A multi-head attention layer: learned Q, K, V and output projections around <see cref="Attention"/>, with
/// grouped key-value heads (GQA/MQA). Self-attention projects Q, K and V with one fused GEMM into a packed
/// <c>[tokens, E + 2·Hkv·Dh]</c> buffer that the attention kernel reads through strides (no transposing copies); the
/// attention output <c>[tokens, E]</c> goes through the output projection. Weights are packed once, at construction.
/// Scratch is rented from <see cref="ArrayPool{T}.Shared"/> per call: steady state allocates nothing. A layer is
/// immutable and may be shared between threads (a <see cref="KeyValueCache"/> may not).
/// </summary>
public sealed class MultiHeadAttention
{
    private readonly PackedWeights _qkv, _q, _kv, _out;

    /// <summary>Builds the layer from its weights, each <c>[outputs, inputs]</c> row-major as <c>nn.Linear</c> stores them.</summary>
    /// <param name="embedDim">E: model width, input and output features.</param>
    /// <param name="heads">Query heads H; E must be a multiple of H (head size Dh = E / H).</param>
    /// <param name="keyValueHeads">Key-value heads Hkv; H must be a multiple of it.</param>
    /// <param name="queryWeight">[E, E].</param>
    /// <param name="queryBias">[E] or empty.</param>
    /// <param name="keyWeight">[Hkv·Dh, E].</param>
    /// <param name="keyBias">[Hkv·Dh] or empty.</param>
    /// <param name="valueWeight">[Hkv·Dh, E].</param>
    /// <param name="valueBias">[Hkv·Dh] or empty.</param>
    /// <param name="outputWeight">[E, E].</param>
    /// <param name="outputBias">[E] or empty.</param>
    /// <exception cref="ArgumentException">A weight or bias is too short.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The sizes do not divide.</exception>
    public MultiHeadAttention(int embedDim, int heads, int keyValueHeads,
        ReadOnlySpan<float> queryWeight, ReadOnlySpan<float> queryBias, ReadOnlySpan<float> keyWeight, ReadOnlySpan<float> keyBias,
        ReadOnlySpan<float> valueWeight, ReadOnlySpan<float> valueBias, ReadOnlySpan<float> outputWeight, ReadOnlySpan<float> outputBias)
    {
        if (heads < 1 || embedDim < 1 || embedDim % heads != 0)
            ThrowHelper.ArgumentOutOfRange(nameof(heads), $"embedDim {embedDim} must be a positive multiple of heads {heads}.");
        if (keyValueHeads < 1 || heads % keyValueHeads != 0)
            ThrowHelper.ArgumentOutOfRange(nameof(keyValueHeads), $"heads {heads} must be a multiple of keyValueHeads {keyValueHeads}.");
        EmbedDim = embedDim;
        Heads = heads;
        KeyValueHeads = keyValueHeads;
        HeadSize = embedDim / heads;
        int e = embedDim, kv = keyValueHeads * HeadSize;
        Check(queryWeight, queryBias, e, e, nameof(queryWeight), nameof(queryBias));
        Check(keyWeight, keyBias, kv, e, nameof(keyWeight), nameof(keyBias));
        Check(valueWeight, valueBias, kv, e, nameof(valueWeight), nameof(valueBias));
        Check(outputWeight, outputBias, e, e, nameof(outputWeight), nameof(outputBias));

        // The fused projection's weight is [Wq; Wk; Wv] and its bias [bq; bk; bv] (zeros where a bias is absent).
        int columns = e + 2 * kv;
        var fused = new float[(long)columns * e];
        queryWeight[..(e * e)].CopyTo(fused);
        keyWeight[..(kv * e)].CopyTo(fused.AsSpan(e * e));
        valueWeight[..(kv * e)].CopyTo(fused.AsSpan((e + kv) * e));
        var bias = new float[columns];
        if (!queryBias.IsEmpty) queryBias[..e].CopyTo(bias);
        if (!keyBias.IsEmpty) keyBias[..kv].CopyTo(bias.AsSpan(e));
        if (!valueBias.IsEmpty) valueBias[..kv].CopyTo(bias.AsSpan(e + kv));
        _qkv = PackedWeights.Pack(fused, bias, columns, e);
        _q = PackedWeights.Pack(fused.AsSpan(0, e * e), bias.AsSpan(0, e), e, e);
        _kv = PackedWeights.Pack(fused.AsSpan(e * e), bias.AsSpan(e), 2 * kv, e);
        _out = PackedWeights.Pack(outputWeight, outputBias, e, e);
    }

    /// <summary>
    /// Builds the layer from PyTorch's <c>nn.MultiheadAttention</c> parameters (H = Hkv): <c>in_proj_weight</c>
    /// <c>[3E, E]</c> (Wq, Wk, Wv stacked), <c>in_proj_bias</c> <c>[3E]</c>, <c>out_proj.weight</c> <c>[E, E]</c>,
    /// <c>out_proj.bias</c> <c>[E]</c>; empty biases mean none.
    /// </summary>
    /// <param name="embedDim">E.</param>
    /// <param name="heads">H.</param>
    /// <param name="inProjWeight">[3E, E].</param>
    /// <param name="inProjBias">[3E] or empty.</param>
    /// <param name="outProjWeight">[E, E].</param>
    /// <param name="outProjBias">[E] or empty.</param>
    /// <exception cref="ArgumentException">A span is too short.</exception>
    public static MultiHeadAttention FromPyTorch(int embedDim, int heads, ReadOnlySpan<float> inProjWeight, ReadOnlySpan<float> inProjBias,
        ReadOnlySpan<float> outProjWeight, ReadOnlySpan<float> outProjBias)
    {
        long e2 = (long)embedDim * embedDim;
        if (embedDim < 1) ThrowHelper.ArgumentOutOfRange(nameof(embedDim), $"embedDim must be at least 1; got {embedDim}.");
        if (inProjWeight.Length < 3 * e2) ThrowHelper.TooShort(nameof(inProjWeight), $"[{3 * embedDim}, {embedDim}]", 3 * e2, inProjWeight.Length);
        if (!inProjBias.IsEmpty && inProjBias.Length < 3 * embedDim) ThrowHelper.TooShort(nameof(inProjBias), $"[{3 * embedDim}]", 3 * embedDim, inProjBias.Length);
        int e = embedDim;
        ReadOnlySpan<float> Bias(ReadOnlySpan<float> all, int part) => all.IsEmpty ? default : all.Slice(part * e, e);
        return new MultiHeadAttention(e, heads, heads,
            inProjWeight[..(int)e2], Bias(inProjBias, 0), inProjWeight.Slice((int)e2, (int)e2), Bias(inProjBias, 1),
            inProjWeight.Slice((int)(2 * e2), (int)e2), Bias(inProjBias, 2), outProjWeight, outProjBias);
    }

    /// <summary>E: features of the input and output.</summary>
    public int EmbedDim { get; }

    /// <summary>H: query heads.</summary>
    public int Heads { get; }

    /// <summary>Hkv: key-value heads.</summary>
    public int KeyValueHeads { get; }

    /// <summary>Dh = E / H.</summary>
    public int HeadSize { get; }

    private int KeyValueWidth => KeyValueHeads * HeadSize;

    /// <summary>Self-attention: <paramref name="output"/> <c>[batch, length, E]</c> from <paramref name="input"/> <c>[batch, length, E]</c>.</summary>
    /// <param name="input">X, <c>[batch, length, E]</c>.</param>
    /// <param name="output">Y, <c>[batch, length, E]</c>; must not overlap the input.</param>
    /// <param name="batch">Sequences.</param>
    /// <param name="length">Tokens per sequence.</param>
    /// <param name="options">Attention options (causal, window, soft-cap, scale, parallelism also for the projections).</param>
    /// <param name="masks">Attention masks over <c>[batch, H, length, length]</c> scores.</param>
    /// <exception cref="ArgumentException">A span is too short, or the output overlaps the input.</exception>
    public void Forward(ReadOnlySpan<float> input, Span<float> output, int batch, int length, in AttentionOptions options = default, scoped in AttentionMasks masks = default)
    {
        CheckTokens(input, nameof(input), batch, length);
        CheckTokens(output, nameof(output), batch, length);
        if (output[..(batch * length * EmbedDim)].Overlaps(input[..(batch * length * EmbedDim)]))
            ThrowHelper.Argument(nameof(output), "output overlaps input.");
        if (batch == 0 || length == 0) return;
        int tokens = batch * length, columns = EmbedDim + 2 * KeyValueWidth;
        float[] qkv = ArrayPool<float>.Shared.Rent(tokens * columns);
        float[] attention = ArrayPool<float>.Shared.Rent(tokens * EmbedDim);
        try
        {
            Gemm.Multiply(input, _qkv, qkv, tokens, options.MaxDegreeOfParallelism);
            long sequence = (long)length * columns;
            var shape = new AttentionShape(batch, Heads, KeyValueHeads, length, length, HeadSize, HeadSize,
                new TensorLayout(sequence, HeadSize, columns),
                new TensorLayout(sequence, HeadSize, columns, EmbedDim),
                new TensorLayout(sequence, HeadSize, columns, EmbedDim + KeyValueWidth),
                new TensorLayout((long)length * EmbedDim, HeadSize, EmbedDim));
            Attention.Compute(qkv, qkv, qkv, attention, shape, options, masks);
            Gemm.Multiply(attention, _out, output, tokens, options.MaxDegreeOfParallelism);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(qkv);
            ArrayPool<float>.Shared.Return(attention);
        }
    }

    /// <summary>
    /// Cross-attention: queries from <paramref name="query"/> <c>[batch, queryLength, E]</c>, keys and values from
    /// <paramref name="keyValue"/> <c>[batch, keyValueLength, E]</c>, into <paramref name="output"/> <c>[batch, queryLength, E]</c>.
    /// </summary>
    /// <param name="query">Query-side input.</param>
    /// <param name="keyValue">Key- and value-side input (say, an encoder's output).</param>
    /// <param name="output">Y; must not overlap either input.</param>
    /// <param name="batch">Sequences.</param>
    /// <param name="queryLength">Tokens per query sequence.</param>
    /// <param name="keyValueLength">Tokens per key-value sequence.</param>
    /// <param name="options">Attention options.</param>
    /// <param name="masks">Attention masks over <c>[batch, H, queryLength, keyValueLength]</c> scores.</param>
    /// <exception cref="ArgumentException">A span is too short, or the output overlaps an input.</exception>
    public void Forward(ReadOnlySpan<float> query, ReadOnlySpan<float> keyValue, Span<float> output, int batch, int queryLength, int keyValueLength,
        in AttentionOptions options = default, scoped in AttentionMasks masks = default)
    {
        CheckTokens(query, nameof(query), batch, queryLength);
        CheckTokens(keyValue, nameof(keyValue), batch, keyValueLength);
        CheckTokens(output, nameof(output), batch, queryLength);
        Span<float> written = output[..(batch * queryLength * EmbedDim)];
        if (written.Overlaps(query[..(batch * queryLength * EmbedDim)]) || written.Overlaps(keyValue[..(batch * keyValueLength * EmbedDim)]))
            ThrowHelper.Argument(nameof(output), "output overlaps an input.");
        if (batch == 0 || queryLength == 0) return;
        int queries = batch * queryLength, keys = batch * keyValueLength, kvColumns = 2 * KeyValueWidth;
        float[] q = ArrayPool<float>.Shared.Rent(queries * EmbedDim);
        float[] kv = ArrayPool<float>.Shared.Rent(Math.Max(1, keys * kvColumns));
        float[] attention = ArrayPool<float>.Shared.Rent(queries * EmbedDim);
        try
        {
            Gemm.Multiply(query, _q, q, queries, options.MaxDegreeOfParallelism);
            Gemm.Multiply(keyValue, _kv, kv, keys, options.MaxDegreeOfParallelism);
            var ql = new TensorLayout((long)queryLength * EmbedDim, HeadSize, EmbedDim);
            var kl = new TensorLayout((long)keyValueLength * kvColumns, HeadSize, kvColumns);
            var vl = new TensorLayout((long)keyValueLength * kvColumns, HeadSize, kvColumns, KeyValueWidth);
            var ol = new TensorLayout((long)queryLength * EmbedDim, HeadSize, EmbedDim);
            var shape = new AttentionShape(batch, Heads, KeyValueHeads, queryLength, keyValueLength, HeadSize, HeadSize, ql, kl, vl, ol);
            Attention.Compute(q, kv, kv, attention, shape, options, masks);
            Gemm.Multiply(attention, _out, output, queries, options.MaxDegreeOfParallelism);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(q);
            ArrayPool<float>.Shared.Return(kv);
            ArrayPool<float>.Shared.Return(attention);
        }
    }

    /// <summary>
    /// One incremental step: projects <paramref name="steps"/> new tokens per sequence, appends their keys and values
    /// to <paramref name="cache"/>, and attends the new queries over every cached position with bottom-right causal
    /// alignment (the decode kernel for a few new tokens). A prefill is a first step with all prompt tokens.
    /// </summary>
    /// <param name="input">X, <c>[batch, steps, E]</c>.</param>
    /// <param name="cache">The sequences' cache, <c>[batch, Hkv, ·, Dh]</c>.</param>
    /// <param name="output">Y, <c>[batch, steps, E]</c>.</param>
    /// <param name="steps">New tokens per sequence.</param>
    /// <param name="options">Attention options; <see cref="AttentionOptions.Causal"/> must be None or BottomRight (it is bottom-right either way).</param>
    /// <exception cref="ArgumentException">A span is too short, the cache does not match the layer, or options.Causal is TopLeft.</exception>
    /// <exception cref="InvalidOperationException">The cache is full (and was made without sliding-window eviction); nothing is written then.</exception>
    public void ForwardStep(ReadOnlySpan<float> input, KeyValueCache cache, Span<float> output, int steps, in AttentionOptions options = default)
    {
        ArgumentNullException.ThrowIfNull(cache);
        if (cache.KeyValueHeads != KeyValueHeads || cache.HeadSize != HeadSize)
            ThrowHelper.Argument(nameof(cache), $"The cache holds [{cache.Batch}, {cache.KeyValueHeads}, ·, {cache.HeadSize}]; this layer needs [·, {KeyValueHeads}, ·, {HeadSize}].");
        if (options.Causal == CausalMask.TopLeft)
            ThrowHelper.Argument(nameof(options), "ForwardStep aligns new queries with the end of the cache: options.Causal must be None or BottomRight.");
        int batch = cache.Batch;
        CheckTokens(input, nameof(input), batch, steps);
        CheckTokens(output, nameof(output), batch, steps);
        if (output[..(batch * steps * EmbedDim)].Overlaps(input[..(batch * steps * EmbedDim)]))
            ThrowHelper.Argument(nameof(output), "output overlaps input.");
        if (steps == 0) return;
        cache.EnsureRoom(steps);
        int tokens = batch * steps, columns = EmbedDim + 2 * KeyValueWidth;
        float[] qkv = ArrayPool<float>.Shared.Rent(tokens * columns);
        float[] attention = ArrayPool<float>.Shared.Rent(tokens * EmbedDim);
        try
        {
            Gemm.Multiply(input, _qkv, qkv, tokens, options.MaxDegreeOfParallelism);
            cache.Append(qkv, steps, columns, EmbedDim, EmbedDim + KeyValueWidth);
            var ql = new TensorLayout((long)steps * columns, HeadSize, columns);
            var ol = new TensorLayout((long)steps * EmbedDim, HeadSize, EmbedDim);
            var shape = new AttentionShape(batch, Heads, KeyValueHeads, steps, cache.Length, HeadSize, HeadSize, ql, cache.Layout, cache.Layout, ol);
            Attention.Compute(qkv, cache.Keys, cache.Values, attention, shape, options with { Causal = CausalMask.BottomRight, Alignment = null });
            Gemm.Multiply(attention, _out, output, tokens, options.MaxDegreeOfParallelism);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(qkv);
            ArrayPool<float>.Shared.Return(attention);
        }
    }

    private void CheckTokens(ReadOnlySpan<float> tokens, string name, int batch, int length)
    {
        if (batch < 0) ThrowHelper.ArgumentOutOfRange(nameof(batch), $"batch must be at least 0; got {batch}.");
        if (length < 0) ThrowHelper.ArgumentOutOfRange(nameof(length), $"the token count must be at least 0; got {length}.");
        long needed = (long)batch * length * EmbedDim;
        if (tokens.Length < needed) ThrowHelper.TooShort(name, $"[{batch}, {length}, {EmbedDim}]", needed, tokens.Length);
    }

    private static void Check(ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, int outputs, int inputs, string weightName, string biasName)
    {
        if (weight.Length < (long)outputs * inputs) ThrowHelper.TooShort(weightName, $"[{outputs}, {inputs}]", (long)outputs * inputs, weight.Length);
        if (!bias.IsEmpty && bias.Length < outputs) ThrowHelper.TooShort(biasName, $"[{outputs}]", outputs, bias.Length);
    }
}
