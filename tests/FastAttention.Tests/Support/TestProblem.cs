using FastAttention.Kernels;

namespace FastAttention.Tests.Support;

internal enum LayoutKind { Bhsd, Bshd, PackedQkv, Strided }

/// <summary>The sizes and settings of one generated problem; the data follows from <see cref="Seed"/>.</summary>
internal sealed record ProblemSpec(
    int Batch, int QueryHeads, int KeyValueHeads, int QueryCount, int KeyCount, int HeadSize, int ValueHeadSize,
    LayoutKind Layout, CausalMask Causal, float? Scale, float Magnitude, int Seed)
{
    public override string ToString() =>
        $"B{Batch} Hq{QueryHeads}/Hkv{KeyValueHeads} Lq{QueryCount} Lk{KeyCount} D{HeadSize} Dv{ValueHeadSize} {Layout} {Causal} scale={Scale?.ToString() ?? "default"} mag={Magnitude} seed={Seed}";
}

/// <summary>
/// Buffers for one problem. Inputs sit inside larger arrays whose unused elements hold NaN, so a kernel that reads
/// outside its tensor puts NaN in the output; the output array's unused elements hold a sentinel that must survive.
/// </summary>
internal sealed class TestProblem
{
    public const float OutputSentinel = 1234.5f;
    private const int Guard = 19;

    public required ProblemSpec Spec { get; init; }
    public required AttentionShape Shape { get; init; }
    public required float[] Query { get; init; }
    public required float[] Key { get; init; }
    public required float[] Value { get; init; }
    public required float[] Output { get; init; }
    public AttentionOptions Options => new() { Causal = Spec.Causal, Scale = Spec.Scale };

    public static TestProblem Create(ProblemSpec spec)
    {
        var random = new Random(spec.Seed);
        int b = spec.Batch, hq = spec.QueryHeads, hkv = spec.KeyValueHeads, lq = spec.QueryCount, lk = spec.KeyCount;
        int d = spec.HeadSize, dv = spec.ValueHeadSize;
        AttentionShape shape;
        float[] query, key, value;
        switch (spec.Layout)
        {
            case LayoutKind.PackedQkv:
            {
                if (lq != lk || d != dv) throw new ArgumentException("packed QKV needs Lq == Lk and D == Dv");
                shape = AttentionShape.PackedQkv(b, hq, hkv, lq, d);
                float[] packed = Fill(random, (int)Math.Max(shape.QueryLength, Math.Max(shape.KeyLength, shape.ValueLength)) + Guard, spec.Magnitude);
                query = key = value = packed;
                break;
            }
            case LayoutKind.Strided:
            {
                // BHSD with padded rows and a leading offset, padding full of NaN.
                int qPad = 1 + random.Next(5), kPad = 1 + random.Next(5), vPad = 1 + random.Next(5);
                var ql = new TensorLayout((long)hq * lq * (d + qPad), (long)lq * (d + qPad), d + qPad, Guard);
                var kl = new TensorLayout((long)hkv * lk * (d + kPad), (long)lk * (d + kPad), d + kPad, Guard);
                var vl = new TensorLayout((long)hkv * lk * (dv + vPad), (long)lk * (dv + vPad), dv + vPad, Guard);
                var ol = new TensorLayout((long)hq * lq * (dv + 3), (long)lq * (dv + 3), dv + 3, 5);
                shape = new AttentionShape(b, hq, hkv, lq, lk, d, dv, ql, kl, vl, ol);
                query = Fill(random, (int)shape.QueryLength + Guard, spec.Magnitude);
                key = Fill(random, (int)shape.KeyLength + Guard, spec.Magnitude);
                value = Fill(random, (int)shape.ValueLength + Guard, 1f);
                PoisonGaps(query, shape.QueryLayout, b, hq, lq, d);
                PoisonGaps(key, shape.KeyLayout, b, hkv, lk, d);
                PoisonGaps(value, shape.ValueLayout, b, hkv, lk, dv);
                break;
            }
            default:
            {
                shape = spec.Layout == LayoutKind.Bhsd
                    ? AttentionShape.Bhsd(b, hq, hkv, lq, lk, d, dv)
                    : AttentionShape.Bshd(b, hq, hkv, lq, lk, d, dv);
                query = Fill(random, (int)shape.QueryLength + Guard, spec.Magnitude);
                key = Fill(random, (int)shape.KeyLength + Guard, spec.Magnitude);
                value = Fill(random, (int)shape.ValueLength + Guard, 1f);
                break;
            }
        }
        var output = new float[shape.OutputLength + Guard];
        Array.Fill(output, OutputSentinel);
        return new TestProblem { Spec = spec, Shape = shape, Query = query, Key = key, Value = value, Output = output };
    }

