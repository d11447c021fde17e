namespace FastAttention.Compare;

/// <summary>
/// The problem every build computes: batch 1, BHSD, fp32 queries and output. KeyValue is fp32, f16 (Half keys and
/// values) or i8 (int8 with one scale per row); Window is the keys left of the diagonal a row sees (−1: no window).
/// </summary>
public sealed record Problem(int Heads, int KeyValueHeads, int Queries, int Keys, int HeadSize, bool Causal, int Window, float SoftCap, bool Bias,
    string KeyValue, int Threads);
