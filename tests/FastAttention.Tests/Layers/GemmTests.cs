using FastAttention.Kernels;
using FastAttention.Tests.Allocation;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace FastAttention.Tests.Layers;

/// <summary>
/// Y = X·Wᵀ + b against fp64, with the classical bound for a sum of k products started from the bias:
/// |Y − Y_ref| ≤ (k + 1)·2⁻²⁴·(|b| + Σ_t |x_t·w_t|), whatever the summation order or FMA use.
/// </summary>
[Collection(nameof(SerialCollection))]
public class GemmTests
{
    private static (float[] X, float[] W, float[] B) Data(int m, int n, int k, bool bias, int seed)
    {
        var random = new Random(seed);
        float Next() => (float)(random.NextDouble() * 2 - 1) * (random.Next(4) == 0 ? 100f : 1f);
        var x = new float[m * k];
        var w = new float[n * k];
        var b = bias ? new float[n] : [];
        for (int i = 0; i < x.Length; i++) x[i] = Next();
        for (int i = 0; i < w.Length; i++) w[i] = Next();
        for (int i = 0; i < b.Length; i++) b[i] = Next();
        return (x, w, b);
    }

    private static void AssertWithinBound(float[] x, float[] w, float[] b, float[] y, int m, int n, int k, string label)
    {
        double u = Math.Pow(2, -24);
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double sum = b.Length == 0 ? 0 : b[j], magnitude = b.Length == 0 ? 0 : Math.Abs(b[j]);
            for (int t = 0; t < k; t++)
            {
                sum += (double)x[i * k + t] * w[j * k + t];
                magnitude += Math.Abs((double)x[i * k + t] * w[j * k + t]);
            }
            double error = Math.Abs(y[i * n + j] - sum), bound = (k + 1) * u * magnitude;
            Assert.True(error <= bound, $"{label}: Y[{i}, {j}] = {y[i * n + j]}, fp64 {sum}, error {error:E3} > bound {bound:E3}");
        }
    }

    private static Gen<(int M, int N, int K, bool Bias, KernelWidth Width, int Threads, int Seed)> Cases() =>
        from m in Gen.Frequency((3, Gen.Choose(1, 20)), (1, Gen.Choose(21, 130)))
        from n in Gen.Frequency((3, Gen.Choose(1, 40)), (1, Gen.Choose(41, 200)))
        from k in Gen.Frequency((3, Gen.Choose(1, 40)), (1, Gen.Choose(41, 300)))
        from bias in Gen.Elements(false, true)
        from width in Gen.Elements(KernelDispatch.All.ToArray())
        from threads in Gen.Elements(1, 2)
        from seed in Gen.Choose(0, int.MaxValue)
        select (m, n, k, bias, width, threads, seed);

    [Property(MaxTest = 200)]
    public Property Multiply_AnySizeWidthAndThreads_WithinTheBoundOfFp64() =>
        Prop.ForAll(Cases().ToArbitrary(), c =>
        {
            var (x, w, b) = Data(c.M, c.N, c.K, c.Bias, c.Seed);
            var y = new float[c.M * c.N + 5];
            Array.Fill(y, 99f);
            Gemm.Multiply(x, w, b, y, c.M, c.N, c.K, c.Threads, c.Width);
            string label = $"{c.M}x{c.N}x{c.K} bias={c.Bias} {c.Width} {c.Threads}t";
            AssertWithinBound(x, w, b, y, c.M, c.N, c.K, label);
            Assert.All(y[(c.M * c.N)..], v => Assert.Equal(99f, v)); // nothing written past Y

            // Pre-packed weights give the same bits as packing per call.
            var packed = PackedWeights.Pack(w, b, c.N, c.K, c.Width);
            var y2 = new float[c.M * c.N];
            Gemm.Multiply(x, packed, y2, c.M, c.Threads);
            Assert.True(y.AsSpan(0, c.M * c.N).SequenceEqual(y2), $"{label}: packed weights differ from per-call packing");
        });

    [Theory]
    [InlineData(200, 150, 64)]
    [InlineData(97, 513, 77)]
    public void Multiply_AnyDegreeOfParallelism_BitwiseIdentical(int m, int n, int k)
    {
        var (x, w, b) = Data(m, n, k, true, 3);
        var first = new float[m * n];
        Gemm.Multiply(x, w, b, first, m, n, k, 1);
        foreach (int? threads in new int?[] { 2, 3, 7, null })
        {
            var y = new float[m * n];
            Gemm.Multiply(x, w, b, y, m, n, k, threads);
            Assert.True(first.AsSpan().SequenceEqual(y), $"differs at {threads} threads");
        }
    }

    [Fact]
    public void Multiply_StridedRows_ReadAndWriteOnlyTheirRows()
    {
        const int m = 9, n = 20, k = 13, xStride = 17, yStride = 31;
        var (dense, w, b) = Data(m, n, k, true, 5);
        var x = new float[(m - 1) * xStride + k];
        Array.Fill(x, float.NaN); // the gaps between rows must never be read
        for (int i = 0; i < m; i++) dense.AsSpan(i * k, k).CopyTo(x.AsSpan(i * xStride));
        var y = new float[(m - 1) * yStride + n];
        Array.Fill(y, 99f);
        Gemm.Multiply(x, PackedWeights.Pack(w, b, n, k), y, m, xStride, yStride);
        var expected = new float[m * n];
        Gemm.Multiply(dense, w, b, expected, m, n, k);
        for (int i = 0; i < m; i++)
        {
            Assert.True(expected.AsSpan(i * n, n).SequenceEqual(y.AsSpan(i * yStride, n)), $"row {i}");
            if (i < m - 1) Assert.All(y.AsSpan(i * yStride + n, yStride - n).ToArray(), v => Assert.Equal(99f, v));
        }
    }

    [Fact]
    public void Multiply_BadArguments_ThrowNamingTheParameter()
    {
        var w = PackedWeights.Pack(new float[12], [], 3, 4);
        Assert.Equal("x", Assert.ThrowsAny<ArgumentException>(() => Gemm.Multiply(new float[7], w, new float[6], 2)).ParamName);
        Assert.Equal("y", Assert.ThrowsAny<ArgumentException>(() => Gemm.Multiply(new float[8], w, new float[5], 2)).ParamName);
        Assert.Equal("xStride", Assert.ThrowsAny<ArgumentException>(() => Gemm.Multiply(new float[8], w, new float[6], 2, 3, 3)).ParamName);
        var shared = new float[20];
        Assert.Equal("y", Assert.ThrowsAny<ArgumentException>(() => Gemm.Multiply(shared, w, shared.AsSpan(4), 2)).ParamName);
        Assert.Equal("weight", Assert.ThrowsAny<ArgumentException>(() => PackedWeights.Pack(new float[11], [], 3, 4)).ParamName);
        Assert.Equal("bias", Assert.ThrowsAny<ArgumentException>(() => PackedWeights.Pack(new float[12], new float[2], 3, 4)).ParamName);
        Assert.Equal("weight", Assert.ThrowsAny<ArgumentException>(() => Gemm.Multiply(new float[8], new float[11], [], new float[6], 2, 3, 4)).ParamName);
    }

    [Fact]
    public void Multiply_RepeatedCall_AllocatesZeroBytes()
    {
        var (x, w, b) = Data(256, 192, 128, true, 9);
        var packed = PackedWeights.Pack(w, b, 192, 128);
        var y = new float[256 * 192];
        for (int i = 0; i < 5; i++)
        {
            Gemm.Multiply(x, packed, y, 256, 2);
            Gemm.Multiply(x, w, b, y, 256, 192, 128, 2);
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10; i++)
        {
            Gemm.Multiply(x, packed, y, 256, 2);
            Gemm.Multiply(x, w, b, y, 256, 192, 128, 2);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
