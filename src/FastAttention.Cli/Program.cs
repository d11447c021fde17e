return FastAttention.Cli.CliApp.Run(args, Console.Out, Console.Error);
