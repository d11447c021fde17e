using System.Buffers;
using System.Runtime.InteropServices;
using FastAttention.Buffers;
using FastAttention.Internal;
using FastAttention.Kernels;
using FastAttention.Scheduling;

namespace FastAttention;

/// <summary>
/// A linear layer's weight <c>W [outputs, inputs]</c> (and optional bias) packed once for <see cref="Gemm"/>:
/// panels of output columns, k-major, for the kernel width of this machine. Immutable; safe to share between threads.
/// </summary>
public sealed class PackedWeights
{
    internal readonly float[] Panels;
    internal readonly float[] Bias; // padded to whole panels; zeros when the layer has none
    internal readonly KernelWidth Width;

    private PackedWeights(int outputs, int inputs, KernelWidth width, float[] panels, float[] bias)
    {
        Outputs = outputs;
        Inputs = inputs;
        Width = width;
        Panels = panels;
        Bias = bias;
    }

    /// <summary>Rows of W: the output features.</summary>
    public int Outputs { get; }

    /// <summary>Columns of W: the input features.</summary>
    public int Inputs { get; }

    /// <summary>Packs <paramref name="weight"/> <c>[outputs, inputs]</c> row-major and <paramref name="bias"/> <c>[outputs]</c> (empty: none).</summary>
    /// <exception cref="ArgumentException">A span is too short for the sizes.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A size is below 1.</exception>
    public static PackedWeights Pack(ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, int outputs, int inputs) =>
        Pack(weight, bias, outputs, inputs, KernelDispatch.Best);

    internal static unsafe PackedWeights Pack(ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, int outputs, int inputs, KernelWidth width)
    {
        if (outputs < 1) ThrowHelper.ArgumentOutOfRange(nameof(outputs), $"outputs must be at least 1; got {outputs}.");
        if (inputs < 1) ThrowHelper.ArgumentOutOfRange(nameof(inputs), $"inputs must be at least 1; got {inputs}.");
        if (weight.Length < (long)outputs * inputs) ThrowHelper.TooShort(nameof(weight), $"[{outputs}, {inputs}]", (long)outputs * inputs, weight.Length);
        if (!bias.IsEmpty && bias.Length < outputs) ThrowHelper.TooShort(nameof(bias), $"[{outputs}]", outputs, bias.Length);
        int nr = GemmJob.PanelWidth(width), panels = (outputs + nr - 1) / nr;
        var packed = new float[(long)panels * nr * inputs];
        var paddedBias = new float[panels * nr];
        if (!bias.IsEmpty) bias[..outputs].CopyTo(paddedBias);
        fixed (float* w = weight)
        fixed (float* p = packed)
            GemmJob.ForCurrentThread(WorkspacePool.Shared).Pack(w, inputs, outputs, inputs, p, width, Environment.ProcessorCount);
        return new PackedWeights(outputs, inputs, width, packed, paddedBias);
    }
}

/// <summary>
/// Matrix multiply for linear layers, <c>Y = X·Wᵀ + b</c> in fp32: packed panels, a register-blocked micro-kernel
/// written once over the vector width, the same thread-pool scheduler as attention, and results identical for every
/// thread count. Allocation-free per call (the overload taking an unpacked W packs into a pooled array).
/// </summary>
public static class Gemm
{
    /// <summary><c>Y [rows, W.Outputs] = X [rows, W.Inputs]·Wᵀ + b</c>, all row-major and dense.</summary>
    /// <param name="x">X, <c>[rows, weights.Inputs]</c>.</param>
    /// <param name="weights">W and b, packed.</param>
    /// <param name="y">Y, <c>[rows, weights.Outputs]</c>; must not overlap <paramref name="x"/>.</param>
    /// <param name="rows">Rows of X and Y.</param>
    /// <param name="maxDegreeOfParallelism">Threads to use at most (null: every core).</param>
    /// <exception cref="ArgumentException">A span is too short, or Y overlaps X.</exception>
    public static void Multiply(ReadOnlySpan<float> x, PackedWeights weights, Span<float> y, int rows, int? maxDegreeOfParallelism = null)
    {
        ArgumentNullException.ThrowIfNull(weights);
        Multiply(x, weights, y, rows, weights.Inputs, weights.Outputs, maxDegreeOfParallelism);
    }

