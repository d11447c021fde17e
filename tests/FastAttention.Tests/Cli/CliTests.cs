using FastAttention.Cli;
using Xunit;

namespace FastAttention.Tests.Cli;

public class CliTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = CliApp.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public void Explain_It_DotProductsAndWeightsAsTheDocumentDefines()
    {
        var e = Walkthrough.Explain(Walkthrough.DocumentTokens, "it", 1).Single();
        Assert.Equal(0.17, e.DotProducts[Array.IndexOf(e.Tokens, "The")], 6);
        Assert.Equal(0.77, e.DotProducts[Array.IndexOf(e.Tokens, "animal")], 6);
        Assert.Equal(1.22, e.DotProducts[Array.IndexOf(e.Tokens, "tired")], 6);
        foreach (var (weights, scale) in new[] { (e.WeightsUnscaled, 1.0), (e.WeightsScaled, 1 / Math.Sqrt(3)) })
        {
            double max = e.DotProducts.Max() * scale;
            double sum = e.DotProducts.Sum(x => Math.Exp(x * scale - max));
            for (int j = 0; j < weights.Length; j++) Assert.Equal(Math.Exp(e.DotProducts[j] * scale - max) / sum, weights[j], 6);
        }
        var values = Walkthrough.DocumentTokens.Select(t => t.Value).ToArray();
        for (int c = 0; c < 3; c++)
            Assert.Equal(Enumerable.Range(0, 8).Sum(j => (double)e.WeightsUnscaled[j] * values[j][c]), e.ContextUnscaled[c], 5);
        Assert.True(e.LargestDeviationFromReference < 1e-6);
    }

    [Fact]
    public void Explain_ThreeHeads_OneExplanationPerHeadWeightsSumToOne()
    {
        var all = Walkthrough.Explain(Walkthrough.DocumentTokens, "animal", 3);
        Assert.Equal(3, all.Count);
        Assert.All(all, e => Assert.Equal(1.0, e.WeightsScaled.Sum(x => (double)x), 5));
    }

    [Fact]
    public void Explain_PrintsTableChartAndHonestNote()
    {
        var (code, output, _) = Run("explain");
        Assert.Equal(0, code);
        Assert.Contains("0.77", output);
        Assert.Contains("0.598", output);
        Assert.Contains("left out", output);
    }

    [Theory]
    [InlineData("explain", "--bogus")]
    [InlineData("explain", "--heads", "many")]
    [InlineData("explain", "--word", "dog")]
    [InlineData("explain", "--heads", "2")]
    [InlineData("explain", "--file", "/definitely/not/here.csv")]
    [InlineData("verify", "--causal", "sideways")]
    [InlineData("verify", "--count", "0")]
    [InlineData("nonsense")]
    public void BadArguments_OneLineAndExitCode2(params string[] args)
    {
        var (code, _, error) = Run(args);
        Assert.Equal(2, code);
        Assert.StartsWith("error: ", error);
        Assert.Single(error.TrimEnd().Split('\n'));
    }

    [Fact]
    public void Explain_CsvAndJsonFiles_Read_MalformedRejected()
    {
        string dir = Directory.CreateTempSubdirectory().FullName;
        string csv = Path.Combine(dir, "t.csv"), json = Path.Combine(dir, "t.json"), bad = Path.Combine(dir, "bad.csv"), badJson = Path.Combine(dir, "bad.json");
        File.WriteAllText(csv, "token,query,key,value\na,1 0,1 0,1 2\nb,0 1,0 1,3 4\n");
        File.WriteAllText(json, """[{"token":"a","query":[1,0],"key":[1,0],"value":[1,2]},{"token":"b","query":[0,1],"key":[0,1],"value":[3,4]}]""");
        File.WriteAllText(bad, "a,1 x,1 0,1 2\n");
        File.WriteAllText(badJson, "[{\"token\":");
        var fromCsv = Walkthrough.Explain(Walkthrough.Load(csv), "a", 1).Single();
        var fromJson = Walkthrough.Explain(Walkthrough.Load(json), "a", 1).Single();
        Assert.Equal(fromCsv.WeightsScaled, fromJson.WeightsScaled);
        Assert.Equal(1 / (1 + Math.Exp(-1 / Math.Sqrt(2))), fromCsv.WeightsScaled[0], 6);
        Assert.Equal(0, Run("explain", "--file", csv, "--word", "b", "--heads", "2").Code);
        Assert.Equal(2, Run("explain", "--file", bad).Code);
        Assert.Equal(2, Run("explain", "--file", badJson).Code);
    }

    [Fact]
    public void Contextual_IdenticalEmbeddings_DifferentOutputsOnlyWithContextInformation()
    {
        var r = Contextual.Run(7);
        Assert.Equal("Apple", r.Tokens[r.First]);
        Assert.Equal("apple", r.Tokens[r.Second]);
        Assert.Equal(1.0, r.CosineBefore, 6);
        Assert.Equal(1.0, r.CosineNoPositions, 5);
        Assert.True(r.CosineWithPositions < 0.999, $"with positions: {r.CosineWithPositions}");
        Assert.True(r.CosineCausal < 0.999, $"causal: {r.CosineCausal}");
        Assert.Equal(0, Run("contextual").Code);
    }

    [Fact]
    public void Verify_DefaultTolerancePasses_ZeroToleranceFails()
    {
        var ok = Run("verify", "--count", "20", "--max-length", "24", "--max-head-size", "40");
        Assert.Equal(0, ok.Code);
        Assert.Contains("largest error", ok.Out);
        var fail = Run("verify", "--count", "20", "--max-length", "24", "--max-head-size", "40", "--tolerance", "0");
        Assert.Equal(1, fail.Code);
        Assert.Contains("FAILED", fail.Out);
    }

    [Fact]
    public void EveryCommand_HasHelp()
    {
        foreach (string command in new[] { "explain", "contextual", "bench", "verify" })
        {
            var (code, output, _) = Run(command, "--help");
            Assert.Equal(0, code);
            Assert.Contains("Usage", output);
        }
    }

    [Fact]
    public void NoCommand_TourListsEveryCommand()
    {
        var (code, output, _) = Run();
        Assert.Equal(0, code);
        foreach (string command in new[] { "explain", "contextual", "bench", "verify" }) Assert.Contains(command, output);
    }
}
