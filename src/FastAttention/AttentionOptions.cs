namespace FastAttention;

/// <summary>How the causal mask aligns query rows with key positions.</summary>
public enum CausalMask
{
    /// <summary>No causal mask: every query row sees every key.</summary>
    None = 0,

    /// <summary>Query row <c>i</c> sees keys <c>j ≤ i</c> (aligned at the top-left corner).</summary>
    TopLeft = 1,

    /// <summary>
    /// Query row <c>i</c> sees keys <c>j ≤ i + keyCount − queryCount</c> (aligned at the bottom-right corner):
    /// the key-value-cache convention, where the queries are the last <c>queryCount</c> positions.
    /// </summary>
    BottomRight = 2,
}

/// <summary>
/// How query rows line up with key positions for the causal mask, the sliding window and ALiBi: the aligned
/// position of query row <c>i</c> is <c>i' = i</c> (top-left) or <c>i' = i + keyLength − queryCount</c>
/// (bottom-right, the key-value-cache convention; keyLength is the batch's key length when key lengths are given).
/// </summary>
public enum DiagonalAlignment
{
    /// <summary><c>i' = i</c>.</summary>
    TopLeft = 0,

    /// <summary><c>i' = i + keyLength − queryCount</c>.</summary>
    BottomRight = 1,
}

/// <summary>
/// A sliding window around the aligned diagonal: query row <c>i</c> sees keys <c>i' − Left ≤ j ≤ i' + Right</c>.
/// With a causal mask, <c>Right</c> beyond 0 changes nothing; <c>(Left: 255, Right: 0)</c> is the usual
/// 256-key causal window (the row's own key and the 255 before it).
/// </summary>
/// <param name="Left">Keys visible before the aligned position; at least 0.</param>
/// <param name="Right">Keys visible after the aligned position; at least 0.</param>
public readonly record struct SlidingWindow(int Left, int Right);

/// <summary>
/// Settings of one attention call. <c>default</c> is the plain non-causal attention with scale 1/√headSize,
/// using every core. The struct holds no buffers, so one instance can be reused by any number of calls; per-score
/// tensors (bias, boolean mask, key lengths, ALiBi slopes, sinks) travel in <see cref="AttentionMasks"/>.
/// </summary>
public readonly record struct AttentionOptions
{
    /// <summary>Multiplier of the dot products; <see langword="null"/> means 1/√headSize. Must be finite.</summary>
    public float? Scale { get; init; }

    /// <summary>The causal mask and its alignment.</summary>
    public CausalMask Causal { get; init; }

    /// <summary>
    /// The alignment of the sliding window and of ALiBi when <see cref="Causal"/> is <see cref="CausalMask.None"/>;
    /// <see langword="null"/> means the causal mask's alignment, or top-left without one. When both are given they must agree.
    /// </summary>
    public DiagonalAlignment? Alignment { get; init; }

    /// <summary>A sliding window around the aligned diagonal; <see langword="null"/> for none. Keys outside it are skipped, tiles wholly outside never touched.</summary>
    public SlidingWindow? Window { get; init; }

    /// <summary>
    /// Logit soft-cap c: every score s becomes c·tanh(s / c) before any bias or mask (Gemma 2, Grok).
    /// <see langword="null"/> for none; otherwise finite and greater than 0.
    /// </summary>
    public float? SoftCap { get; init; }

    /// <summary>
    /// Most threads one call may use, the calling thread included; <see langword="null"/> means
    /// <see cref="Environment.ProcessorCount"/>. Results are bitwise identical for every value.
    /// </summary>
    public int? MaxDegreeOfParallelism { get; init; }
}
