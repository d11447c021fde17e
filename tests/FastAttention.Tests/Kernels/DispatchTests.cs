using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using FastAttention.Kernels;
using Xunit;

namespace FastAttention.Tests.Kernels;

public class DispatchTests
{
    /// <summary>The CI reruns under DOTNET_* settings only prove something if dispatch follows them.</summary>
    [Fact]
    public void Best_FollowsTheRuntimeIsaSettings()
    {
        string? hw = Environment.GetEnvironmentVariable("DOTNET_EnableHWIntrinsic");
        string? avx2 = Environment.GetEnvironmentVariable("DOTNET_EnableAVX2");
        string? width = Environment.GetEnvironmentVariable("DOTNET_PreferredVectorBitWidth");
        TestContext.Current.SendDiagnosticMessage($"kernel width: {KernelDispatch.Best}");
        Console.WriteLine($"FastAttention kernel width in this run: {KernelDispatch.Best}");
        if (hw == "0") Assert.Equal(KernelWidth.Scalar, KernelDispatch.Best);
        else if (avx2 == "0" || width == "128") Assert.Equal(KernelWidth.Vector128, KernelDispatch.Best);
        else if (width == "256") Assert.Equal(Avx2.IsSupported ? KernelWidth.Vector256 : KernelWidth.Vector128, KernelDispatch.Best);
        else if (Avx512F.IsSupported && Vector512.IsHardwareAccelerated) Assert.Equal(KernelWidth.Vector512, KernelDispatch.Best);
        else if (Avx2.IsSupported) Assert.Equal(KernelWidth.Vector256, KernelDispatch.Best);
    }
}
