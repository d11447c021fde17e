using System.CommandLine;
using System.Globalization;
using FastAttention.Bench;
using Spectre.Console;

namespace FastAttention.Cli;

/// <summary>The command line: arguments by System.CommandLine, tables and charts by Spectre.Console.</summary>
internal static class CliApp
{
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.Detect, Interactive = InteractionSupport.No });
        var root = new RootCommand("FastAttention: fused scaled dot-product attention for .NET — a walkthrough of what it computes, a benchmark and a verifier.");

        var word = new Option<string>("--word") { Description = "The word whose attention to explain.", DefaultValueFactory = _ => "it" };
        var file = new Option<FileInfo?>("--file")
        {
            Description = "Your own tokens instead of the document's. CSV: one 'token,query,key,value' line per token, each vector as "
                + "space-separated numbers (e.g. 'it,0.6 0.5 0.4,0.7 0.6 0.5,0.6 0.5 0.4'). JSON (.json): "
                + "[{\"token\": \"it\", \"query\": [..], \"key\": [..], \"value\": [..]}].",
        };
        var heads = new Option<int>("--heads") { Description = "Split the vectors into this many heads and show each head's weights.", DefaultValueFactory = _ => 1 };
        var explain = new Command("explain", "The worked example: dot products, softmax weights and the contextual vector of a word.") { word, file, heads };
        explain.SetAction(p => Guard(error, () => ExplainCommand(console, p.GetValue(word)!, p.GetValue(file), p.GetValue(heads))));

        var seed = new Option<int>("--seed") { Description = "Seed of the embeddings and projection weights.", DefaultValueFactory = _ => 7 };
        var contextual = new Command("contextual", "The 'Apple' sentence: one static embedding, two different contextual outputs.") { seed };
        contextual.SetAction(p => Guard(error, () => ContextualCommand(console, p.GetValue(seed))));

        var json = new Option<FileInfo?>("--json") { Description = "Also write the results as JSON to this file." };
        var bench = new Command("bench", "The quick benchmark (the same code as perf's --quick): FastAttention beside the naive TensorPrimitives baseline.") { json };
        bench.SetAction(p => Guard(error, () => BenchCommand(console, p.GetValue(json))));

        var count = new Option<int>("--count") { Description = "Number of generated problems.", DefaultValueFactory = _ => 200 };
        var vseed = new Option<int>("--seed") { Description = "Seed of the generated problems.", DefaultValueFactory = _ => 1 };
        var maxLength = new Option<int>("--max-length") { Description = "Largest query and key count.", DefaultValueFactory = _ => 64 };
        var maxHead = new Option<int>("--max-head-size") { Description = "Largest head size.", DefaultValueFactory = _ => 128 };
        var causal = new Option<string>("--causal") { Description = "Causal mask of the problems.", DefaultValueFactory = _ => "random" };
        causal.AcceptOnlyFromAmong("none", "top-left", "bottom-right", "random");
        var tolerance = new Option<double>("--tolerance")
        {
            Description = "Largest accepted error in units of the README's bound max|V|·2⁻²⁴·(1+C)·(1+(√Lk+√D)/2).",
            DefaultValueFactory = _ => 1.0,
        };
        var verify = new Command("verify", "Check generated problems against the fp64 reference; exit code 1 on any failure.") { count, vseed, maxLength, maxHead, causal, tolerance };
        verify.SetAction(p => Guard(error, () => VerifyCommand(console, new Verify.Settings(
            Positive(p.GetValue(count), "--count"), p.GetValue(vseed), Positive(p.GetValue(maxLength), "--max-length"),
            Positive(p.GetValue(maxHead), "--max-head-size"), p.GetValue(causal)!, NonNegative(p.GetValue(tolerance), "--tolerance")))));

        root.Subcommands.Add(explain);
        root.Subcommands.Add(contextual);
        root.Subcommands.Add(bench);
        root.Subcommands.Add(verify);
        root.SetAction(_ => Guard(error, () => Tour(console)));

        ParseResult parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            string message = string.Join(' ', parsed.Errors[0].Message.Split(['\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            error.WriteLine($"error: {message} (see --help)");
            return 2;
        }
        return parsed.Invoke(new InvocationConfiguration { Output = output, Error = error });
    }

    private static int Positive(int value, string name) => value > 0 ? value : throw new CliException($"{name} must be at least 1; got {value}.");

    private static double NonNegative(double value, string name) => value >= 0 ? value : throw new CliException($"{name} must be zero or more; got {value}.");

    /// <summary>User errors become one line and exit code 2; anything else is a bug and propagates.</summary>
    private static int Guard(TextWriter error, Func<int> action)
    {
        try
        {
            return action();
        }
        catch (CliException e)
        {
            error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }

    private static int Tour(IAnsiConsole console)
    {
        console.Write(new Rule("[bold]FastAttention[/] — self-attention, fast, and checked"));
        console.MarkupLine("Attention lets each token look at every other token: its [italic]query[/] is compared with every [italic]key[/] (a dot product), "
            + "a softmax turns those scores into weights, and the weighted sum of [italic]values[/] is the token's contextual vector.");
        console.WriteLine();
        var table = new Table().AddColumn("command").AddColumn("what it shows");
        table.AddRow("explain [[--word W]] [[--file F]] [[--heads N]]", "the document's worked example, computed and checked against the fp64 reference");
        table.AddRow("contextual [[--seed S]]", "why 'Apple' and 'apple' get different vectors from self-attention");
        table.AddRow("bench [[--json F]]", "the quick benchmark against a naive TensorPrimitives baseline");
        table.AddRow("verify [[--count N]] ...", "generated problems against the reference; exit code 1 on a failure");
        console.Write(table);
        console.MarkupLine("Every command has [bold]--help[/]. A taste of [bold]explain[/]:");
        console.WriteLine();
        return ExplainCommand(console, "it", null, 1);
    }

    private static int ExplainCommand(IAnsiConsole console, string word, FileInfo? file, int heads)
    {
        bool document = file is null;
        var tokens = document ? Walkthrough.DocumentTokens : Walkthrough.Load(file!.FullName);
        var explanations = Walkthrough.Explain(tokens, word, heads);
        if (document)
        {
            console.MarkupLine($"Sentence: [italic]The animal didn't cross the street because it was too tired.[/]");
            console.MarkupLine($"The document gives queries and keys for 8 tokens and values for 11. Attention runs over the 8 tokens that have all three "
                + $"([bold]{string.Join(" ", tokens.Select(t => Markup.Escape(t.Token)))}[/]), each with the value listed under its own name; " +
                $"'{string.Join("', '", Walkthrough.ValueOnlyTokens)}' have values only and are left out.");
            console.WriteLine();
        }
        foreach (var e in explanations)
        {
            string title = heads > 1 ? $"head {e.Head} (dimensions {e.Head * e.HeadSize}–{(e.Head + 1) * e.HeadSize - 1})" : "relevance";
            var table = new Table().Title($"'{Markup.Escape(e.Word)}' attends to… ({title})")
                .AddColumn("token").AddColumn(new TableColumn("q·k").RightAligned())
                .AddColumn(new TableColumn("weight, unscaled").RightAligned())
                .AddColumn(new TableColumn($"weight, scaled 1/√{e.HeadSize}").RightAligned());
            for (int j = 0; j < e.Tokens.Length; j++)
                table.AddRow(Markup.Escape(e.Tokens[j]), e.DotProducts[j].ToString("F2", CultureInfo.InvariantCulture),
                    e.WeightsUnscaled[j].ToString("F4", CultureInfo.InvariantCulture), e.WeightsScaled[j].ToString("F4", CultureInfo.InvariantCulture));
            console.Write(table);
            var chart = new BarChart().Width(60).Label("weights (unscaled softmax of q·k)");
            for (int j = 0; j < e.Tokens.Length; j++) chart.AddItem(Markup.Escape(e.Tokens[j]), Math.Round(e.WeightsUnscaled[j], 4), Color.Aqua);
            console.Write(chart);
            console.MarkupLine($"Contextual vector of '{Markup.Escape(e.Word)}': unscaled [bold]{Format(e.ContextUnscaled)}[/], scaled [bold]{Format(e.ContextScaled)}[/]");
        }
        console.MarkupLine($"FastAttention against the fp64 reference: largest difference {explanations[0].LargestDeviationFromReference:E1} over every weight and output.");
        if (document && word == "it" && heads == 1)
        {
            var e = explanations[0];
            int animal = Array.IndexOf(e.Tokens, "animal");
            console.WriteLine();
            console.MarkupLine("[bold]Where the document's figures differ, and why.[/] It illustrates weights such as 0.60–0.70 for 'animal' and the vector "
                + $"{Format(Walkthrough.DocumentContextOfIt)}. The softmax of these dot products gives 'animal' {e.WeightsUnscaled[animal]:F3}: the scores span only "
                + $"{e.DotProducts.Min():F2}…{e.DotProducts.Max():F2}, and e^x changes little over such a range, so the weights stay close to uniform (1/8 = 0.125). "
                + "Sharp weights need large score gaps, which trained models get from learned projections and larger head sizes. "
                + "The document's vector is a weighted average dominated by 'animal' and 'it'; the computed one is a near-even average of all eight values.");
        }
        return 0;
    }

    private static int ContextualCommand(IAnsiConsole console, int seed)
    {
        var r = Contextual.Run(seed);
        console.MarkupLine($"Sentence: [italic]{Contextual.Sentence}[/]");
        console.MarkupLine($"Tokens {r.First} and {r.Second} are '{r.Tokens[r.First]}' and '{r.Tokens[r.Second]}'. A static embedding (word2vec-like, seeded, {Contextual.ModelSize} dimensions) "
            + $"gives both one and the same vector. Self-attention ({Contextual.Heads} heads, seeded projection weights) mixes in the rest of the sentence:");
        var table = new Table().AddColumn("representation").AddColumn(new TableColumn("cosine(apple₁, apple₂)").RightAligned());
        table.AddRow("static embedding (input)", r.CosineBefore.ToString("F4", CultureInfo.InvariantCulture));
        table.AddRow("self-attention, no position information", r.CosineNoPositions.ToString("F4", CultureInfo.InvariantCulture));
        table.AddRow("self-attention, sinusoidal positions added", r.CosineWithPositions.ToString("F4", CultureInfo.InvariantCulture));
        table.AddRow("self-attention, causal (each sees only its past)", r.CosineCausal.ToString("F4", CultureInfo.InvariantCulture));
        console.Write(table);
        console.MarkupLine("Without positions (or a causal mask) attention cannot tell the two occurrences apart: same query, same keys, same output. "
            + "With either, each occurrence attends to a different context and gets its own vector — the point of contextual embeddings.");
        return 0;
    }

    private static int BenchCommand(IAnsiConsole console, FileInfo? json)
    {
        BenchReport? report = null;
        console.Progress().Start(ctx =>
        {
            var settings = QuickBenchmark.Quick;
            var task = ctx.AddTask("quick benchmark", maxValue: 1 + settings.Cases.Count * settings.ThreadCounts.Count * 2);
            report = QuickBenchmark.Run(settings, message => { task.Description = message; task.Increment(1); });
        });
        var table = new Table().Title(Markup.Escape(report!.Cpu));
        foreach (string h in ReportRows.Header) table.AddColumn(new TableColumn(h).RightAligned());
        foreach (var row in ReportRows.Rows(report)) table.AddRow(row.Select(Markup.Escape).ToArray());
        console.Write(table);
        if (json is not null)
        {
            try
            {
                File.WriteAllText(json.FullName, QuickBenchmark.ToJson(report));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new CliException($"cannot write {json.FullName}: {e.Message}");
            }
            console.MarkupLine($"wrote {Markup.Escape(json.FullName)}");
        }
        return 0;
    }

    private static int VerifyCommand(IAnsiConsole console, Verify.Settings settings)
    {
        var outcome = Verify.Run(settings);
        console.MarkupLine($"checked {outcome.Checked} problems (lengths ≤ {settings.MaxLength}, head sizes ≤ {settings.MaxHeadSize}, causal {settings.Causal})");
        console.MarkupLine($"largest error: {outcome.LargestError:F3} bound units ({Markup.Escape(outcome.WorstProblem)}); tolerance: {settings.Tolerance}");
        if (outcome.Failed > 0)
        {
            console.MarkupLine($"[red]FAILED[/]: {outcome.Failed} problem(s) above the tolerance");
            return 1;
        }
        console.MarkupLine("[green]all within tolerance[/]");
        return 0;
    }

    /// <summary>A vector for Spectre markup (brackets escaped).</summary>
    private static string Format(float[] v) => "[[" + string.Join(", ", v.Select(x => x.ToString("F3", CultureInfo.InvariantCulture))) + "]]";
}