    /// <summary>Uniform values in [−magnitude, magnitude] up to the used length, NaN after it.</summary>
    private static float[] Fill(Random random, int length, float magnitude)
    {
        var array = new float[length];
        for (int i = 0; i < length - Guard; i++) array[i] = (float)((random.NextDouble() * 2 - 1) * magnitude);
        for (int i = length - Guard; i < length; i++) array[i] = float.NaN;
        return array;
    }

    /// <summary>Puts NaN into every element of the array that the layout does not address.</summary>
    private static void PoisonGaps(float[] array, TensorLayout layout, int batch, int heads, int rows, int columns)
    {
        var used = new bool[array.Length];
        for (int b = 0; b < batch; b++)
        for (int h = 0; h < heads; h++)
        for (int r = 0; r < rows; r++)
        for (int c = 0; c < columns; c++)
            used[layout.Offset + b * layout.BatchStride + h * layout.HeadStride + r * layout.RowStride + c] = true;
        for (int i = 0; i < array.Length; i++)
            if (!used[i]) array[i] = float.NaN;
    }

    /// <summary>
    /// Runs FastAttention at one width (and, when given, with one kernel forced: the planner picks the direct
    /// decode-style kernel for small problems, so tests force each kernel on the same shapes), returning the
    /// output read densely and the log-sum-exp.
    /// </summary>
    public (float[] Output, float[] LogSumExp) Run(KernelWidth? width = null, int? threads = null, Planning.KernelKind? kind = null)
    {
        Array.Fill(Output, OutputSentinel);
        var lse = new float[Shape.LogSumExpLength];
        var options = Options with { MaxDegreeOfParallelism = threads };
        Attention.Run(Query, Key, Value, Output, lse, true, Shape, options, width ?? KernelDispatch.Best, Buffers.WorkspacePool.Shared, kind);
        return (ReadOutput(), lse);
    }

    public float[] ReadOutput() => ReadDense(Shape, Output, x => x, OutputSentinel);

    /// <summary>
    /// The output tensor of <paramref name="s"/> read densely through its layout and widened to fp32; every element of
    /// <paramref name="output"/> outside the tensor must still hold <paramref name="sentinel"/>.
    /// </summary>
    public static float[] ReadDense<T>(in AttentionShape s, T[] output, Func<T, float> widen, T sentinel) where T : IEquatable<T>
    {
        var dense = new float[(long)s.Batch * s.QueryHeads * s.QueryCount * s.ValueHeadSize];
        var used = new bool[output.Length];
        var l = s.OutputLayout;
        int n = 0;
        for (int b = 0; b < s.Batch; b++)
        for (int h = 0; h < s.QueryHeads; h++)
        for (int i = 0; i < s.QueryCount; i++)
        for (int c = 0; c < s.ValueHeadSize; c++)
        {
            long at = l.Offset + b * l.BatchStride + h * l.HeadStride + i * l.RowStride + c;
            dense[n++] = widen(output[at]);
            used[at] = true;
        }
        for (int i = 0; i < output.Length; i++)
            if (!used[i] && !output[i].Equals(sentinel))
                throw new Xunit.Sdk.XunitException($"output element {i} outside the output tensor was written ({widen(output[i])}).");
        return dense;
    }

    public (double[] Output, double[] LogSumExp) Reference()
    {
        var s = Shape;
        var output = new double[(long)s.Batch * s.QueryHeads * s.QueryCount * s.ValueHeadSize];
        var lse = new double[s.LogSumExpLength];
        ReferenceAttention.Compute(Query, Key, Value, output, s, Options, lse);
        return (output, lse);
    }
}
