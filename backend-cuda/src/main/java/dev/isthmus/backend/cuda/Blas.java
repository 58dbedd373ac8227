package dev.isthmus.backend.cuda;

/**
 * The cuBLAS call the backend makes, in cuBLAS's own (column-major) terms; {@link GemmPlan} maps the SPI's
 * row-major matmul onto it. Implemented by cuBLAS ({@link CublasBlas}) and by the emulator's reference GEMM.
 */
interface Blas extends AutoCloseable {
    /**
     * {@code cublasGemmEx}: {@code C = alpha op(A) op(B) + beta C}, alpha/beta as float (compute type 32F).
     *
     * @throws CudaException with the cuBLAS status on failure
     */
    void gemmEx(int transa, int transb, int m, int n, int k, float alpha, long a, int aType, int lda,
                long b, int bType, int ldb, float beta, long c, int cType, int ldc, int computeType);

    /** A short description, e.g. {@code cuBLAS (libcublas.so.13)}. */
    String description();

    @Override
    void close();
}
