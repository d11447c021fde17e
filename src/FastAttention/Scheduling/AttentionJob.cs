using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using FastAttention.Buffers;
using FastAttention.Kernels;
using FastAttention.Planning;

namespace FastAttention.Scheduling;

/// <summary>
/// One calling thread's reusable job: it holds the call's pinned pointers while the call runs and dispatches
/// each item to the kernel instantiation of the plan's width (the only switch on width, outside the hot loops).
/// </summary>
internal sealed unsafe class AttentionJob : ParallelJob
{
    [ThreadStatic] private static AttentionJob? t_current;

    private KernelArguments _args;
    private AttentionPlan _plan;
    private float* _scratch; // prefill: packed keys (then widened values); decode: per-slice partial states
    private Phase _phase;

    private enum Phase { PackKeys, Tiles, Slices, Merge, Small }

    private AttentionJob(WorkspacePool workspaces) : base(workspaces) { }

    /// <summary>The calling thread's job (a call is synchronous, so one per thread suffices), bound to <paramref name="workspaces"/>.</summary>
    public static AttentionJob ForCurrentThread(WorkspacePool workspaces)
    {
        AttentionJob? job = t_current;
        if (job is null || job.Workspaces != workspaces) t_current = job = new AttentionJob(workspaces); // tests pass their own pools
        return job;
    }

    /// <summary>
    /// Runs both phases; returns when every item is done. The calling thread rents one call workspace: its shared
    /// scratch (<paramref name="scratchLength"/> floats: packed keys or decode partials) serves every worker, and
    /// each participant, helpers included, works in its own worker workspace from it.
    /// </summary>
    public void Run(in KernelArguments args, in AttentionPlan plan, int scratchLength)
    {
        CallWorkspace call = Workspaces.Rent();
        try
        {
            fixed (float* scratch = &(scratchLength == 0 ? ref Unsafe.NullRef<float>() : ref call.Shared(scratchLength)))
            {
                _args = args;
                _plan = plan;
                _scratch = scratch;
                if (plan.Kind == KernelKind.Small)
                {
                    _phase = Phase.Small;
                    Run(plan.HeadPairs, plan.Threads, call, plan.Scratch);
                }
                else if (plan.Kind == KernelKind.Decode)
                {
                    _phase = Phase.Slices;
                    Run(plan.SliceItems, plan.Threads, call, plan.Scratch);
                    if (plan.Splits > 1)
                    {
                        _phase = Phase.Merge;
                        Run(plan.HeadPairs, plan.Threads, call, default);
                    }
                }
                else
                {
                    _phase = Phase.PackKeys;
                    Run(plan.PackItems, plan.Threads, call, plan.PackScratch);
                    if (plan.StagedValueLength > 0)
                    {
                        // The values were widened during packing: the tiles read them as fp32 rows from the scratch.
                        long rowsPerPair = (long)plan.KeyTiles * plan.KeyTile;
                        _args.Value = new Operand
                        {
                            Data = (byte*)(scratch + plan.PackedKeyLength),
                            Type = ElementType.Float32,
                            RowStride = args.ValueHeadSize,
                            HeadStride = (nint)(rowsPerPair * args.ValueHeadSize),
                            BatchStride = (nint)(rowsPerPair * args.ValueHeadSize * args.KeyValueHeads),
                        };
                    }
                    _phase = Phase.Tiles;
                    Run(plan.ComputeItems, plan.Threads, call, plan.Scratch);
                }
            }
        }
        finally
        {
            _args = default;
            _scratch = null;
            Workspaces.Return(call);
        }
    }

    protected override void Execute(int item, Workspace workspace)
    {
        switch (_plan.Width)
        {
            case KernelWidth.Vector512: Execute<Vector512<float>, Vector512Ops>(item, workspace); break;
            case KernelWidth.Vector256: Execute<Vector256<float>, Vector256Ops>(item, workspace); break;
            case KernelWidth.Vector128: Execute<Vector128<float>, Vector128Ops>(item, workspace); break;
            default: Execute<float, ScalarOps>(item, workspace); break;
        }
    }

    private void Execute<TVec, TOps>(int item, Workspace workspace)
        where TVec : unmanaged
        where TOps : IVectorOps<TVec>
    {
        switch (_phase)
        {
            case Phase.PackKeys: PrefillKernel<TVec, TOps>.PackKeys(_args, _plan, _scratch, workspace, item); break;
            case Phase.Tiles: PrefillKernel<TVec, TOps>.Compute(_args, _plan, _scratch, workspace, item); break;
            case Phase.Slices: DecodeKernel<TVec, TOps>.Slice(_args, _plan, _scratch, workspace, item); break;
            case Phase.Small: SmallKernel<TVec, TOps>.Compute(_args, workspace, item); break;
            default: DecodeKernel<TVec, TOps>.Merge(_args, _plan, _scratch, item); break;
        }
    }
}
