using System.Runtime.CompilerServices;

namespace FastAttention.Kernels;

/// <summary>
/// Y = X·Wᵀ + b in fp32, written once over a vector width. W ([n, k], the layout of a linear layer's weight) is
/// packed into panels of <see cref="PanelWidth"/> output columns, k-major: panel p holds W[p·NR .. p·NR + NR, t]
/// for t = 0..k contiguously, zero-padded past n. The micro-kernel keeps a 6 × 2-vector block of Y in registers
/// and, per t, loads two vectors of the panel and broadcasts one X element per row: 12 FMAs for 8 loads.
/// Every element of Y is one sum in increasing t, started from its bias, whoever computes it: results do not
/// depend on the thread count.
/// </summary>
internal static unsafe class GemmKernel<TVec, TOps>
    where TVec : unmanaged
    where TOps : IVectorOps<TVec>
{
    public const int Rows = 6;

    /// <summary>Output columns per packed panel: two vectors.</summary>
    public static int PanelWidth => 2 * TOps.Count;

    /// <summary>Packs panel <paramref name="panel"/> of W [n, k] (rows <paramref name="ldw"/> apart) into <paramref name="packed"/>.</summary>
    public static void PackPanel(float* w, nint ldw, int n, int k, float* packed, int panel)
    {
        int nr = PanelWidth, first = panel * nr, columns = Math.Min(nr, n - first);
        float* destination = packed + (long)panel * k * nr;
        for (int c = 0; c < columns; c++)
        {
            float* row = w + (first + c) * ldw;
            for (int t = 0; t < k; t++) destination[t * nr + c] = row[t];
        }
        for (int c = columns; c < nr; c++)
        {
            for (int t = 0; t < k; t++) destination[t * nr + c] = 0f;
        }
    }

    /// <summary>Rows [r0, r1) × panels [p0, p1) of Y (bias padded to whole panels): row blocks outer, so the block's X rows stay in L1 across panels.</summary>
    [SkipLocalsInit]
    public static void Block(float* x, nint ldx, float* packed, float* bias, float* y, nint ldy, int n, int k, int r0, int r1, int p0, int p1)
    {
        int nr = PanelWidth;
        float* edge = stackalloc float[Rows * 2 * 64]; // the right-edge panel's tile, copied out column by column
        for (int r = r0; r < r1; r += Rows)
        {
            int rows = Math.Min(Rows, r1 - r);
            for (int p = p0; p < p1; p++)
            {
                int columns = Math.Min(nr, n - p * nr);
                float* panel = packed + (long)p * k * nr, b = bias + p * nr;
                float* target = columns == nr ? y + r * ldy + p * nr : edge;
                nint stride = columns == nr ? ldy : nr;
                if (rows == Rows) Micro6(x + r * ldx, ldx, panel, b, target, stride, k);
                else for (int i = 0; i < rows; i++) Micro1(x + (r + i) * ldx, panel, b, target + i * stride, k);
                if (columns == nr) continue;
                for (int i = 0; i < rows; i++) new Span<float>(edge + i * nr, columns).CopyTo(new Span<float>(y + (r + i) * ldy + p * nr, columns));
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Micro6(float* x, nint ldx, float* panel, float* bias, float* y, nint ldy, int k)
    {
        int w = TOps.Count, nr = 2 * w;
        TVec c00 = TOps.Load(bias), c01 = TOps.Load(bias + w), c10 = TOps.Load(bias), c11 = TOps.Load(bias + w);
        TVec c20 = TOps.Load(bias), c21 = TOps.Load(bias + w), c30 = TOps.Load(bias), c31 = TOps.Load(bias + w);
        TVec c40 = TOps.Load(bias), c41 = TOps.Load(bias + w), c50 = TOps.Load(bias), c51 = TOps.Load(bias + w);
        float* x0 = x, x1 = x + ldx, x2 = x1 + ldx, x3 = x2 + ldx, x4 = x3 + ldx, x5 = x4 + ldx;
        for (int t = 0; t < k; t++)
        {
            TVec w0 = TOps.Load(panel), w1 = TOps.Load(panel + w);
            panel += nr;
            TVec a = TOps.Create(x0[t]);
            c00 = TOps.MultiplyAdd(a, w0, c00); c01 = TOps.MultiplyAdd(a, w1, c01);
            a = TOps.Create(x1[t]);
            c10 = TOps.MultiplyAdd(a, w0, c10); c11 = TOps.MultiplyAdd(a, w1, c11);
            a = TOps.Create(x2[t]);
            c20 = TOps.MultiplyAdd(a, w0, c20); c21 = TOps.MultiplyAdd(a, w1, c21);
            a = TOps.Create(x3[t]);
            c30 = TOps.MultiplyAdd(a, w0, c30); c31 = TOps.MultiplyAdd(a, w1, c31);
            a = TOps.Create(x4[t]);
            c40 = TOps.MultiplyAdd(a, w0, c40); c41 = TOps.MultiplyAdd(a, w1, c41);
            a = TOps.Create(x5[t]);
            c50 = TOps.MultiplyAdd(a, w0, c50); c51 = TOps.MultiplyAdd(a, w1, c51);
        }
        TOps.Store(c00, y); TOps.Store(c01, y + w);
        TOps.Store(c10, y + ldy); TOps.Store(c11, y + ldy + w);
        TOps.Store(c20, y + 2 * ldy); TOps.Store(c21, y + 2 * ldy + w);
        TOps.Store(c30, y + 3 * ldy); TOps.Store(c31, y + 3 * ldy + w);
        TOps.Store(c40, y + 4 * ldy); TOps.Store(c41, y + 4 * ldy + w);
        TOps.Store(c50, y + 5 * ldy); TOps.Store(c51, y + 5 * ldy + w);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Micro1(float* x, float* panel, float* bias, float* y, int k)
    {
        int w = TOps.Count, nr = 2 * w;
        TVec c0 = TOps.Load(bias), c1 = TOps.Load(bias + w);
        for (int t = 0; t < k; t++)
        {
            TVec a = TOps.Create(x[t]);
            c0 = TOps.MultiplyAdd(a, TOps.Load(panel), c0);
            c1 = TOps.MultiplyAdd(a, TOps.Load(panel + w), c1);
            panel += nr;
        }
        TOps.Store(c0, y);
        TOps.Store(c1, y + w);
    }
}
