using FastAttention.Kernels;
using FastAttention.Planning;

namespace FastAttention.Tests.Support;

/// <summary>How a tensor of a typed problem is stored.</summary>
/// <summary>
/// How a test stores a tensor. <see cref="Int8PowerOfTwo"/> is int8 whose row scales are powers of two: then every
/// product with a scale is exact, so decode's folding of the scale into the score and the weight gives exactly the
/// bits of fp32 on the widened values, as every other path does for any scale.
/// </summary>
internal enum Storage { Float32, Half, BFloat16, Int8, Int8PowerOfTwo }

/// <summary>
/// A masked problem whose Q, K and V are stored in narrower types, and the same problem with fp32 inputs holding
/// exactly the values those stand for (<see cref="Widened"/>). FastAttention on the typed inputs must equal
/// FastAttention on the widened ones bit for bit (but for int8 read in place by decode, whose scales fold into scores
/// and weights: bitwise only for <see cref="Storage.Int8PowerOfTwo"/>), and the widened problem is what the fp64
/// reference sees.
/// </summary>
internal sealed class TypedProblem
{
    public required MaskedProblem Widened { get; init; }
    public required Storage QueryStorage { get; init; }
    public required Storage KeyStorage { get; init; }
    public required Storage ValueStorage { get; init; }
    private Array _query = null!, _key = null!, _value = null!;
    private float[] _keyScales = [], _valueScales = [];

    public AttentionShape Shape => Widened.Shape;

    public override string ToString() => $"Q {QueryStorage} K {KeyStorage} V {ValueStorage} {Widened}";

    public static TypedProblem Create(MaskedProblem problem, Storage query, Storage key, Storage value)
    {
        if (query is Storage.Int8 or Storage.Int8PowerOfTwo) throw new ArgumentException("int8 is for keys and values");
        TestProblem p = problem.Problem;
        AttentionShape s = p.Shape;
        var (q, wq, _) = Store(p.Query, query, s.QueryLayout, s.Batch, s.QueryHeads, s.QueryCount, s.HeadSize);
        var (k, wk, ks) = Store(p.Key, key, s.KeyLayout, s.Batch, s.KeyValueHeads, s.KeyCount, s.HeadSize);
        var (v, wv, vs) = Store(p.Value, value, s.ValueLayout, s.Batch, s.KeyValueHeads, s.KeyCount, s.ValueHeadSize);
        var widenedProblem = new TestProblem { Spec = p.Spec, Shape = s, Query = wq, Key = wk, Value = wv, Output = (float[])p.Output.Clone() };
        var widened = new MaskedProblem
        {
            Problem = widenedProblem, Masks = problem.Masks, Bias = problem.Bias, Mask = problem.Mask,
            KeyLengths = problem.KeyLengths, Slopes = problem.Slopes, Sinks = problem.Sinks,
        };
        return new TypedProblem
        {
            Widened = widened, QueryStorage = query, KeyStorage = key, ValueStorage = value,
            _query = q, _key = k, _value = v, _keyScales = ks, _valueScales = vs,
        };
    }

    /// <summary>
    /// The stored array and the fp32 array of the values it stands for. Half and BFloat16 round every element
    /// (NaN guards stay NaN); int8 quantises each row of the layout and leaves the rest (gaps, guards) as they were
    /// in the widened array (the int8 array holds 0 there, which is never read either).
    /// </summary>
    private static (Array Stored, float[] Widened, float[] Scales) Store(float[] data, Storage storage, TensorLayout layout, int batch, int heads, int rows, int columns)
    {
        switch (storage)
        {
            case Storage.Float32:
                return (data, data, []);
            case Storage.Half:
            {
                var stored = Array.ConvertAll(data, x => (Half)x);
                return (stored, Array.ConvertAll(stored, x => (float)x), []);
            }
            case Storage.BFloat16:
            {
                var stored = Array.ConvertAll(data, x => (BFloat16)x);
                return (stored, Array.ConvertAll(stored, x => (float)x), []);
            }
            default:
            {
                var stored = new sbyte[data.Length];
                var widened = (float[])data.Clone();
                var scales = new float[batch * heads * rows];
                var row = new float[columns];
                var quantised = new sbyte[columns];
                for (int b = 0; b < batch; b++)
                for (int h = 0; h < heads; h++)
                for (int r = 0; r < rows; r++)
                {
                    long at = layout.Offset + b * layout.BatchStride + h * layout.HeadStride + r * layout.RowStride;
                    Array.Copy(data, at, row, 0, columns);
                    int index = (b * heads + h) * rows + r;
                    if (storage == Storage.Int8PowerOfTwo) QuantizePowerOfTwo(row, quantised, out scales[index]);
                    else Int8Quantization.QuantizeRows(row, columns, quantised, scales.AsSpan(index, 1));
                    for (int c = 0; c < columns; c++)
                    {
                        stored[at + c] = quantised[c];
                        widened[at + c] = quantised[c] * scales[index];
                    }
                }
                return (stored, widened, scales);
            }
        }
    }

