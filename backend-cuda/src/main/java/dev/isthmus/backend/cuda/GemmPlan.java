package dev.isthmus.backend.cuda;

import dev.isthmus.bindings.cublas.cublas_h;

/**
 * The {@code cublasGemmEx} arguments that compute the SPI's row-major {@code out[n, m] = x[n, k] · w[m, k]ᵀ}.
 *
 * <p>cuBLAS is column-major. A row-major matrix with row stride {@code s} elements is the column-major
 * transpose with leading dimension {@code s}. So {@code out} (row-major n×m) is the column-major m×n matrix
 * {@code C = outᵀ} with {@code ldc = outStride}; {@code outᵀ = w · xᵀ}; {@code w} (row-major m×k) seen column-major
 * is the k×m matrix {@code wᵀ}, so {@code op(A) = T} with {@code lda = wStride}; {@code x} (row-major n×k) seen
 * column-major is {@code xᵀ} (k×n), so {@code op(B) = N} with {@code ldb = xStride}.
 *
 * @param transa {@link cublas_h#CUBLAS_OP_T}
 * @param transb {@link cublas_h#CUBLAS_OP_N}
 * @param m      rows of {@code C}: the output features
 * @param n      columns of {@code C}: the activation rows
 * @param k      the reduction length
 * @param a      device address of {@code w} (the first weight row of this call)
 * @param aType  {@code cudaDataType} of {@code w}
 * @param lda    row stride of {@code w} in elements
 * @param b      device address of {@code x}
 * @param bType  {@code cudaDataType} of {@code x} (same as {@code aType})
 * @param ldb    row stride of {@code x} in elements
 * @param c      device address of {@code out} (column {@code firstFeature} of its first row)
 * @param ldc    row stride of {@code out} in elements (F32)
 */
record GemmPlan(int transa, int transb, int m, int n, int k, long a, int aType, int lda, long b, int bType, int ldb,
                long c, int ldc) {

    /**
     * The plan for features {@code [firstFeature, firstFeature + features)} of the output.
     *
     * @param elementBytes size of an element of {@code w} and {@code x} (4 for F32, 2 for F16/BF16)
     * @param wAddress     address of weight row {@code firstFeature}
     * @throws IllegalArgumentException if a stride is not a whole number of elements or a size exceeds an int
     */
    static GemmPlan of(int n, int features, int k, long wAddress, long wStrideBytes, long xAddress,
                       long xStrideBytes, int dataType, int elementBytes, long outAddress, long outStrideBytes,
                       int firstFeature) {
        if (wStrideBytes % elementBytes != 0 || xStrideBytes % elementBytes != 0 || outStrideBytes % 4 != 0) {
            throw new IllegalArgumentException("GEMM strides must be whole elements: w " + wStrideBytes + ", x "
                    + xStrideBytes + ", out " + outStrideBytes);
        }
        int lda = Math.toIntExact(wStrideBytes / elementBytes);
        int ldb = Math.toIntExact(xStrideBytes / elementBytes);
        int ldc = Math.toIntExact(outStrideBytes / 4);
        if (n > 1 && ldb < k || features > 1 && lda < k || n > 1 && ldc < firstFeature + features) {
            throw new IllegalArgumentException("overlapping rows: lda " + lda + ", ldb " + ldb + ", ldc " + ldc
                    + " for k " + k);
        }
        // cuBLAS checks lda >= k (op T), ldb >= k (op N) and ldc >= m even for a single row/column.
        lda = Math.max(lda, Math.max(1, k));
        ldb = Math.max(ldb, Math.max(1, k));
        ldc = Math.max(ldc, Math.max(1, features));
        return new GemmPlan(cublas_h.CUBLAS_OP_T, cublas_h.CUBLAS_OP_N, features, n, k, wAddress, dataType, lda,
                xAddress, dataType, ldb, outAddress + 4L * firstFeature, ldc);
    }

    /** Runs it: {@code beta = 0}, so {@code out} is not read (it may hold anything). */
    void run(Blas blas, int computeType) {
        blas.gemmEx(transa, transb, m, n, k, 1f, a, aType, lda, b, bType, ldb, 0f, c, cublas_h.CUDA_R_32F, ldc,
                computeType);
    }
}
