using System.Runtime.Intrinsics;
using FastAttention.Buffers;
using FastAttention.Kernels;

namespace FastAttention.Scheduling;

/// <summary>One calling thread's reusable GEMM job: items are blocks of rows × panel groups, or panels to pack.</summary>
internal sealed unsafe class GemmJob : ParallelJob
{
    [ThreadStatic] private static GemmJob? t_current;

    // Rows and packed panels per item: a block's X rows stay in L1/L2 while its panels stream past.
    internal const int BlockRows = 48;
    internal const int BlockPanels = 8;

    private float* _x, _packed, _bias, _y, _w;
    private nint _ldx, _ldy, _ldw;
    private int _m, _n, _k, _rowBlocks, _panelBlocks;
    private KernelWidth _width;
    private bool _packing;

    private GemmJob(WorkspacePool workspaces) : base(workspaces) { }

    public static GemmJob ForCurrentThread(WorkspacePool workspaces)
    {
        GemmJob? job = t_current;
        if (job is null || job.Workspaces != workspaces) t_current = job = new GemmJob(workspaces);
        return job;
    }

    public static int PanelWidth(KernelWidth width) => 2 * KernelDispatch.Lanes(width);

    /// <summary>Packs W [n, k] into panels (see <see cref="GemmKernel{TVec, TOps}"/>), one item per panel.</summary>
    public void Pack(float* w, nint ldw, int n, int k, float* packed, KernelWidth width, int threads)
    {
        _w = w; _ldw = ldw; _n = n; _k = k; _packed = packed; _width = width; _packing = true;
        int panels = (n + PanelWidth(width) - 1) / PanelWidth(width);
        Run(panels, (long)n * k < 1 << 18 ? 1 : threads);
    }

    /// <summary>Y [m, n] = X [m, k]·Wᵀ + bias from packed W; bias is padded to whole panels (zeros for none).</summary>
    public void Multiply(float* x, nint ldx, float* packed, float* bias, float* y, nint ldy, int m, int n, int k, KernelWidth width, int threads)
    {
        _x = x; _ldx = ldx; _packed = packed; _bias = bias; _y = y; _ldy = ldy; _m = m; _n = n; _k = k; _width = width; _packing = false;
        int panels = (n + PanelWidth(width) - 1) / PanelWidth(width);
        _rowBlocks = (m + BlockRows - 1) / BlockRows;
        _panelBlocks = (panels + BlockPanels - 1) / BlockPanels;
        long work = (long)m * n * k;
        Run(_rowBlocks * _panelBlocks, work < Planning.Planner.ParallelThreshold ? 1 : threads);
    }

    protected override void Execute(int item, Workspace workspace)
    {
        switch (_width)
        {
            case KernelWidth.Vector512: Execute<Vector512<float>, Vector512Ops>(item); break;
            case KernelWidth.Vector256: Execute<Vector256<float>, Vector256Ops>(item); break;
            case KernelWidth.Vector128: Execute<Vector128<float>, Vector128Ops>(item); break;
            default: Execute<float, ScalarOps>(item); break;
        }
    }

    private void Execute<TVec, TOps>(int item)
        where TVec : unmanaged
        where TOps : IVectorOps<TVec>
    {
        if (_packing)
        {
            GemmKernel<TVec, TOps>.PackPanel(_w, _ldw, _n, _k, _packed, item);
            return;
        }
        int rowBlock = item / _panelBlocks, panelBlock = item % _panelBlocks;
        int panels = (_n + GemmKernel<TVec, TOps>.PanelWidth - 1) / GemmKernel<TVec, TOps>.PanelWidth;
        int r0 = rowBlock * BlockRows, r1 = Math.Min(_m, r0 + BlockRows);
        int p0 = panelBlock * BlockPanels, p1 = Math.Min(panels, p0 + BlockPanels);
        GemmKernel<TVec, TOps>.Block(_x, _ldx, _packed, _bias, _y, _ldy, _n, _k, r0, r1, p0, p1);
    }
}
