using Xunit;

namespace FastAttention.Tests;

/// <summary>The README's usage example is this code; the test fails when the two drift apart.</summary>
public class ReadmeTests
{
    private static void ReadmeExample()
    {
        // README-EXAMPLE-START
        // 2 sequences, 8 query heads sharing 2 key-value heads (GQA), 128 positions, head size 64, PyTorch's BHSD order.
        var shape = AttentionShape.Bhsd(batch: 2, queryHeads: 8, keyValueHeads: 2, queryCount: 128, keyCount: 128, headSize: 64);
        float[] query = new float[shape.QueryLength], key = new float[shape.KeyLength], value = new float[shape.ValueLength];
        float[] output = new float[shape.OutputLength];
        // ... fill query, key and value ...
        Attention.Compute(query, key, value, output, shape, new AttentionOptions { Causal = CausalMask.TopLeft });

        // Check it against the fp64 reference when you need to.
        double[] expected = new double[shape.OutputLength];
        ReferenceAttention.Compute(query, key, value, expected, shape, new AttentionOptions { Causal = CausalMask.TopLeft });
        // README-EXAMPLE-END
        Assert.Equal(expected.Length, output.Length);
        for (int i = 0; i < output.Length; i++) Assert.Equal(expected[i], output[i], 1e-6);
    }

    private static void MasksExample()
    {
        var shape = AttentionShape.Bhsd(batch: 2, queryHeads: 8, keyValueHeads: 2, queryCount: 16, keyCount: 128, headSize: 64);
        float[] query = new float[shape.QueryLength], key = new float[shape.KeyLength], value = new float[shape.ValueLength];
        float[] output = new float[shape.OutputLength];
        for (int i = 0; i < query.Length; i++) query[i] = MathF.Sin(0.3f * i);
        for (int i = 0; i < key.Length; i++) key[i] = MathF.Sin(i);
        for (int i = 0; i < value.Length; i++) value[i] = MathF.Cos(i);
        // MASKS-EXAMPLE-START
        float[] sinks = new float[8]; // one learned logit per query head
        var masks = new AttentionMasks { KeyLengths = [128, 75], AlibiSlopes = Alibi.Slopes(8), Sinks = sinks };
        var options = new AttentionOptions { Causal = CausalMask.BottomRight, Window = new SlidingWindow(63, 0), SoftCap = 50f };
        Attention.Compute(query, key, value, output, shape, options, masks);
        // MASKS-EXAMPLE-END
        var expected = new double[output.Length];
        ReferenceAttention.Compute(query, key, value, expected, shape, options, masks);
        for (int i = 0; i < output.Length; i++) Assert.Equal(expected[i], output[i], 1e-5);
    }

    [Fact]
    public void ReadmeExample_Runs() => ReadmeExample();

    [Fact]
    public void MasksExample_MatchesTheReference() => MasksExample();

    [Theory]
    [InlineData("README-EXAMPLE")]
    [InlineData("MASKS-EXAMPLE")]
    public void Readme_ContainsTheExampleVerbatim(string marker)
    {
        string root = FindRoot();
        string source = File.ReadAllText(Path.Combine(root, "tests", "FastAttention.Tests", "ReadmeTests.cs"));
        int start = source.IndexOf($"// {marker}-START", StringComparison.Ordinal);
        int end = source.IndexOf($"        // {marker}-END", StringComparison.Ordinal);
        start = source.IndexOf('\n', start) + 1;
        string example = string.Join('\n', source[start..end].Split('\n').Select(l => l.Length >= 8 ? l[8..] : l.TrimStart())).TrimEnd();
        string readme = File.ReadAllText(Path.Combine(root, "README.md")).Replace("\r\n", "\n");
        Assert.Contains(example, readme);
    }

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "FastAttention.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("FastAttention.sln not found above " + AppContext.BaseDirectory);
    }
}
