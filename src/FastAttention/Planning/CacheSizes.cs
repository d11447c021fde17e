using System.Runtime.Intrinsics.X86;

namespace FastAttention.Planning;

/// <summary>
/// The per-core data cache sizes, read once from CPUID's deterministic cache parameters (leaf 4 on Intel,
/// 0x8000001D on AMD), with defaults where the CPU does not report them (not x86, or an old or unknown one). Block
/// sizes that change only the order in which the same sums are stored and reloaded (never their rounding) may follow
/// them; block sizes that change results must not, or one build would give different bits on different machines of
/// the same width for no reason a caller can see.
/// </summary>
internal static class CacheSizes
{
    /// <summary>Bytes of L1 data cache per core (32 KiB on Zen 3, 48 KiB on Zen 5 and recent Intel cores).</summary>
    public static int L1Data { get; } = Read(level: 1) ?? 32 * 1024;

    private static int? Read(int level)
    {
        if (!X86Base.IsSupported) return null;
        (int maxLeaf, int vendorB, _, _) = X86Base.CpuId(0, 0);
        int leaf;
        if (vendorB == 0x68747541) // "Auth"enticAMD: the extended leaf, where the topology extensions announce it
        {
            (int maxExtended, _, _, _) = X86Base.CpuId(unchecked((int)0x80000000), 0);
            (_, _, int features, _) = X86Base.CpuId(unchecked((int)0x80000001), 0);
            if ((uint)maxExtended < 0x8000001Du || (features & (1 << 22)) == 0) return null;
            leaf = unchecked((int)0x8000001D);
        }
        else
        {
            if (maxLeaf < 4) return null;
            leaf = 4;
        }
        for (int index = 0; index < 16; index++)
        {
            (int eax, int ebx, int ecx, _) = X86Base.CpuId(leaf, index);
            int type = eax & 0x1F; // 0: no more caches, 1: data, 2: instruction, 3: unified
            if (type == 0) break;
            if (((eax >> 5) & 7) != level || type == 2) continue;
            long bytes = (long)(((uint)ebx >> 22) + 1) * (((ebx >> 12) & 0x3FF) + 1) * ((ebx & 0xFFF) + 1) * ((long)(uint)ecx + 1);
            return bytes is >= 4096 and <= 1 << 26 ? (int)bytes : null;
        }
        return null;
    }
}
