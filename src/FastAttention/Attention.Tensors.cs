using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FastAttention.Buffers;
using FastAttention.Internal;
using FastAttention.Kernels;

namespace FastAttention;

public static partial class Attention
{
    /// <summary>
    /// Computes attention over tensors: query <c>[B, Hq, Lq, D]</c>, key <c>[B, Hkv, Lk, D]</c>, value <c>[B, Hkv, Lk, Dv]</c>
    /// into output <c>[B, Hq, Lq, Dv]</c>, each with any non-negative strides and a contiguous last dimension
    /// (a permuted view of a BSHD tensor works as it is).
    /// </summary>
    /// <exception cref="ArgumentException">A tensor is not rank 4, its sizes disagree with the others, its last dimension is not contiguous, or the output overlaps an input.</exception>
    public static void Compute(ReadOnlyTensorSpan<float> query, ReadOnlyTensorSpan<float> key, ReadOnlyTensorSpan<float> value, TensorSpan<float> output,
        in AttentionOptions options = default) =>
        Compute(query, key, value, output, options, default);

    /// <summary>
    /// Computes attention over tensors with masks, biases and per-head terms (see <see cref="AttentionMasks"/>, whose
    /// tensors are dense: bias and mask <c>[B|1, Hq|1, Lq, Lk]</c>).
    /// </summary>
    /// <exception cref="ArgumentException">A tensor is not rank 4, its sizes disagree with the others, its last dimension is not contiguous, a mask tensor is too short, or the output overlaps an input.</exception>
    public static void Compute(ReadOnlyTensorSpan<float> query, ReadOnlyTensorSpan<float> key, ReadOnlyTensorSpan<float> value, TensorSpan<float> output,
        in AttentionOptions options, scoped in AttentionMasks masks)
    {
        ReadOnlySpan<float> q = View(query, nameof(query), out TensorLayout ql);
        ReadOnlySpan<float> k = View(key, nameof(key), out TensorLayout kl);
        ReadOnlySpan<float> v = View(value, nameof(value), out TensorLayout vl);
        Span<float> o = View(output, nameof(output), out TensorLayout ol);
        ReadOnlySpan<nint> qs = query.Lengths, ks = key.Lengths, vs = value.Lengths, os = output.Lengths;
        if (ks[0] != qs[0] || ks[3] != qs[3])
            ThrowHelper.Argument(nameof(key), $"key must be [{qs[0]}, Hkv, Lk, {qs[3]}] to match query [{qs[0]}, {qs[1]}, {qs[2]}, {qs[3]}]; got [{ks[0]}, {ks[1]}, {ks[2]}, {ks[3]}].");
        if (vs[0] != ks[0] || vs[1] != ks[1] || vs[2] != ks[2])
            ThrowHelper.Argument(nameof(value), $"value must be [{ks[0]}, {ks[1]}, {ks[2]}, Dv] to match key; got [{vs[0]}, {vs[1]}, {vs[2]}, {vs[3]}].");
        if (os[0] != qs[0] || os[1] != qs[1] || os[2] != qs[2] || os[3] != vs[3])
            ThrowHelper.Argument(nameof(output), $"output must be [{qs[0]}, {qs[1]}, {qs[2]}, {vs[3]}]; got [{os[0]}, {os[1]}, {os[2]}, {os[3]}].");
        var shape = new AttentionShape((int)qs[0], (int)qs[1], (int)ks[1], (int)qs[2], (int)ks[2], (int)qs[3], (int)vs[3], ql, kl, vl, ol);
        Run(q, k, v, o, default, false, shape, options, KernelDispatch.Best, WorkspacePool.Shared, null, masks);
    }

    private static ReadOnlySpan<float> View(ReadOnlyTensorSpan<float> tensor, string name, out TensorLayout layout)
    {
        int length;
        (length, layout) = Describe(tensor.Lengths, tensor.Strides, name);
        ref float first = ref Unsafe.AsRef(in tensor.GetPinnableReference());
        return length == 0 ? default : MemoryMarshal.CreateReadOnlySpan(ref first, length);
    }

    private static Span<float> View(TensorSpan<float> tensor, string name, out TensorLayout layout)
    {
        int length;
        (length, layout) = Describe(tensor.Lengths, tensor.Strides, name);
        return length == 0 ? default : MemoryMarshal.CreateSpan(ref tensor.GetPinnableReference(), length);
    }

    private static (int Length, TensorLayout Layout) Describe(ReadOnlySpan<nint> lengths, ReadOnlySpan<nint> strides, string name)
    {
        if (lengths.Length != 4)
            ThrowHelper.Argument(name, $"{name} must be a rank-4 tensor [batch, heads, rows, columns]; got rank {lengths.Length}.");
        if (lengths[3] > 1 && strides[3] != 1)
            ThrowHelper.Argument(name, $"{name} must have a contiguous last dimension (stride 1); got stride {strides[3]}.");
        for (int i = 0; i < 3; i++)
        {
            if (strides[i] < 0) ThrowHelper.Argument(name, $"{name} has a negative stride {strides[i]} in dimension {i}.");
            if (lengths[i] > int.MaxValue) ThrowHelper.Argument(name, $"{name} dimension {i} is too long: {lengths[i]}.");
        }
        long last = 0;
        for (int i = 0; i < 4; i++)
        {
            if (lengths[i] == 0) return (0, new TensorLayout(strides[0], strides[1], strides[2]));
            last += (lengths[i] - 1) * (long)(i == 3 ? 1 : strides[i]);
        }
        if (last >= int.MaxValue) ThrowHelper.Argument(name, $"{name} spans more than {int.MaxValue} elements.");
        return ((int)last + 1, new TensorLayout(strides[0], strides[1], strides[2]));
    }
}
