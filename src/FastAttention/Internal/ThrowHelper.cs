using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;

namespace FastAttention.Internal;

/// <summary>Throws kept out of hot methods so that they stay small and inlinable.</summary>
[StackTraceHidden]
internal static class ThrowHelper
{
    [DoesNotReturn]
    public static void ArgumentOutOfRange(string paramName, string message) =>
        throw new ArgumentOutOfRangeException(paramName, message);

    [DoesNotReturn]
    public static void Argument(string paramName, string message) =>
        throw new ArgumentException(message, paramName);

    /// <summary>A tensor inside a parameter (<paramref name="tensor"/>, say "masks.Bias") is too short.</summary>
    [DoesNotReturn]
    public static void TooShort(string paramName, string tensor, string shape, long required, int actual) =>
        throw new ArgumentException(
            $"'{tensor}' is too short for its shape {shape}: it needs at least {required} elements but has {actual}.",
            paramName);

    [DoesNotReturn]
    public static void TooShort(string paramName, string shape, long required, int actual) =>
        throw new ArgumentException(
            $"'{paramName}' is too short for its shape {shape}: it needs at least {required} elements but has {actual}.",
            paramName);
}
