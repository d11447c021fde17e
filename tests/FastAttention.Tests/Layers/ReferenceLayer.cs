namespace FastAttention.Tests.Layers;

/// <summary>
/// The layer in fp64, built from the same weights, with a first-order bound on the fp32 layer's error: the
/// projections' (k+1)u bound, the attention contract's bound, the softmax's sensitivity to logit errors (moving
/// logits by at most δ moves the output by at most 2δ·max|v|), and the output projection's bound.
/// </summary>
internal sealed class ReferenceLayer
{
    public required int E, H, Hkv;
    public required float[] Wq, Bq, Wk, Bk, Wv, Bv, Wo, Bo;
    private int Dh => E / H;
    private static readonly double U = Math.Pow(2, -24);

    public static ReferenceLayer Random(int e, int h, int hkv, int seed, bool bias = true)
    {
        var random = new Random(seed);
        float[] Make(int n, double scale) { var a = new float[n]; for (int i = 0; i < n; i++) a[i] = (float)((random.NextDouble() * 2 - 1) * scale); return a; }
        int kv = hkv * (e / h);
        double s = 1 / Math.Sqrt(e);
        return new ReferenceLayer
        {
            E = e, H = h, Hkv = hkv,
            Wq = Make(e * e, s), Bq = bias ? Make(e, 0.1) : [], Wk = Make(kv * e, s), Bk = bias ? Make(kv, 0.1) : [],
            Wv = Make(kv * e, s), Bv = bias ? Make(kv, 0.1) : [], Wo = Make(e * e, s), Bo = bias ? Make(e, 0.1) : [],
        };
    }

    public MultiHeadAttention Layer() => new(E, H, Hkv, Wq, Bq, Wk, Bk, Wv, Bv, Wo, Bo);

    /// <summary>Y = X·Wᵀ + b in fp64 with its magnitude |b| + Σ|x·w| per element.</summary>
    private static (double[] Y, double[] Magnitude) Linear(double[] x, int rows, int inputs, float[] w, float[] b, int outputs)
    {
        var y = new double[rows * outputs];
        var m = new double[rows * outputs];
        for (int r = 0; r < rows; r++)
        for (int o = 0; o < outputs; o++)
        {
            double sum = b.Length == 0 ? 0 : b[o], mag = Math.Abs(sum);
            for (int i = 0; i < inputs; i++)
            {
                double p = x[r * inputs + i] * w[o * inputs + i];
                sum += p;
                mag += Math.Abs(p);
            }
            y[r * outputs + o] = sum;
            m[r * outputs + o] = mag;
        }
        return (y, m);
    }

    /// <summary>
    /// Output [B, Lq, E] and its error bound for the fp32 layer. Query row i of batch b sees key j when j ≤ i + Lk − Lq
    /// (bottom-right causal) if <paramref name="causal"/>, every key otherwise.
    /// </summary>
    public (double[] Output, double[] Bound) Forward(float[] query, float[] keyValue, int batch, int lq, int lk, bool causal)
    {
        int e = E, dh = Dh, kvw = Hkv * dh, group = H / Hkv;
        double scale = 1 / Math.Sqrt(dh);
        var (q, qm) = Linear(Array.ConvertAll(query, x => (double)x), batch * lq, e, Wq, Bq, e);
        var xkv = Array.ConvertAll(keyValue, x => (double)x);
        var (k, km) = Linear(xkv, batch * lk, e, Wk, Bk, kvw);
        var (v, vm) = Linear(xkv, batch * lk, e, Wv, Bv, kvw);
        var a = new double[batch * lq * e];
        var aError = new double[batch * lq * e];
        for (int b = 0; b < batch; b++)
        for (int h = 0; h < H; h++)
        for (int i = 0; i < lq; i++)
        {
            int g = h / group, visible = causal ? Math.Min(lk, i + lk - lq + 1) : lk;
            var s = new double[Math.Max(visible, 0)];
            double c = 0, logitError = 0, maxV = 0, maxVError = 0;
            int qr = (b * lq + i) * e + h * dh;
            for (int j = 0; j < visible; j++)
            {
                int kr = (b * lk + j) * kvw + g * dh;
                double dot = 0, mag = 0, err = 0;
                for (int d = 0; d < dh; d++)
                {
                    dot += q[qr + d] * k[kr + d];
                    mag += Math.Abs(q[qr + d] * k[kr + d]);
                    err += (e + 1) * U * (qm[qr + d] * Math.Abs(k[kr + d]) + Math.Abs(q[qr + d]) * km[kr + d]);
                }
                s[j] = scale * dot;
                c = Math.Max(c, scale * mag);
                logitError = Math.Max(logitError, scale * err);
                for (int d = 0; d < dh; d++)
                {
                    maxV = Math.Max(maxV, Math.Abs(v[kr + d]));
                    maxVError = Math.Max(maxVError, (e + 1) * U * vm[kr + d]);
                }
            }
            double max = visible > 0 ? s.Max() : 0, sum = 0;
            for (int j = 0; j < visible; j++) sum += Math.Exp(s[j] - max);
            double own = maxV * U * (1 + c) * (1 + (Math.Sqrt(lk) + Math.Sqrt(dh)) / 2); // the attention contract
            for (int d = 0; d < dh; d++)
            {
                double o = 0;
                for (int j = 0; j < visible; j++) o += Math.Exp(s[j] - max) / sum * v[(b * lk + j) * kvw + g * dh + d];
                a[qr + d] = o;
                aError[qr + d] = own + maxVError + 2 * maxV * logitError + U * Math.Abs(o); // + the fp32 rounding of a itself
            }
        }
        var (y, ym) = Linear(a, batch * lq, e, Wo, Bo, e);
        var bound = new double[y.Length];
        for (int r = 0; r < batch * lq; r++)
        for (int o = 0; o < e; o++)
        {
            double propagated = 0;
            for (int c2 = 0; c2 < e; c2++) propagated += Math.Abs(Wo[o * e + c2]) * aError[r * e + c2];
            bound[r * e + o] = (e + 1) * U * ym[r * e + o] + propagated;
        }
        return (y, bound);
    }
}
