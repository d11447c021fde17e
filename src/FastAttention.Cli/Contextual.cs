namespace FastAttention.Cli;

/// <summary>
/// "Apple launched a new phone while I was eating an apple.": a static embedding gives both "apple"s one vector;
/// multi-head self-attention over the sentence gives each occurrence its own.
/// </summary>
internal static class Contextual
{
    public const string Sentence = "Apple launched a new phone while I was eating an apple.";
    public const int ModelSize = 16, Heads = 4;

    public sealed record Result(string[] Tokens, int First, int Second, double CosineBefore, double CosineNoPositions, double CosineWithPositions, double CosineCausal);

    public static Result Run(int seed)
    {
        string[] tokens = Sentence.TrimEnd('.').Split(' ');
        int n = tokens.Length;
        int first = Array.FindIndex(tokens, t => t.Equals("apple", StringComparison.OrdinalIgnoreCase));
        int second = Array.FindLastIndex(tokens, t => t.Equals("apple", StringComparison.OrdinalIgnoreCase));

        // Static embeddings: one vector per lower-cased word, so both "apple"s are identical.
        var embedding = new float[n * ModelSize];
        for (int i = 0; i < n; i++)
        {
            var random = new Random(seed ^ StableHash(tokens[i].ToLowerInvariant()));
            for (int c = 0; c < ModelSize; c++) embedding[i * ModelSize + c] = random.NextSingle() * 2 - 1;
        }
        var positioned = (float[])embedding.Clone();
        for (int i = 0; i < n; i++)
            for (int c = 0; c < ModelSize; c++)
                positioned[i * ModelSize + c] += c % 2 == 0 ? MathF.Sin(i / MathF.Pow(10000, c / (float)ModelSize)) : MathF.Cos(i / MathF.Pow(10000, (c - 1) / (float)ModelSize));

        var weights = new Random(seed);
        float[] wq = Matrix(weights), wk = Matrix(weights), wv = Matrix(weights);
        double Cos(float[] x) => Cosine(x.AsSpan(first * ModelSize, ModelSize), x.AsSpan(second * ModelSize, ModelSize));

        return new Result(tokens, first, second, Cos(embedding),
            Cos(SelfAttention(embedding, n, wq, wk, wv, CausalMask.None)),
            Cos(SelfAttention(positioned, n, wq, wk, wv, CausalMask.None)),
            Cos(SelfAttention(embedding, n, wq, wk, wv, CausalMask.TopLeft)));
    }

    /// <summary>Q, K, V = X·W (learned maps, seeded here), then multi-head attention over the [tokens, heads·headSize] BSHD layout.</summary>
    private static float[] SelfAttention(float[] x, int n, float[] wq, float[] wk, float[] wv, CausalMask causal)
    {
        float[] q = Project(x, n, wq), k = Project(x, n, wk), v = Project(x, n, wv);
        var shape = AttentionShape.Bshd(1, Heads, Heads, n, n, ModelSize / Heads);
        var output = new float[shape.OutputLength];
        Attention.Compute(q, k, v, output, shape, new AttentionOptions { Causal = causal });
        return output;
    }

    private static float[] Matrix(Random random)
    {
        var m = new float[ModelSize * ModelSize];
        float s = 1f / MathF.Sqrt(ModelSize);
        for (int i = 0; i < m.Length; i++) m[i] = (random.NextSingle() * 2 - 1) * s * 1.7f;
        return m;
    }

    private static float[] Project(float[] x, int n, float[] w)
    {
        var y = new float[n * ModelSize];
        for (int i = 0; i < n; i++)
            for (int o = 0; o < ModelSize; o++)
            {
                float sum = 0;
                for (int c = 0; c < ModelSize; c++) sum += x[i * ModelSize + c] * w[c * ModelSize + o];
                y[i * ModelSize + o] = sum;
            }
        return y;
    }

    public static double Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++) { dot += (double)a[i] * b[i]; na += (double)a[i] * a[i]; nb += (double)b[i] * b[i]; }
        return dot / Math.Sqrt(na * nb);
    }

    private static int StableHash(string s)
    {
        uint h = 2166136261;
        foreach (char ch in s) h = (h ^ ch) * 16777619;
        return (int)h;
    }
}
