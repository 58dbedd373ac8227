package dev.isthmus.backend.cuda;

import dev.isthmus.api.spi.BackendOptions;

import java.util.Map;

/**
 * Settings of the CUDA backend. Each is read from {@link BackendOptions#properties()} under its key (e.g.
 * {@code cuda.gemm.minRows}), else from the system property {@code isthmus.<key>}
 * (e.g. {@code -Disthmus.cuda.gemm.minRows=32}), else the default.
 *
 * @param device            {@code cuda.device}: ordinal of the GPU (default 0)
 * @param cublas            {@code cuda.cublas}: use cuBLAS for large matmuls when it is installed (default true)
 * @param gemmMinRows       {@code cuda.gemm.minRows}: activation rows from which a matmul goes to cuBLAS instead of
 *                          the fused dequantize-matvec kernels (default 16)
 * @param tf32              {@code cuda.tf32}: let cuBLAS use TF32 tensor cores for F32 weights (default false: exact
 *                          FP32)
 * @param maxSplits         {@code cuda.attention.maxSplits}: most key ranges a row's attention is split into when the
 *                          grid would not fill the GPU (flash decoding; default 16, 1 disables)
 * @param splitMinKeys      {@code cuda.attention.splitMinKeys}: visible keys from which a row may be split (default
 *                          512; each split gets at least half of this)
 * @param dequantChunkBytes {@code cuda.gemm.dequantChunkBytes}: F16 scratch for dequantized weights per cuBLAS call
 *                          (default 64 MiB)
 * @param maxCachedBytes    {@code cuda.pool.maxCachedBytes}: free device memory the pool keeps for reuse (default
 *                          2 GiB)
 * @param uploadRingBytes   {@code cuda.uploadRingBytes}: pinned ring for per-op metadata (default 4 MiB)
 * @param emulatorReverse   {@code cuda.emulator.reverse}: on the kernel emulator, run the threads of each block in
 *                          reverse order (a test of the kernels' barriers; default false)
 * @param graphs            {@code cuda.graphs}: capture the work between host synchronizations (a decode step) into
 *                          CUDA graphs (default false until measured on GPUs; see {@link CudaStream})
 */
public record CudaOptions(int device, boolean cublas, int gemmMinRows, boolean tf32, int maxSplits, int splitMinKeys,
                          long dequantChunkBytes, long maxCachedBytes, long uploadRingBytes, boolean emulatorReverse,
                          boolean graphs) {

    public static CudaOptions from(BackendOptions options) {
        Map<String, String> p = options.properties();
        return new CudaOptions(
                (int) number(p, "cuda.device", 0),
                bool(p, "cuda.cublas", true),
                (int) number(p, "cuda.gemm.minRows", 16),
                bool(p, "cuda.tf32", false),
                (int) Math.max(1, number(p, "cuda.attention.maxSplits", 16)),
                (int) Math.max(2, number(p, "cuda.attention.splitMinKeys", 512)),
                Math.max(1 << 16, number(p, "cuda.gemm.dequantChunkBytes", 64L << 20)),
                Math.max(0, number(p, "cuda.pool.maxCachedBytes", 2L << 30)),
                Math.max(1 << 12, number(p, "cuda.uploadRingBytes", 4L << 20)),
                bool(p, "cuda.emulator.reverse", false),
                bool(p, "cuda.graphs", false));
    }

    static String value(Map<String, String> p, String key) {
        String v = p.get(key);
        return v != null ? v : System.getProperty("isthmus." + key);
    }

    private static long number(Map<String, String> p, String key, long dflt) {
        String v = value(p, key);
        if (v == null || v.isBlank()) {
            return dflt;
        }
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(key + " must be a number, got '" + v + "'");
        }
    }

    private static boolean bool(Map<String, String> p, String key, boolean dflt) {
        String v = value(p, key);
        return v == null || v.isBlank() ? dflt : Boolean.parseBoolean(v.trim());
    }
}
