using System.Runtime.Intrinsics;

namespace FastAttention.Kernels;

/// <summary>The vector width a kernel instantiation uses.</summary>
internal enum KernelWidth
{
    Scalar = 1,
    Vector128 = 128,
    Vector256 = 256,
    Vector512 = 512,
}

/// <summary>The one place that picks an instruction-set width: the widest the JIT accelerates, scalar always present.</summary>
internal static class KernelDispatch
{
    public static KernelWidth Best { get; } =
        Vector512.IsHardwareAccelerated ? KernelWidth.Vector512
        : Vector256.IsHardwareAccelerated ? KernelWidth.Vector256
        : Vector128.IsHardwareAccelerated ? KernelWidth.Vector128
        : KernelWidth.Scalar;

    /// <summary>Every width, accelerated or not; unaccelerated ones run in software, exactly, for tests.</summary>
    public static IReadOnlyList<KernelWidth> All { get; } =
        [KernelWidth.Scalar, KernelWidth.Vector128, KernelWidth.Vector256, KernelWidth.Vector512];

    public static bool IsAccelerated(KernelWidth width) => width switch
    {
        KernelWidth.Scalar => true,
        KernelWidth.Vector128 => Vector128.IsHardwareAccelerated,
        KernelWidth.Vector256 => Vector256.IsHardwareAccelerated,
        KernelWidth.Vector512 => Vector512.IsHardwareAccelerated,
        _ => false,
    };

    public static int Lanes(KernelWidth width) => width switch
    {
        KernelWidth.Vector128 => Vector128<float>.Count,
        KernelWidth.Vector256 => Vector256<float>.Count,
        KernelWidth.Vector512 => Vector512<float>.Count,
        _ => 1,
    };
}
