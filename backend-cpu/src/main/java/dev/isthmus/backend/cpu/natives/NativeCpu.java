package dev.isthmus.backend.cpu.natives;

import dev.isthmus.api.DType;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;
import java.util.Properties;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The C kernels of {@code native/cpu} (AVX-512 + VNNI int8 products and F16C), built into this jar by the Maven
 * build when a C compiler was present, extracted at first use to a cache directory named by the library's
 * hash ({@code $ISTHMUS_CACHE/native/cpu-<sha>/}, default {@code ~/.cache/isthmus}) and called through FFM
 * downcalls.
 *
 * <p>Used only when the library loaded, its ABI version matches and the CPU reports AVX-512 (F, BW, VL, DQ),
 * VNNI, FMA and F16C with the OS saving zmm state; otherwise, or with {@code -Disthmus.cpu.native=false}, the
 * backend runs its Java Vector API kernels. {@link #status()} says which and why.
 *
 * <p>Pointers are passed as {@code long} addresses and the downcalls are {@linkplain Linker.Option#critical
 * critical} (no thread-state transition): each call is one weight-row range of one thread, so there is no
 * per-call allocation and the fixed cost of a call is a few nanoseconds.
 */
public final class NativeCpu {
    /** Feature bits of {@code isthmus_cpu_features}. */
    static final int F_AVX512 = 1, F_VNNI = 2, F_AMX_INT8 = 4, F_AVX512_BF16 = 8;
    private static final int ABI_VERSION = 2;
    /** dtype codes of the C side. */
    public static final int DT_F16 = 1, DT_Q8_0 = 2, DT_Q4_0 = 3, DT_Q4_K = 4, DT_Q6_K = 5;

    private static final String RESOURCE_DIR = "/dev/isthmus/backend/cpu/native/";
    private static final boolean ENABLED;
    private static final String STATUS;
    private static final MethodHandle QUANTIZE;
    private static final MethodHandle MATMUL;
    private static final MethodHandle MATMUL_SWIGLU;
    private static final MethodHandle QUANT_ROW_BYTES;
    private static final MethodHandle SCRATCH_BYTES;
    private static final MethodHandle ATTENTION;
    private static final MethodHandle ATTENTION_SCRATCH_BYTES;

    static {
        boolean enabled = false;
        String status;
        MethodHandle quantize = null, matmul = null, matmulSwiglu = null, rowBytes = null, scratch = null, attention = null,
                attentionScratch = null;
        try {
            if (!Boolean.parseBoolean(System.getProperty("isthmus.cpu.native", "true").trim())) {
                status = "disabled by -Disthmus.cpu.native=false";
            } else {
                Path library = extract();
                if (library == null) {
                    status = builtReason();
                } else {
                    Linker linker = Linker.nativeLinker();
                    SymbolLookup lookup = SymbolLookup.libraryLookup(library, Arena.global());
                    Linker.Option critical = Linker.Option.critical(false);
                    int abi = (int) linker.downcallHandle(lookup.findOrThrow("isthmus_cpu_abi_version"),
                            FunctionDescriptor.of(JAVA_INT)).invokeExact();
                    int features = (int) linker.downcallHandle(lookup.findOrThrow("isthmus_cpu_features"),
                            FunctionDescriptor.of(JAVA_INT)).invokeExact();
                    if (abi != ABI_VERSION) {
                        status = "library ABI " + abi + ", expected " + ABI_VERSION;
                    } else if ((features & (F_AVX512 | F_VNNI)) != (F_AVX512 | F_VNNI)) {
                        status = "CPU lacks AVX-512 BW/VL/DQ + VNNI + F16C (features 0x"
                                + Integer.toHexString(features) + ")";
                    } else {
                        quantize = linker.downcallHandle(lookup.findOrThrow("isthmus_quantize"),
                                FunctionDescriptor.ofVoid(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT,
                                        JAVA_LONG, JAVA_LONG), critical);
                        matmul = linker.downcallHandle(lookup.findOrThrow("isthmus_matmul"),
                                FunctionDescriptor.ofVoid(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_LONG,
                                        JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG,
                                        JAVA_LONG), critical);
                        matmulSwiglu = linker.downcallHandle(lookup.findOrThrow("isthmus_matmul_swiglu"),
                                FunctionDescriptor.ofVoid(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT,
                                        JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_LONG,
                                        JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG), critical);
                        rowBytes = linker.downcallHandle(lookup.findOrThrow("isthmus_quant_row_bytes"),
                                FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_INT), critical);
                        scratch = linker.downcallHandle(lookup.findOrThrow("isthmus_matmul_scratch_bytes"),
                                FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_INT), critical);
                        attention = linker.downcallHandle(lookup.findOrThrow("isthmus_attention"),
                                FunctionDescriptor.ofVoid(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG,
                                        JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG,
                                        JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT,
                                        JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG),
                                critical);
                        attentionScratch = linker.downcallHandle(lookup.findOrThrow("isthmus_attention_scratch_bytes"),
                                FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_INT), critical);
                        enabled = true;
                        status = "C kernels (AVX-512 VNNI int8, F16C)"
                                + ((features & F_AMX_INT8) != 0 ? "; AMX present, not used" : "");
                    }
                }
            }
        } catch (Throwable t) {
            status = "native kernels failed to load: " + t;
        }
        ENABLED = enabled;
        STATUS = status;
        QUANTIZE = quantize;
        MATMUL = matmul;
        MATMUL_SWIGLU = matmulSwiglu;
        QUANT_ROW_BYTES = rowBytes;
        SCRATCH_BYTES = scratch;
        ATTENTION = attention;
        ATTENTION_SCRATCH_BYTES = attentionScratch;
    }

    private NativeCpu() {
    }

    /** True when matmuls of {@link #dtypeCode supported} dtypes run in C. */
    public static boolean enabled() {
        return ENABLED;
    }

    /** Which kernels run, or why not the C ones. */
    public static String status() {
        return STATUS;
    }

    /** The C dtype code, or 0 when the C kernels do not multiply this dtype. */
    public static int dtypeCode(DType t) {
        return switch (t) {
            case F16 -> DT_F16;
            case Q8_0 -> DT_Q8_0;
            case Q4_0 -> DT_Q4_0;
            case Q4_K -> DT_Q4_K;
            case Q6_K -> DT_Q6_K;
            default -> 0;
        };
    }

    /** Activation quantization kind of a dtype code: 0 (per 32, Q8_0/Q4_0), 1 (per 256, K-quants), -1 (none). */
    public static int quantKind(int code) {
        return switch (code) {
            case DT_Q8_0, DT_Q4_0 -> 0;
            case DT_Q4_K, DT_Q6_K -> 1;
            default -> -1;
        };
    }

    public static long quantRowBytes(int kind, int k) {
        try {
            return (long) QUANT_ROW_BYTES.invokeExact(kind, k);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static long scratchBytes(int code, int k) {
        try {
            return (long) SCRATCH_BYTES.invokeExact(code, k);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Quantizes F32 rows {@code [r0, r1)} at address {@code x} (stride {@code xs}) into {@code dst}. */
    public static void quantize(int kind, long x, long xs, int r0, int r1, int k, long dst, long ds) {
        try {
            QUANTIZE.invokeExact(kind, x, xs, r0, r1, k, dst, ds);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@code out[j, r] = x[j] · w[r]} for weight rows {@code [r0, r1)}; see kernels_avx512.c. */
    public static void matmul(int code, long w, long ws, int r0, int r1, long xq, long xqs, long xf, long xfs, int n,
                              int k, long out, long os, long scratch) {
        try {
            MATMUL.invokeExact(code, w, ws, r0, r1, xq, xqs, xf, xfs, n, k, out, os, scratch);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * {@code out[j, r] = silu(x[j] · gate[r]) * (x[j] · up[r])} for weight rows {@code [r0, r1)}, {@code upOut}
     * holding intermediate products; see kernels_avx512.c.
     */
    public static void matmulSwiglu(int code, long gate, long up, long ws, int r0, int r1, long xq, long xqs, long xf,
                                    long xfs, int n, int k, long out, long os, long upOut, long us, long scratch) {
        try {
            MATMUL_SWIGLU.invokeExact(code, gate, up, ws, r0, r1, xq, xqs, xf, xfs, n, k, out, os, upOut, us, scratch);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static long attentionScratchBytes(int d, int dv) {
        try {
            return (long) ATTENTION_SCRATCH_BYTES.invokeExact(d, dv);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Flash attention of tasks {@code [task0, task1)}; see {@code isthmus_attention} in kernels_avx512.c. */
    public static void attention(long q, long qRow, long qHead, long out, long oRow, long oHead, long k, long kSlot,
                                 long kHead, int kF16, long v, long vSlot, long vHead, int vF16, int heads,
                                 int kvHeads, int d, int dv, float scale, long rowInfo, long slotMap, int n,
                                 int rowsPerTask, int task0, int task1, long scratch) {
        try {
            ATTENTION.invokeExact(q, qRow, qHead, out, oRow, oHead, k, kSlot, kHead, kF16, v, vSlot, vHead, vF16,
                    heads, kvHeads, d, dv, scale, rowInfo, slotMap, n, rowsPerTask, task0, task1, scratch);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException e) {
            return e;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException(t);
    }

    private static Properties builtProperties() throws IOException {
        Properties p = new Properties();
        try (InputStream in = NativeCpu.class.getResourceAsStream(RESOURCE_DIR + "kernels.properties")) {
            if (in != null) {
                p.load(in);
            }
        }
        return p;
    }

    private static String builtReason() {
        try {
            Properties p = builtProperties();
            if (p.isEmpty()) {
                return "this jar was built without native/cpu kernels";
            }
            if (!Boolean.parseBoolean(p.getProperty("built"))) {
                return "built without native kernels: " + p.getProperty("reason", "unknown reason");
            }
            return "no native kernels for " + System.getProperty("os.name") + "-" + System.getProperty("os.arch");
        } catch (IOException e) {
            return "cannot read kernels.properties: " + e;
        }
    }

    /** The library in the cache directory (extracted if needed), or null if this jar or platform has none. */
    private static Path extract() throws IOException {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "");
        if (!os.contains("linux") || !(arch.equals("amd64") || arch.equals("x86_64"))) {
            return null;
        }
        Properties p = builtProperties();
        if (!Boolean.parseBoolean(p.getProperty("built"))) {
            return null;
        }
        String sha = p.getProperty("sha256", "unknown");
        String cacheRoot = System.getenv("ISTHMUS_CACHE");
        Path root = cacheRoot != null && !cacheRoot.isBlank() ? Path.of(cacheRoot)
                : Path.of(System.getProperty("user.home"), ".cache", "isthmus");
        Path dir = root.resolve("native").resolve("cpu-" + sha);
        Path target = dir.resolve("libisthmus_cpu.so");
        if (Files.isRegularFile(target)) {
            return target;
        }
        Files.createDirectories(dir);
        try (InputStream in = NativeCpu.class.getResourceAsStream(RESOURCE_DIR + p.getProperty("library"))) {
            if (in == null) {
                return null;
            }
            Path tmp = Files.createTempFile(dir, "lib", ".tmp");
            Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
            Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        }
        return target;
    }
}
