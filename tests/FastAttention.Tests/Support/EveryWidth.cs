using System.Runtime.Intrinsics;
using FastAttention.Kernels;

namespace FastAttention.Tests.Support;

/// <summary>A check written once over a vector width, for <see cref="EveryWidth.Run"/>.</summary>
internal interface IWidthCheck
{
    void Run<TVec, TOps>() where TVec : unmanaged where TOps : IVectorOps<TVec>;
}

/// <summary>Runs a width-generic check at every width the kernels have (hardware or fallback path, whichever this run has).</summary>
internal static class EveryWidth
{
    public static void Run<TCheck>(TCheck check) where TCheck : IWidthCheck
    {
        check.Run<Vector512<float>, Vector512Ops>();
        check.Run<Vector256<float>, Vector256Ops>();
        check.Run<Vector128<float>, Vector128Ops>();
        check.Run<float, ScalarOps>();
    }
}
