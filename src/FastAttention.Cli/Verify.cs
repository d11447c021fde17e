namespace FastAttention.Cli;

/// <summary>N generated problems checked against the fp64 reference, for users' own verification runs.</summary>
internal static class Verify
{
    public sealed record Settings(int Count, int Seed, int MaxLength, int MaxHeadSize, string Causal, double Tolerance);

    public sealed record Outcome(int Checked, int Failed, double LargestError, string WorstProblem);

    public static Outcome Run(Settings s, Action<int>? progress = null)
    {
        var random = new Random(s.Seed);
        int failed = 0;
        double largest = 0;
        string worst = "";
        for (int n = 0; n < s.Count; n++)
        {
            int hkv = random.Next(1, 3), group = new[] { 1, 2, 4 }[random.Next(3)];
            int lq = random.Next(1, s.MaxLength + 1), lk = random.Next(1, s.MaxLength + 1);
            int d = random.Next(1, s.MaxHeadSize + 1), dv = random.Next(1, s.MaxHeadSize + 1);
            CausalMask causal = s.Causal switch
            {
                "none" => CausalMask.None,
                "top-left" => CausalMask.TopLeft,
                "bottom-right" => CausalMask.BottomRight,
                _ => (CausalMask)random.Next(3),
            };
            var shape = AttentionShape.Bhsd(1, hkv * group, hkv, lq, lk, d, dv);
            float[] q = Fill(random, shape.QueryLength), k = Fill(random, shape.KeyLength), v = Fill(random, shape.ValueLength);
            var o = new float[shape.OutputLength];
            var options = new AttentionOptions { Causal = causal };
            Attention.Compute(q, k, v, o, shape, options);
            double units = AttentionAccuracy.ErrorInBoundUnits(q, k, v, o, shape, options);
            if (units > largest || n == 0) { largest = Math.Max(largest, units); worst = $"{shape} {causal}"; }
            if (!(units <= s.Tolerance)) failed++;
            progress?.Invoke(n + 1);
        }
        return new Outcome(s.Count, failed, largest, worst);
    }

    private static float[] Fill(Random random, long length)
    {
        var a = new float[length];
        for (int i = 0; i < a.Length; i++) a[i] = random.NextSingle() * 4 - 2;
        return a;
    }
}
