using System.Globalization;
using System.Text.Json;

namespace FastAttention.Cli;

/// <summary>One token with its query, key and value vectors.</summary>
internal sealed record TokenVectors(string Token, float[] Query, float[] Key, float[] Value);

/// <summary>What `explain` computes for one word and one head: every number comes from FastAttention, checked against the reference.</summary>
internal sealed record Explanation(
    string Word, int Head, int HeadSize, string[] Tokens, double[] DotProducts,
    float[] WeightsUnscaled, float[] WeightsScaled, float[] ContextUnscaled, float[] ContextScaled, double LargestDeviationFromReference);

internal static class Walkthrough
{
    /// <summary>The document's example. It gives queries and keys for 8 tokens and values for 11; we attend over the
    /// 8 tokens that have all three, taking each one's value by name ("the", "because" and "too" have values only).</summary>
    public static IReadOnlyList<TokenVectors> DocumentTokens { get; } =
    [
        new("The", [0.1f, 0.2f, 0.3f], [0.2f, 0.1f, 0.0f], [0.1f, 0.2f, 0.3f]),
        new("animal", [0.5f, 0.4f, 0.3f], [0.6f, 0.5f, 0.4f], [0.7f, 0.6f, 0.5f]),
        new("didn't", [0.2f, 0.1f, 0.1f], [0.1f, 0.2f, 0.1f], [0.1f, 0.1f, 0.2f]),
        new("cross", [0.0f, 0.1f, 0.2f], [0.2f, 0.1f, 0.3f], [0.0f, 0.1f, 0.1f]),
        new("street", [0.4f, 0.3f, 0.2f], [0.5f, 0.4f, 0.3f], [0.5f, 0.4f, 0.3f]),
        new("it", [0.6f, 0.5f, 0.4f], [0.7f, 0.6f, 0.5f], [0.6f, 0.5f, 0.4f]),
        new("was", [0.1f, 0.1f, 0.0f], [0.1f, 0.0f, 0.2f], [0.1f, 0.1f, 0.0f]),
        new("tired", [0.7f, 0.6f, 0.5f], [0.9f, 0.8f, 0.7f], [0.8f, 0.7f, 0.6f]),
    ];

    public static readonly string[] ValueOnlyTokens = ["the", "because", "too"];
    public static readonly float[] DocumentContextOfIt = [0.598f, 0.518f, 0.432f];

    /// <summary>Explains <paramref name="word"/> for every head: the tokens' vectors are split into <paramref name="heads"/> heads.</summary>
    public static List<Explanation> Explain(IReadOnlyList<TokenVectors> tokens, string word, int heads)
    {
        int index = -1;
        for (int i = 0; i < tokens.Count; i++)
            if (string.Equals(tokens[i].Token, word, StringComparison.Ordinal)) { index = i; break; }
        if (index < 0)
            throw new CliException($"'{word}' is not one of the tokens: {string.Join(", ", tokens.Select(t => t.Token))}.");
        int n = tokens.Count, d = tokens[0].Query.Length, dv = tokens[0].Value.Length;
        if (heads < 1 || d % heads != 0 || dv % heads != 0)
            throw new CliException($"--heads {heads} must divide the vector sizes (query/key {d}, value {dv}).");
        int hd = d / heads, hdv = dv / heads;

        // [tokens, heads·headSize] is the BSHD layout: FastAttention reads the heads through strides, no copies.
        float[] q = tokens.SelectMany(t => t.Query).ToArray(), k = tokens.SelectMany(t => t.Key).ToArray(), v = tokens.SelectMany(t => t.Value).ToArray();
        var shape = AttentionShape.Bshd(1, heads, heads, n, n, hd, hdv);
        // Weights come out of FastAttention itself: with one-hot value rows the output row is the weight row.
        var identity = new float[n * heads * n];
        for (int j = 0; j < n; j++) for (int h = 0; h < heads; h++) identity[(j * heads + h) * n + j] = 1f;
        var weightShape = AttentionShape.Bshd(1, heads, heads, n, n, hd, n);

        var results = new List<Explanation>();
        var unscaled = new AttentionOptions { Scale = 1f };
        var scaled = new AttentionOptions();
        float[] wU = Run(q, k, identity, weightShape, unscaled), wS = Run(q, k, identity, weightShape, scaled);
        float[] cU = Run(q, k, v, shape, unscaled), cS = Run(q, k, v, shape, scaled);

        double deviation = 0;
        foreach (var (opts, w, c) in new[] { (unscaled, wU, cU), (scaled, wS, cS) })
        {
            var refWeights = new double[heads * n * n];
            var refOut = new double[heads * n * hdv];
            ReferenceAttention.Compute(q, k, v, refOut, shape, opts, weights: refWeights);
            for (int h = 0; h < heads; h++)
            for (int i = 0; i < n; i++)
            {
                for (int j = 0; j < n; j++) deviation = Math.Max(deviation, Math.Abs(w[(i * heads + h) * n + j] - refWeights[(h * n + i) * n + j]));
                for (int c2 = 0; c2 < hdv; c2++) deviation = Math.Max(deviation, Math.Abs(c[(i * heads + h) * hdv + c2] - refOut[(h * n + i) * hdv + c2]));
            }
        }

        for (int h = 0; h < heads; h++)
        {
            var dots = new double[n];
            for (int j = 0; j < n; j++)
                for (int t = 0; t < hd; t++) dots[j] += (double)q[index * d + h * hd + t] * k[j * d + h * hd + t];
            results.Add(new Explanation(word, h, hd, tokens.Select(t => t.Token).ToArray(), dots,
                wU.AsSpan((index * heads + h) * n, n).ToArray(), wS.AsSpan((index * heads + h) * n, n).ToArray(),
                cU.AsSpan((index * heads + h) * hdv, hdv).ToArray(), cS.AsSpan((index * heads + h) * hdv, hdv).ToArray(), deviation));
        }
        return results;
    }

