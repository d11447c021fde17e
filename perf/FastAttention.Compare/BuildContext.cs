using System.Reflection;
using System.Runtime.Loader;

namespace FastAttention.Compare;

/// <summary>
/// One build of the library: FastAttention.dll from its folder, and a copy of this assembly whose
/// <see cref="Driver"/> binds to it. Everything else (the core library, System.Numerics.Tensors) comes from the
/// default context, shared by all builds.
/// </summary>
internal sealed class BuildContext : AssemblyLoadContext
{
    private readonly string _library;
    private readonly string _self = typeof(BuildContext).Assembly.Location;

    public BuildContext(string folder) : base($"build {folder}")
    {
        _library = Path.Combine(Path.GetFullPath(folder), "FastAttention.dll");
        if (!File.Exists(_library)) throw new FileNotFoundException($"No FastAttention.dll in '{folder}'.", _library);
    }

    /// <summary>The driver's Prepare in this build.</summary>
    public MethodInfo Prepare() =>
        LoadFromAssemblyPath(_self).GetType(typeof(Driver).FullName!)!.GetMethod(nameof(Driver.Prepare))!;

    protected override Assembly? Load(AssemblyName name) => name.Name switch
    {
        "FastAttention" => LoadFromAssemblyPath(_library),
        _ => null,
    };
}