    /// <summary>Symmetric int8 with the smallest power-of-two scale at least max|x| / 127.</summary>
    private static void QuantizePowerOfTwo(float[] row, sbyte[] quantised, out float scale)
    {
        float max = 0f;
        foreach (float x in row) max = MathF.Max(max, MathF.Abs(x));
        scale = max == 0f ? 1f : MathF.Pow(2f, MathF.Ceiling(MathF.Log2(max / 127f)));
        if (max / scale > 127f) scale *= 2f; // the logarithm rounded down
        for (int c = 0; c < row.Length; c++) quantised[c] = (sbyte)Math.Clamp(MathF.Round(row[c] / scale), -127f, 127f);
    }

    private static AttentionTensor Tensor(Array data, float[] scales) => data switch
    {
        float[] f => f,
        Half[] h => h,
        BFloat16[] b => b,
        sbyte[] i => AttentionTensor.Int8(i, scales),
        _ => throw new InvalidOperationException(),
    };

    /// <summary>
    /// Runs on the typed inputs into an output of <paramref name="output"/> storage; returns the output widened to
    /// fp32 (dense) and the log-sum-exp. Elements outside the output tensor must keep their sentinel.
    /// </summary>
    public (float[] Output, float[] LogSumExp) Run(Storage output, KernelWidth? width = null, int? threads = null, KernelKind? kind = null)
    {
        var lse = new float[Shape.LogSumExpLength];
        float[] dense = output switch
        {
            Storage.Float32 => RunInto(new float[Widened.Problem.Output.Length], x => x, TestProblem.OutputSentinel, lse, width, threads, kind),
            Storage.Half => RunInto(new Half[Widened.Problem.Output.Length], x => (float)x, (Half)TestProblem.OutputSentinel, lse, width, threads, kind),
            _ => RunInto(new BFloat16[Widened.Problem.Output.Length], x => (float)x, (BFloat16)TestProblem.OutputSentinel, lse, width, threads, kind),
        };
        return (dense, lse);
    }

    private float[] RunInto<T>(T[] output, Func<T, float> widen, T sentinel, float[] lse, KernelWidth? width, int? threads, KernelKind? kind) where T : IEquatable<T>
    {
        Array.Fill(output, sentinel);
        AttentionOutput target = output switch
        {
            float[] f => f,
            Half[] h => h,
            BFloat16[] b => b,
            _ => throw new InvalidOperationException(),
        };
        Attention.Run(Tensor(_query, []), Tensor(_key, _keyScales), Tensor(_value, _valueScales), target, lse, true, Shape,
            Widened.Options with { MaxDegreeOfParallelism = threads }, width ?? KernelDispatch.Best, Buffers.WorkspacePool.Shared, kind, Widened.Tensors);
        return TestProblem.ReadDense(Shape, output, widen, sentinel);
    }

    /// <summary>The fp32 result rounded to the output storage and widened back: what a typed output must hold.</summary>
    public static float[] Narrowed(float[] output, Storage storage) => storage switch
    {
        Storage.Half => Array.ConvertAll(output, x => (float)(Half)x),
        Storage.BFloat16 => Array.ConvertAll(output, x => (float)(BFloat16)x),
        _ => output,
    };
}
