package dev.isthmus.backend.cuda;

import dev.isthmus.bindings.cublas.cublas_h;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The row-major matmul → column-major cublasGemmEx mapping, checked by running the plan through a GEMM that
 * implements the cuBLAS documentation's definition on arrays standing for device memory.
 */
class GemmPlanTest {

    /** cublasGemmEx as documented (column-major), over float arrays indexed by "address" = element index. */
    static void referenceGemm(GemmPlan p, float[] mem) {
        for (int j = 0; j < p.n(); j++) {
            for (int i = 0; i < p.m(); i++) {
                double s = 0;
                for (int l = 0; l < p.k(); l++) {
                    float a = p.transa() == cublas_h.CUBLAS_OP_N ? mem[(int) p.a() + i + l * p.lda()]
                            : mem[(int) p.a() + l + i * p.lda()];
                    float b = p.transb() == cublas_h.CUBLAS_OP_N ? mem[(int) p.b() + l + j * p.ldb()]
                            : mem[(int) p.b() + j + l * p.ldb()];
                    s += (double) a * b;
                }
                mem[(int) (p.c() / 4) + i + j * p.ldc()] = (float) s;
            }
        }
    }

    @Test
    void computesOutEqualsXTimesWTransposedWithViewsAndChunks() {
        SplittableRandom r = new SplittableRandom(3);
        int n = 5, m = 7, k = 9;
        int xStride = 12, wStride = 10, outStride = 11; // views: rows wider than the data
        int xBase = 0, wBase = 100, outBase = 200;
        float[] mem = new float[300];
        for (int i = 0; i < 200; i++) {
            mem[i] = (float) r.nextDouble(-1, 1);
        }
        // Features in two chunks, as for dequantized weights: [0, 4) and [4, 7).
        for (int[] chunk : new int[][] {{0, 4}, {4, 3}}) {
            GemmPlan p = GemmPlan.of(n, chunk[1], k, wBase + (long) chunk[0] * wStride, 4L * wStride, xBase,
                    4L * xStride, cublas_h.CUDA_R_32F, 4, 4L * outBase, 4L * outStride, chunk[0]);
            // Here A and B "addresses" are element indices into mem, C's is in bytes (the plan offsets it by
            // 4 bytes per skipped feature).
            referenceGemm(p, mem);
        }
        for (int row = 0; row < n; row++) {
            for (int f = 0; f < m; f++) {
                double s = 0;
                for (int e = 0; e < k; e++) {
                    s += (double) mem[xBase + row * xStride + e] * mem[wBase + f * wStride + e];
                }
                assertEquals(s, mem[outBase + row * outStride + f], 1e-5, "out[" + row + "][" + f + "]");
            }
        }
    }

    @Test
    void passesTransposedWeightsAndLeadingDimensionsInElements() {
        GemmPlan p = GemmPlan.of(16, 4096, 4096, 0x1000, 2 * 4096, 0x9000, 2 * 4096, cublas_h.CUDA_R_16F, 2, 0x20000,
                4 * 4096, 0);
        assertEquals(cublas_h.CUBLAS_OP_T, p.transa());
        assertEquals(cublas_h.CUBLAS_OP_N, p.transb());
        assertEquals(4096, p.m());
        assertEquals(16, p.n());
        assertEquals(4096, p.lda());
        assertEquals(4096, p.ldb());
        assertEquals(4096, p.ldc());
        assertEquals(cublas_h.CUDA_R_16F, p.aType());
    }

    @Test
    void singleRowsGetLeadingDimensionsCublasAccepts() {
        GemmPlan p = GemmPlan.of(1, 1, 64, 0, 256, 0, 256, cublas_h.CUDA_R_32F, 4, 0, 4, 0);
        assertEquals(64, p.lda());
        assertEquals(64, p.ldb());
        assertEquals(1, p.ldc());
    }

    @Test
    void rejectsPartialElementStridesAndOverlappingRows() {
        assertThrows(IllegalArgumentException.class,
                () -> GemmPlan.of(2, 2, 8, 0, 17, 0, 32, cublas_h.CUDA_R_16F, 2, 0, 8, 0));
        assertThrows(IllegalArgumentException.class,
                () -> GemmPlan.of(2, 2, 8, 0, 8, 0, 32, cublas_h.CUDA_R_32F, 4, 0, 8, 0));
    }
}
