namespace FastAttention.Bench;

/// <summary>The inputs of a case with narrower storage, and fp32 copies of the values they stand for.</summary>
public sealed class TypedInputs
{
    private Half[]? _query;
    private Half[]? _key, _value;
    private sbyte[]? _keyInt8, _valueInt8;
    private float[] _keyScales = [], _valueScales = [];
    public required float[] WidenedQuery { get; init; }
    public required float[] WidenedKey { get; init; }
    public required float[] WidenedValue { get; init; }

    public static TypedInputs Create(BenchCase c, float[] q, float[] k, float[] v)
    {
        int d = c.HeadSize;
        switch (c.Storage)
        {
            case InputStorage.Int8KeyValue:
            {
                var (ki, ks, kw) = Quantise(k, d);
                var (vi, vs, vw) = Quantise(v, d);
                return new TypedInputs { _keyInt8 = ki, _keyScales = ks, _valueInt8 = vi, _valueScales = vs, WidenedQuery = q, WidenedKey = kw, WidenedValue = vw };
            }
            default:
            {
                Half[] kh = Array.ConvertAll(k, x => (Half)x), vh = Array.ConvertAll(v, x => (Half)x);
                Half[]? qh = c.Storage == InputStorage.Half ? Array.ConvertAll(q, x => (Half)x) : null;
                return new TypedInputs
                {
                    _query = qh, _key = kh, _value = vh,
                    WidenedQuery = qh is null ? q : Array.ConvertAll(qh, x => (float)x),
                    WidenedKey = Array.ConvertAll(kh, x => (float)x), WidenedValue = Array.ConvertAll(vh, x => (float)x),
                };
            }
        }
    }

    private static (sbyte[] Values, float[] Scales, float[] Widened) Quantise(float[] rows, int rowLength)
    {
        var values = new sbyte[rows.Length];
        var scales = new float[rows.Length / rowLength];
        var widened = new float[rows.Length];
        Int8Quantization.QuantizeRows(rows, rowLength, values, scales);
        Int8Quantization.DequantizeRows(values, scales, rowLength, widened);
        return (values, scales, widened);
    }

    public void Compute(float[] output, in AttentionShape shape, in AttentionOptions options)
    {
        AttentionTensor query = _query is not null ? _query : WidenedQuery;
        if (_keyInt8 is not null)
            Attention.Compute(query, AttentionTensor.Int8(_keyInt8, _keyScales), AttentionTensor.Int8(_valueInt8!, _valueScales), output, shape, options);
        else
            Attention.Compute(query, _key, _value, output, shape, options);
    }
}
