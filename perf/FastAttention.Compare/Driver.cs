using System.Diagnostics.CodeAnalysis;

namespace FastAttention.Compare;

/// <summary>
/// The calls under comparison. Runs only inside a build's own load context (see <see cref="BuildContext"/>), so that
/// each copy of this class binds to that build's FastAttention; its signature carries only core library types, which
/// every context shares (not even <see cref="Problem"/>, whose type differs from one copy of this assembly to another).
/// </summary>
public static class Driver
{
    /// <summary>
    /// One call of the problem on the arrays given (the same arrays for every build), ready to time.
    /// <paramref name="sizes"/>: query heads, key-value heads, query rows, keys, head size, causal (0 or 1), window
    /// (−1: none), threads; a <paramref name="softCap"/> of 0 is none.
    /// </summary>
    [SuppressMessage("Performance", "CA1859", Justification = "Invoked by reflection across load contexts.")]
    public static Action Prepare(int[] sizes, float softCap, float[] query, float[] key, float[] value, float[] output,
        Half[]? halfKey, Half[]? halfValue, sbyte[]? int8Key, sbyte[]? int8Value, float[]? keyScales, float[]? valueScales, float[]? bias)
    {
        ArgumentNullException.ThrowIfNull(sizes);
        var shape = AttentionShape.Bhsd(batch: 1, queryHeads: sizes[0], keyValueHeads: sizes[1], queryCount: sizes[2], keyCount: sizes[3], headSize: sizes[4]);
        var options = new AttentionOptions
        {
            Causal = sizes[5] != 0 ? CausalMask.TopLeft : CausalMask.None,
            Window = sizes[6] >= 0 ? new SlidingWindow(sizes[6], 0) : null,
            MaxDegreeOfParallelism = sizes[7],
            SoftCap = softCap > 0 ? softCap : null,
        };
        if (halfKey is not null) return () => Attention.Compute(query, halfKey, halfValue!, output, shape, options);
        if (int8Key is not null)
            return () => Attention.Compute(query, AttentionTensor.Int8(int8Key, keyScales!), AttentionTensor.Int8(int8Value!, valueScales!), output, shape, options);
        if (bias is not null)
            return () => Attention.Compute(query, key, value, output, shape, options, new AttentionMasks { Bias = bias, BiasBroadcast = MaskBroadcast.Batch });
        return () => Attention.Compute(query, key, value, output, shape, options);
    }
}
