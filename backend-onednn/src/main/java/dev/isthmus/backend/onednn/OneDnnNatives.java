package dev.isthmus.backend.onednn;

import dev.isthmus.bindings.onednn.dnnl_h;
import dev.isthmus.bindings.onednn.dnnl_version_t;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

/**
 * The oneDNN libraries of this JVM: extracted from the natives jar, loaded with
 * {@link SymbolLookup#libraryLookup(Path, Arena)} into the global arena (they stay loaded), and described for
 * {@code probe()}. Loading happens once; a failure is remembered with its reason.
 *
 * <p>The jextract bindings ({@link dnnl_h}) look their symbols up by the name {@code libdnnl.so.3}, which the
 * dynamic linker resolves by SONAME to the library loaded here; nothing touches {@code dnnl_h} before
 * {@link #load()} succeeded.
 *
 * <p>Before {@code libgomp} is loaded, {@code GOMP_SPINCOUNT} is set (unless the user set it or
 * {@code OMP_WAIT_POLICY}) so that idle OpenMP workers spin only briefly before sleeping: between oneDNN
 * primitives the graph runs ops on the CPU backend's own worker pool, and OpenMP threads spinning for the
 * default ~300k iterations would take cores from it.
 */
@SuppressWarnings("restricted") // FFM: reading pointers oneDNN returns, loading its libraries
final class OneDnnNatives {
    /** Idle spin iterations of OpenMP workers before they sleep (libgomp's default is 300000). */
    static final String DEFAULT_SPINCOUNT = "10000";

    private static volatile Result result;

    /** A loaded oneDNN. */
    record Loaded(Path directory, String jarVersion, String version, int isa, String isaName,
                  MethodHandle ompSetNumThreads, MethodHandle ompGetMaxThreads) {
        String describe() {
            return "oneDNN " + version + ", ISA " + isaName + ", OpenMP runtime (org.bytedeco:dnnl " + jarVersion
                    + ", natives in " + directory + ")";
        }
    }

    private record Result(Loaded loaded, String reason) {
    }

    private OneDnnNatives() {
    }

    /** The loaded libraries, or empty with {@link #failure()} saying why. Loads on first call. */
    static Optional<Loaded> load() {
        Result r = result;
        if (r == null) {
            synchronized (OneDnnNatives.class) {
                r = result;
                if (r == null) {
                    r = doLoad(OneDnnNatives.class.getClassLoader(), NativeExtractor.defaultCacheRoot());
                    result = r;
                }
            }
        }
        return Optional.ofNullable(r.loaded());
    }

    /** Why {@link #load()} failed, or null if it succeeded. */
    static String failure() {
        load();
        return result.reason();
    }

    private static Result doLoad(ClassLoader loader, Path cacheRoot) {
        String platform = NativeExtractor.unsupportedPlatform();
        if (platform != null) {
            return new Result(null, platform);
        }
        NativeExtractor.Extracted ex;
        try {
            ex = NativeExtractor.extract(loader, cacheRoot);
        } catch (NativeExtractor.NativesUnavailable e) {
            return new Result(null, e.getMessage());
        }
        try {
            configureOpenMpEnvironment();
            Arena global = Arena.global();
            SymbolLookup gomp = SymbolLookup.libraryLookup(ex.libraries().get(0), global);
            SymbolLookup dnnl = SymbolLookup.libraryLookup(ex.libraries().get(1), global);
            if (dnnl.find("dnnl_version").isEmpty()) {
                return new Result(null, ex.libraries().get(1) + " has no dnnl_version symbol");
            }
            Linker linker = Linker.nativeLinker();
            MethodHandle setThreads = linker.downcallHandle(gomp.findOrThrow("omp_set_num_threads"),
                    FunctionDescriptor.ofVoid(ValueLayout.JAVA_INT));
            MethodHandle maxThreads = linker.downcallHandle(gomp.findOrThrow("omp_get_max_threads"),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT));
            MemorySegment v = dnnl_h.dnnl_version().reinterpret(dnnl_version_t.sizeof());
            String version = dnnl_version_t.major(v) + "." + dnnl_version_t.minor(v) + "." + dnnl_version_t.patch(v);
            int isa = dnnl_h.dnnl_get_effective_cpu_isa();
            return new Result(new Loaded(ex.directory(), ex.version(), version, isa, isaName(isa), setThreads,
                    maxThreads), null);
        } catch (RuntimeException | LinkageError e) {
            return new Result(null, "cannot load oneDNN from " + ex.directory() + ": " + e);
        }
    }

    /** oneDNN's name for a {@code dnnl_cpu_isa_t} value, as in its documentation and {@code ONEDNN_MAX_CPU_ISA}. */
    static String isaName(int isa) {
        Map<Integer, String> names = Map.ofEntries(
                Map.entry(0x0, "default"), Map.entry(0x1, "sse41"), Map.entry(0x3, "avx"), Map.entry(0x7, "avx2"),
                Map.entry(0xf, "avx2_vnni"), Map.entry(0x1f, "avx2_vnni_2"), Map.entry(0x27, "avx512_core"),
                Map.entry(0x67, "avx512_core_vnni"), Map.entry(0xe7, "avx512_core_bf16"),
                Map.entry(0x1ef, "avx512_core_fp16"), Map.entry(0xfef, "avx512_core_amx"),
                Map.entry(0x1fef, "avx512_core_amx_fp16"), Map.entry(0x201ff, "avx10_2_512"),
                Map.entry(0x22fff, "avx10_2_512_amx_2"));
        return names.getOrDefault(isa, "0x" + Integer.toHexString(isa));
    }

    /** Whether the effective ISA has AMX (bf16 and int8 tiles). */
    static boolean hasAmx(int isa) {
        return (isa & 0xfef) == 0xfef;
    }

    private static void configureOpenMpEnvironment() {
        if (System.getenv("GOMP_SPINCOUNT") != null || System.getenv("OMP_WAIT_POLICY") != null) {
            return;
        }
        try {
            Linker linker = Linker.nativeLinker();
            MethodHandle setenv = linker.downcallHandle(linker.defaultLookup().findOrThrow("setenv"),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                            ValueLayout.JAVA_INT));
            try (Arena a = Arena.ofConfined()) {
                int ignored = (int) setenv.invokeExact(a.allocateFrom("GOMP_SPINCOUNT"),
                        a.allocateFrom(System.getProperty("isthmus.onednn.spincount", DEFAULT_SPINCOUNT)), 0);
            }
        } catch (Throwable t) {
            // Only a tuning knob: without it OpenMP spins longer, nothing breaks.
        }
    }
}
