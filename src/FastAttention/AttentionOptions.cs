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
/// Settings of one attention call. <c>default</c> is the plain non-causal attention with scale 1/√headSize,
/// using every core. The struct holds no buffers, so one instance can be reused by any number of calls.
/// </summary>
public readonly record struct AttentionOptions
{
    /// <summary>Multiplier of the dot products; <see langword="null"/> means 1/√headSize. Must be finite.</summary>
    public float? Scale { get; init; }

    /// <summary>The causal mask and its alignment.</summary>
    public CausalMask Causal { get; init; }

    /// <summary>
    /// Most threads one call may use, the calling thread included; <see langword="null"/> means
    /// <see cref="Environment.ProcessorCount"/>. Results are bitwise identical for every value.
    /// </summary>
    public int? MaxDegreeOfParallelism { get; init; }
}