    /// <summary>As <see cref="Multiply(ReadOnlySpan{float}, PackedWeights, Span{float}, int, int?)"/> with row strides: X rows <paramref name="xStride"/> apart, Y rows <paramref name="yStride"/> apart.</summary>
    /// <param name="x">X, <c>[rows, weights.Inputs]</c>, rows <paramref name="xStride"/> apart.</param>
    /// <param name="weights">W and b, packed.</param>
    /// <param name="y">Y, <c>[rows, weights.Outputs]</c>, rows <paramref name="yStride"/> apart.</param>
    /// <param name="rows">Rows of X and Y.</param>
    /// <param name="xStride">Elements between rows of X, at least weights.Inputs.</param>
    /// <param name="yStride">Elements between rows of Y, at least weights.Outputs.</param>
    /// <param name="maxDegreeOfParallelism">Threads to use at most (null: every core).</param>
    /// <exception cref="ArgumentException">A span is too short, a stride too small, or Y overlaps X.</exception>
    public static unsafe void Multiply(ReadOnlySpan<float> x, PackedWeights weights, Span<float> y, int rows, int xStride, int yStride, int? maxDegreeOfParallelism = null)
    {
        ArgumentNullException.ThrowIfNull(weights);
        int k = weights.Inputs, n = weights.Outputs;
        if (rows < 0) ThrowHelper.ArgumentOutOfRange(nameof(rows), $"rows must be at least 0; got {rows}.");
        if (xStride < k) ThrowHelper.ArgumentOutOfRange(nameof(xStride), $"xStride must be at least the input count {k}; got {xStride}.");
        if (yStride < n) ThrowHelper.ArgumentOutOfRange(nameof(yStride), $"yStride must be at least the output count {n}; got {yStride}.");
        if (maxDegreeOfParallelism is < 1) ThrowHelper.ArgumentOutOfRange(nameof(maxDegreeOfParallelism), $"maxDegreeOfParallelism must be at least 1; got {maxDegreeOfParallelism}.");
        if (rows == 0) return;
        long xLength = (long)(rows - 1) * xStride + k, yLength = (long)(rows - 1) * yStride + n;
        if (x.Length < xLength) ThrowHelper.TooShort(nameof(x), $"[{rows}, {k}] (row stride {xStride})", xLength, x.Length);
        if (y.Length < yLength) ThrowHelper.TooShort(nameof(y), $"[{rows}, {n}] (row stride {yStride})", yLength, y.Length);
        if (y[..(int)yLength].Overlaps(x[..(int)xLength])) ThrowHelper.Argument(nameof(y), "y overlaps x: the output must not share memory with the input.");
        fixed (float* px = x)
        fixed (float* py = y)
        fixed (float* packed = weights.Panels)
        fixed (float* bias = weights.Bias)
        {
            GemmJob.ForCurrentThread(WorkspacePool.Shared).Multiply(px, xStride, packed, bias, py, yStride, rows, n, k, weights.Width,
                maxDegreeOfParallelism ?? Environment.ProcessorCount);
        }
    }

    /// <summary><c>Y [rows, outputs] = X [rows, inputs]·Wᵀ + b</c> with W <c>[outputs, inputs]</c> packed for this call into a pooled array.</summary>
    /// <param name="x">X, <c>[rows, inputs]</c>.</param>
    /// <param name="weight">W, <c>[outputs, inputs]</c> (a linear layer's weight).</param>
    /// <param name="bias">b, <c>[outputs]</c>, or empty.</param>
    /// <param name="y">Y, <c>[rows, outputs]</c>.</param>
    /// <param name="rows">Rows of X and Y.</param>
    /// <param name="outputs">Rows of W.</param>
    /// <param name="inputs">Columns of W and of X.</param>
    /// <param name="maxDegreeOfParallelism">Threads to use at most (null: every core).</param>
    /// <exception cref="ArgumentException">A span is too short, or Y overlaps an input.</exception>
    public static unsafe void Multiply(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, Span<float> y,
        int rows, int outputs, int inputs, int? maxDegreeOfParallelism = null) =>
        Multiply(x, weight, bias, y, rows, outputs, inputs, maxDegreeOfParallelism, KernelDispatch.Best);

    internal static unsafe void Multiply(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, Span<float> y,
        int rows, int outputs, int inputs, int? maxDegreeOfParallelism, KernelWidth width)
    {
        if (rows < 0) ThrowHelper.ArgumentOutOfRange(nameof(rows), $"rows must be at least 0; got {rows}.");
        if (outputs < 1) ThrowHelper.ArgumentOutOfRange(nameof(outputs), $"outputs must be at least 1; got {outputs}.");
        if (inputs < 1) ThrowHelper.ArgumentOutOfRange(nameof(inputs), $"inputs must be at least 1; got {inputs}.");
        if (maxDegreeOfParallelism is < 1) ThrowHelper.ArgumentOutOfRange(nameof(maxDegreeOfParallelism), $"maxDegreeOfParallelism must be at least 1; got {maxDegreeOfParallelism}.");
        long xLength = (long)rows * inputs, yLength = (long)rows * outputs, wLength = (long)outputs * inputs;
        if (x.Length < xLength) ThrowHelper.TooShort(nameof(x), $"[{rows}, {inputs}]", xLength, x.Length);
        if (weight.Length < wLength) ThrowHelper.TooShort(nameof(weight), $"[{outputs}, {inputs}]", wLength, weight.Length);
        if (!bias.IsEmpty && bias.Length < outputs) ThrowHelper.TooShort(nameof(bias), $"[{outputs}]", outputs, bias.Length);
        if (y.Length < yLength) ThrowHelper.TooShort(nameof(y), $"[{rows}, {outputs}]", yLength, y.Length);
        Span<float> written = y[..(int)yLength];
        if (written.Overlaps(x[..(int)xLength]) || written.Overlaps(weight[..(int)wLength]) || written.Overlaps(bias))
            ThrowHelper.Argument(nameof(y), "y overlaps an input: the output must not share memory with x, weight or bias.");
        if (rows == 0) return;

        int nr = GemmJob.PanelWidth(width), panels = (outputs + nr - 1) / nr;
        int threads = maxDegreeOfParallelism ?? Environment.ProcessorCount;
        float[] packed = ArrayPool<float>.Shared.Rent(checked(panels * nr * inputs));
        float[] paddedBias = ArrayPool<float>.Shared.Rent(panels * nr);
        try
        {
            paddedBias.AsSpan(0, panels * nr).Clear();
            bias[..Math.Min(bias.Length, outputs)].CopyTo(paddedBias);
            fixed (float* px = x)
            fixed (float* pw = weight)
            fixed (float* pp = packed)
            fixed (float* pb = paddedBias)
            fixed (float* py = y)
            {
                GemmJob job = GemmJob.ForCurrentThread(WorkspacePool.Shared);
                job.Pack(pw, inputs, outputs, inputs, pp, width, threads);
                job.Multiply(px, inputs, pp, pb, py, outputs, rows, outputs, inputs, width, threads);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(packed);
            ArrayPool<float>.Shared.Return(paddedBias);
        }
    }
}
