package dev.isthmus.backend.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Downcalls into the CUDA kernel emulator ({@code native/cuda/emu/emu_runtime.cpp}): the kernels of the fatbin
 * compiled for the host, run with CUDA's execution model. Its functions mirror the driver calls the backend makes
 * (memory, launch with {@code kernelParams}) and {@code cublasGemmEx}, and return the same error codes.
 */
final class EmulatorApi {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final ValueLayout.OfInt I = ValueLayout.JAVA_INT;
    private static final ValueLayout.OfLong L = ValueLayout.JAVA_LONG;
    private static final ValueLayout P = ValueLayout.ADDRESS;

    private static EmulatorApi instance;

    private final Path library;
    private final MethodHandle kernelCount;
    private final MethodHandle kernelName;
    private final MethodHandle kernelSignature;
    private final MethodHandle lastError;
    private final MethodHandle setReverseOrder;
    private final MethodHandle memAlloc;
    private final MethodHandle memFree;
    private final MethodHandle memStats;
    private final MethodHandle launch;
    private final MethodHandle gemmEx;

    private EmulatorApi(Path library) {
        this.library = library;
        SymbolLookup lookup = SymbolLookup.libraryLookup(library, Arena.global());
        kernelCount = h(lookup, "isthmus_emu_kernel_count", FunctionDescriptor.of(I));
        kernelName = h(lookup, "isthmus_emu_kernel_name", FunctionDescriptor.of(P, I));
        kernelSignature = h(lookup, "isthmus_emu_kernel_signature", FunctionDescriptor.of(P, P));
        lastError = h(lookup, "isthmus_emu_last_error", FunctionDescriptor.of(P));
        setReverseOrder = h(lookup, "isthmus_emu_set_reverse_order", FunctionDescriptor.ofVoid(I));
        memAlloc = h(lookup, "isthmus_emu_mem_alloc", FunctionDescriptor.of(I, P, L));
        memFree = h(lookup, "isthmus_emu_mem_free", FunctionDescriptor.of(I, L));
        memStats = h(lookup, "isthmus_emu_mem_stats", FunctionDescriptor.ofVoid(P));
        launch = h(lookup, "isthmus_emu_launch", FunctionDescriptor.of(I, P, I, I, I, I, I, I, I, P));
        gemmEx = h(lookup, "isthmus_emu_gemm_ex", FunctionDescriptor.of(I, I, I, I, I, I, P, P, I, I, P, I, I, P, P,
                I, I, I, I));
    }

    private static MethodHandle h(SymbolLookup lookup, String name, FunctionDescriptor d) {
        return LINKER.downcallHandle(lookup.find(name).orElseThrow(
                () -> new IllegalStateException("kernel emulator has no symbol " + name)), d);
    }

    /** The emulator of this jar, extracted and loaded once. */
    static synchronized EmulatorApi get() {
        if (instance == null) {
            instance = new EmulatorApi(KernelResources.load().extractEmulator());
        }
        return instance;
    }

    Path library() {
        return library;
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException(t);
    }

    private static String string(MemorySegment p) {
        return p.equals(MemorySegment.NULL) ? null : p.reinterpret(1 << 16).getString(0);
    }

    /** Every kernel the emulator has, with its parameter kinds (p pointer, i int, l long long, f float). */
    Map<String, String> kernels() {
        try {
            Map<String, String> out = new LinkedHashMap<>();
            int n = (int) kernelCount.invokeExact();
            for (int i = 0; i < n; i++) {
                String name = string((MemorySegment) kernelName.invokeExact(i));
                try (Arena a = Arena.ofConfined()) {
                    out.put(name, string((MemorySegment) kernelSignature.invokeExact(a.allocateFrom(name))));
                }
            }
            return out;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    String lastError() {
        try {
            return string((MemorySegment) lastError.invokeExact());
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Runs the threads of each block in reverse order from now on (to shake out missing barriers). */
    void setReverseOrder(boolean reverse) {
        try {
            setReverseOrder.invokeExact(reverse ? 1 : 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    int memAlloc(MemorySegment out, long bytes) {
        try {
            return (int) memAlloc.invokeExact(out, bytes);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    int memFree(long address) {
        try {
            return (int) memFree.invokeExact(address);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {allocations, frees, live bytes} of the emulated device memory. */
    long[] memStats() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(ValueLayout.JAVA_LONG, 3);
            memStats.invokeExact(s);
            return s.toArray(ValueLayout.JAVA_LONG);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    int launch(MemorySegment name, Launch l, MemorySegment params) {
        return launch(name, l.gridX(), l.gridY(), l.gridZ(), l.blockX(), l.blockY(), l.blockZ(), l.sharedBytes(),
                params);
    }

    /** {@code cuLaunchKernel} without {@link Launch}'s checks (the emulator makes CUDA's own). */
    int launch(MemorySegment name, int gx, int gy, int gz, int bx, int by, int bz, int sharedBytes,
               MemorySegment params) {
        try {
            return (int) launch.invokeExact(name, gx, gy, gz, bx, by, bz, sharedBytes, params);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    int gemmEx(int transa, int transb, int m, int n, int k, MemorySegment alpha, MemorySegment a, int aType, int lda,
               MemorySegment b, int bType, int ldb, MemorySegment beta, MemorySegment c, int cType, int ldc,
               int computeType, int algo) {
        try {
            return (int) gemmEx.invokeExact(transa, transb, m, n, k, alpha, a, aType, lda, b, bType, ldb, beta, c,
                    cType, ldc, computeType, algo);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }
}
