using BenchmarkDotNet.Attributes;
using FastAttention;
using FastAttention.Bench;

/// <summary>The full suite: every case of ../shared/BENCHMARKS.md, FastAttention and the naive baseline, 1 thread and all cores.</summary>
[MemoryDiagnoser]
public class AttentionBench
{
    private float[] _q = [], _k = [], _v = [], _o = [];
    private TypedInputs? _typed; // Half or int8 cases: the inputs in their storage type (the naive baseline reads their fp32 values)
    private AttentionShape _shape;

    public static IEnumerable<string> CaseNames => BenchCase.All.Where(c => !c.IsMasked).Select(c => c.Name);

    [ParamsSource(nameof(CaseNames))]
    public string Case { get; set; } = "tiny";

    [Params(1, 2)]
    public int Threads { get; set; }

    private BenchCase Current => BenchCase.All.First(c => c.Name == Case);

    [GlobalSetup]
    public void Setup()
    {
        _shape = Current.Shape;
        var random = new Random(42);
        _q = Enumerable.Range(0, (int)_shape.QueryLength).Select(_ => random.NextSingle() * 2 - 1).ToArray();
        _k = Enumerable.Range(0, (int)_shape.KeyLength).Select(_ => random.NextSingle() * 2 - 1).ToArray();
        _v = Enumerable.Range(0, (int)_shape.ValueLength).Select(_ => random.NextSingle() * 2 - 1).ToArray();
        _o = new float[_shape.OutputLength];
        if (Current.Storage != InputStorage.Float32)
        {
            _typed = TypedInputs.Create(Current, _q, _k, _v);
            (_q, _k, _v) = (_typed.WidenedQuery, _typed.WidenedKey, _typed.WidenedValue);
        }
    }

    [Benchmark(Baseline = true)]
    public void Naive() => NaiveAttention.Compute(_q, _k, _v, _o, Current, Threads);

    [Benchmark]
    public void FastAttention()
    {
        if (_typed is not null) _typed.Compute(_o, _shape, Current.Options(Threads));
        else Attention.Compute(_q, _k, _v, _o, _shape, Current.Options(Threads));
    }
}
