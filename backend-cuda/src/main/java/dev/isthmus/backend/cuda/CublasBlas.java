package dev.isthmus.backend.cuda;

import dev.isthmus.bindings.cublas.cublas_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * {@link Blas} through cuBLAS (hand-written downcalls in {@link cublas_h}), one handle bound to the backend's
 * stream. Scalars are passed by host pointer (cuBLAS's default pointer mode), read before the call returns.
 */
final class CublasBlas implements Blas {
    private final Arena arena = Arena.ofShared();
    private final MemorySegment handle;
    private final MemorySegment alpha = arena.allocate(ValueLayout.JAVA_FLOAT);
    private final MemorySegment beta = arena.allocate(ValueLayout.JAVA_FLOAT);
    private final String library;

    private CublasBlas(MemorySegment handle, String library) {
        this.handle = handle;
        this.library = library;
    }

    /**
     * Loads cuBLAS and creates a handle on {@code stream} (the caller's context is current).
     *
     * @throws IllegalStateException if cuBLAS cannot be loaded, {@link CudaException} if a call fails
     */
    static CublasBlas create(MemorySegment stream) {
        String library = cublas_h.load();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            check(cublas_h.cublasCreate_v2(p), "cublasCreate");
            MemorySegment handle = p.get(ValueLayout.ADDRESS, 0);
            int rc = cublas_h.cublasSetStream_v2(handle, stream);
            if (rc != cublas_h.CUBLAS_STATUS_SUCCESS) {
                cublas_h.cublasDestroy_v2(handle);
                check(rc, "cublasSetStream");
            }
            return new CublasBlas(handle, library);
        }
    }

    static void check(int status, String call) {
        if (status != cublas_h.CUBLAS_STATUS_SUCCESS) {
            throw new CudaException(call + " failed: " + cublas_h.statusName(status) + " (" + status + ")", status);
        }
    }

    @Override
    public void gemmEx(int transa, int transb, int m, int n, int k, float alphaValue, long a, int aType, int lda,
                       long b, int bType, int ldb, float betaValue, long c, int cType, int ldc, int computeType) {
        alpha.set(ValueLayout.JAVA_FLOAT, 0, alphaValue);
        beta.set(ValueLayout.JAVA_FLOAT, 0, betaValue);
        check(cublas_h.cublasGemmEx(handle, transa, transb, m, n, k, alpha, MemorySegment.ofAddress(a), aType, lda,
                MemorySegment.ofAddress(b), bType, ldb, beta, MemorySegment.ofAddress(c), cType, ldc, computeType,
                cublas_h.CUBLAS_GEMM_DEFAULT), "cublasGemmEx(m=" + m + ", n=" + n + ", k=" + k + ")");
    }

    @Override
    public String description() {
        return "cuBLAS (" + library + ")";
    }

    @Override
    public void close() {
        try {
            cublas_h.cublasDestroy_v2(handle);
        } finally {
            arena.close();
        }
    }
}
