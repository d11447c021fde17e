using System.Buffers.Binary;
using System.Text;

/// <summary>
/// The remedy of ../shared/BENCHMARKS.md for TorchSharp on Debian 12: its native wrapper libLibTorchSharp.so requires
/// the symbol version GLIBCXX_3.4.32 (GCC 13), which Debian 12's libstdc++ lacks; the only symbol bound to it is
/// std::ios_base_library_init(), which nothing calls. Marking that version requirement weak (VER_FLG_WEAK in its
/// Vernaux entry of .gnu.version_r) lets the loader accept the library. Applied to the copy in the build output only,
/// and only when the system's libstdc++ lacks the version.
/// </summary>
internal static class ElfVersionPatch
{
    private const string Version = "GLIBCXX_3.4.32";
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const ushort VerFlgWeak = 0x2;

    /// <summary>Patches every libLibTorchSharp.so under the application's directory if needed; returns what it did.</summary>
    public static string Apply()
    {
        if (!OperatingSystem.IsLinux()) return "not Linux: nothing to patch";
        if (SystemHasVersion()) return $"the system libstdc++ has {Version}: nothing to patch";
        var patched = new List<string>();
        foreach (string file in Directory.EnumerateFiles(AppContext.BaseDirectory, "libLibTorchSharp.so", SearchOption.AllDirectories))
        {
            if (MakeWeak(file)) patched.Add(Path.GetRelativePath(AppContext.BaseDirectory, file));
        }
        return patched.Count == 0 ? $"no requirement of {Version} left to weaken" : $"marked {Version} weak in {string.Join(", ", patched)}";
    }

    private static bool SystemHasVersion()
    {
        foreach (string dir in new[] { "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/lib/x86_64-linux-gnu", "/usr/lib" })
        {
            string path = Path.Combine(dir, "libstdc++.so.6");
            if (!File.Exists(path)) continue;
            byte[] bytes = File.ReadAllBytes(path);
            return bytes.AsSpan().IndexOf(Encoding.ASCII.GetBytes(Version + "\0")) >= 0;
        }
        return false;
    }

    /// <summary>Sets VER_FLG_WEAK on the Vernaux entry named <see cref="Version"/>; false when there is none or it is weak already.</summary>
    private static bool MakeWeak(string file)
    {
        byte[] elf = File.ReadAllBytes(file);
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[4] != 2 || elf[5] != 1)
            throw new InvalidDataException($"{file} is not a 64-bit little-endian ELF file.");
        ulong sectionOffset = BinaryPrimitives.ReadUInt64LittleEndian(elf.AsSpan(0x28));
        ushort sectionSize = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(0x3a));
        ushort sectionCount = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(0x3c));
        for (int i = 0; i < sectionCount; i++)
        {
            var header = elf.AsSpan((int)sectionOffset + i * sectionSize, sectionSize);
            if (BinaryPrimitives.ReadUInt32LittleEndian(header[4..]) != ShtGnuVerneed) continue;
            int offset = (int)BinaryPrimitives.ReadUInt64LittleEndian(header[0x18..]);
            int link = (int)BinaryPrimitives.ReadUInt32LittleEndian(header[0x28..]);
            var strings = elf.AsSpan((int)sectionOffset + link * sectionSize, sectionSize);
            int stringsOffset = (int)BinaryPrimitives.ReadUInt64LittleEndian(strings[0x18..]);
            bool changed = false;
            for (int need = offset; ;)
            {
                ushort count = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(need + 2));
                int aux = need + (int)BinaryPrimitives.ReadUInt32LittleEndian(elf.AsSpan(need + 8));
                for (int a = 0; a < count; a++)
                {
                    ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(aux + 4));
                    int name = stringsOffset + (int)BinaryPrimitives.ReadUInt32LittleEndian(elf.AsSpan(aux + 8));
                    int end = Array.IndexOf(elf, (byte)0, name);
                    if (Encoding.ASCII.GetString(elf, name, end - name) == Version && (flags & VerFlgWeak) == 0)
                    {
                        BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(aux + 4), (ushort)(flags | VerFlgWeak));
                        changed = true;
                    }
                    aux += (int)BinaryPrimitives.ReadUInt32LittleEndian(elf.AsSpan(aux + 12));
                }
                uint next = BinaryPrimitives.ReadUInt32LittleEndian(elf.AsSpan(need + 12));
                if (next == 0) break;
                need += (int)next;
            }
            if (changed) File.WriteAllBytes(file, elf);
            return changed;
        }
        return false;
    }
}
