namespace FastAttention;

/// <summary>Which leading dimensions of a <c>[batch, heads, queryCount, keyCount]</c> bias or mask have size 1 and are shared.</summary>
[Flags]
public enum MaskBroadcast
{
    /// <summary>One slice per batch and query head: <c>[B, Hq, Lq, Lk]</c>.</summary>
    None = 0,

    /// <summary>Shared by every batch: <c>[1, Hq, Lq, Lk]</c>.</summary>
    Batch = 1,

    /// <summary>Shared by every query head: <c>[B, 1, Lq, Lk]</c>.</summary>
    Heads = 2,

    /// <summary>One <c>[Lq, Lk]</c> slice for everything: <c>[1, 1, Lq, Lk]</c>.</summary>
    All = Batch | Heads,
}

/// <summary>
/// Per-score and per-head tensors of one call, each optional (an empty span means none), all read in place: no
/// conversion copy is made. With <see cref="AttentionOptions"/> they define, for batch b, query head h, query row i
/// and key j (i' the aligned position, see <see cref="DiagonalAlignment"/>):
/// <code>
///   s  = scale·(q_i·k_j)
///   s  = c·tanh(s/c)                                   soft-cap, first
///   s += Bias[b, h, i, j] − AlibiSlopes[h]·|i' − j|   additive terms
///   s  = −∞ unless j &lt; KeyLengths[b], Mask[b, h, i, j], causal and window allow j
///   m  = max(max_j s, Sinks[h]),  l = Σ_j e^(s − m) + e^(Sinks[h] − m)
///   O  = Σ_j e^(s − m)/l · v_j,   logSumExp = m + ln l
/// </code>
/// A row with no visible key gets zeros and a log-sum-exp of −∞ (of the sink when one is given).
/// </summary>
public readonly ref struct AttentionMasks
{
    /// <summary>Additive bias <c>[B|1, Hq|1, Lq, Lk]</c>, dense, broadcast as <see cref="BiasBroadcast"/> says; −∞ entries mask.</summary>
    public ReadOnlySpan<float> Bias { get; init; }

    /// <summary>Which dimensions of <see cref="Bias"/> are shared.</summary>
    public MaskBroadcast BiasBroadcast { get; init; }

    /// <summary>Boolean mask <c>[B|1, Hq|1, Lq, Lk]</c>, dense: <see langword="true"/> lets the key take part (PyTorch's convention).</summary>
    public ReadOnlySpan<bool> Mask { get; init; }

    /// <summary>Which dimensions of <see cref="Mask"/> are shared.</summary>
    public MaskBroadcast MaskBroadcast { get; init; }

    /// <summary>Keys per batch <c>[B]</c>, each in 0..keyCount: batch b sees keys <c>j &lt; KeyLengths[b]</c> (padding).</summary>
    public ReadOnlySpan<int> KeyLengths { get; init; }

    /// <summary>ALiBi slope per query head <c>[Hq]</c>: adds <c>−slope·|i' − j|</c>. <see cref="Alibi.Slopes(int)"/> gives the standard ones.</summary>
    public ReadOnlySpan<float> AlibiSlopes { get; init; }

    /// <summary>Attention-sink logit per query head <c>[Hq]</c>: enters only the softmax denominator.</summary>
    public ReadOnlySpan<float> Sinks { get; init; }

    /// <summary>Whether any tensor is given.</summary>
    public bool IsEmpty => Bias.IsEmpty && Mask.IsEmpty && KeyLengths.IsEmpty && AlibiSlopes.IsEmpty && Sinks.IsEmpty;
}

/// <summary>ALiBi (Press et al., "Train Short, Test Long"): the standard per-head slopes.</summary>
public static class Alibi
{
    /// <summary>
    /// The geometric slopes for <paramref name="heads"/> heads: for a power of two n, head k (from 1) gets
    /// 2^(−8k/n); otherwise the slopes of the largest power of two below, then every other slope of twice that.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="heads"/> is less than 1.</exception>
    public static float[] Slopes(int heads)
    {
        var slopes = new float[Math.Max(heads, 0)];
        Slopes(heads, slopes);
        return slopes;
    }

    /// <summary>Writes the standard slopes of <paramref name="heads"/> heads into <paramref name="destination"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="heads"/> is less than 1.</exception>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <paramref name="heads"/>.</exception>
    public static void Slopes(int heads, Span<float> destination)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(heads, 1);
        if (destination.Length < heads)
            throw new ArgumentException($"'{nameof(destination)}' needs {heads} elements, one per head; it has {destination.Length}.", nameof(destination));
        int power = 1 << (31 - int.LeadingZeroCount(heads)); // largest power of two ≤ heads
        for (int k = 0; k < power; k++) destination[k] = (float)Math.Pow(2, -8.0 * (k + 1) / power);
        for (int k = 0; k < heads - power; k++) destination[power + k] = (float)Math.Pow(2, -8.0 * (2 * k + 1) / (2 * power));
    }
}
