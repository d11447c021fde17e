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
    private float* _packedKeys;
    private bool _packing;

    private AttentionJob(WorkspacePool workspaces) : base(workspaces) { }

    public static AttentionJob ForCurrentThread(WorkspacePool workspaces) => t_current ??= new AttentionJob(workspaces);

    /// <summary>Runs both phases; returns when every item is done.</summary>
    public void Run(in KernelArguments args, in AttentionPlan plan, float* packedKeys)
    {
        _args = args;
        _plan = plan;
        _packedKeys = packedKeys;
        try
        {
            _packing = true;
            Run(plan.PackItems, plan.Threads);
            _packing = false;
            Run(plan.ComputeItems, plan.Threads);
        }
        finally
        {
            _args = default;
            _packedKeys = null;
        }
    }

    protected override void Execute(int item, Workspace workspace)
    {
        if (_packing)
        {
            switch (_plan.Width)
            {
                case KernelWidth.Vector512: PrefillKernel<Vector512<float>, Vector512Ops>.PackKeys(_args, _plan, _packedKeys, item); break;
                case KernelWidth.Vector256: PrefillKernel<Vector256<float>, Vector256Ops>.PackKeys(_args, _plan, _packedKeys, item); break;
                case KernelWidth.Vector128: PrefillKernel<Vector128<float>, Vector128Ops>.PackKeys(_args, _plan, _packedKeys, item); break;
                default: PrefillKernel<float, ScalarOps>.PackKeys(_args, _plan, _packedKeys, item); break;
            }
            return;
        }
        switch (_plan.Width)
        {
            case KernelWidth.Vector512: PrefillKernel<Vector512<float>, Vector512Ops>.Compute(_args, _plan, _packedKeys, workspace, item); break;
            case KernelWidth.Vector256: PrefillKernel<Vector256<float>, Vector256Ops>.Compute(_args, _plan, _packedKeys, workspace, item); break;
            case KernelWidth.Vector128: PrefillKernel<Vector128<float>, Vector128Ops>.Compute(_args, _plan, _packedKeys, workspace, item); break;
            default: PrefillKernel<float, ScalarOps>.Compute(_args, _plan, _packedKeys, workspace, item); break;
        }
    }
}