    private static float[] Run(float[] q, float[] k, float[] v, AttentionShape shape, AttentionOptions options)
    {
        var output = new float[shape.OutputLength];
        Attention.Compute(q, k, v, output, shape, options);
        return output;
    }

    /// <summary>
    /// Reads tokens from CSV (<c>token,query,key,value</c> per line, each vector as space-separated numbers; a header
    /// line starting with "token" is skipped) or JSON (<c>[{"token": "...", "query": [..], "key": [..], "value": [..]}]</c>).
    /// </summary>
    public static List<TokenVectors> Load(string path)
    {
        if (!File.Exists(path)) throw new CliException($"file not found: {path}");
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"cannot read {path}: {e.Message}");
        }
        List<TokenVectors> tokens = path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? LoadJson(text, path) : LoadCsv(text, path);
        if (tokens.Count == 0) throw new CliException($"{path}: no tokens.");
        int d = tokens[0].Query.Length, dv = tokens[0].Value.Length;
        foreach (var t in tokens)
        {
            if (t.Query.Length != d || t.Key.Length != d || t.Value.Length != dv || d == 0 || dv == 0)
                throw new CliException($"{path}: token '{t.Token}' has vector sizes query {t.Query.Length}, key {t.Key.Length}, value {t.Value.Length}; every token needs query and key of size {d} and value of size {dv}.");
        }
        return tokens;
    }

    private static List<TokenVectors> LoadCsv(string text, string path)
    {
        var tokens = new List<TokenVectors>();
        int lineNumber = 0;
        foreach (string raw in text.Split('\n'))
        {
            lineNumber++;
            string line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#') || line.StartsWith("token,", StringComparison.OrdinalIgnoreCase)) continue;
            string[] parts = line.Split(',');
            if (parts.Length != 4) throw new CliException($"{path}:{lineNumber}: expected 'token,query,key,value' (4 fields), got {parts.Length}.");
            tokens.Add(new TokenVectors(parts[0].Trim(), Vector(parts[1], path, lineNumber), Vector(parts[2], path, lineNumber), Vector(parts[3], path, lineNumber)));
        }
        return tokens;
    }

    private static float[] Vector(string field, string path, int line)
    {
        var values = new List<float>();
        foreach (string s in field.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!float.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out float x) || !float.IsFinite(x))
                throw new CliException($"{path}:{line}: '{s}' is not a finite number.");
            values.Add(x);
        }
        return values.ToArray();
    }

    private sealed record JsonToken(string? Token, float[]? Query, float[]? Key, float[]? Value);

    private static List<TokenVectors> LoadJson(string text, string path)
    {
        try
        {
            var items = JsonSerializer.Deserialize<List<JsonToken>>(text, new JsonSerializerOptions { PropertyNameCaseInsensitive = true })
                ?? throw new CliException($"{path}: empty JSON.");
            return items.Select((t, i) => new TokenVectors(
                t.Token ?? throw new CliException($"{path}: item {i} has no \"token\"."),
                t.Query ?? throw new CliException($"{path}: item {i} has no \"query\"."),
                t.Key ?? throw new CliException($"{path}: item {i} has no \"key\"."),
                t.Value ?? throw new CliException($"{path}: item {i} has no \"value\"."))).ToList();
        }
        catch (JsonException e)
        {
            throw new CliException($"{path}: malformed JSON ({e.Message}).");
        }
    }
}

/// <summary>A user error: printed as one line, exit code 2.</summary>
internal sealed class CliException(string message) : Exception(message);
