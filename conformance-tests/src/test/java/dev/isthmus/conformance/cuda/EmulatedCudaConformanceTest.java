package dev.isthmus.conformance.cuda;

import dev.isthmus.api.Op;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.backend.cuda.CudaBackendProvider;
import dev.isthmus.backend.cuda.KernelResources;
import dev.isthmus.conformance.ConformanceRuns;
import dev.isthmus.conformance.TestCase;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;

/**
 * The whole conformance suite on the CUDA backend running on the kernel emulator: the backend's host code
 * (pool, uploads, launch geometry, kernel arguments, cuBLAS mapping) and the very kernel sources nvcc compiles,
 * executed on the CPU with CUDA's execution model (barriers, warp shuffles, shared memory). What remains for a
 * GPU is the driver calls themselves, real cuBLAS, and the device compiler.
 *
 * <p>Configurations: the defaults (cuBLAS for 16+ rows, emulated by a reference {@code cublasGemmEx}); MATMUL
 * without cuBLAS (every batch through the fused dequantize-matvec kernels) and with cuBLAS for every batch;
 * ATTENTION with flash-decoding splits forced; the row-reduction and attention kernels with the threads of
 * each block scheduled in reverse (a missing {@code __syncthreads} shows up as a wrong result); and everything
 * with CUDA graphs on (the emulator rejects what a stream capture forbids). UNSUPPORTED cases (TOP_K) are
 * reported as skipped.
 */
class EmulatedCudaConformanceTest {
    private static final ConformanceRuns RUNS = new ConformanceRuns();

    private record Variant(String name, Map<String, String> properties, Predicate<TestCase> cases) {
    }

    @TestFactory
    List<DynamicNode> suiteOnTheEmulator() {
        String why = KernelResources.load().emulatorAbsenceReason();
        if (why != null) { // skipped only when the build recorded that it could not make the emulator
            return List.of(DynamicTest.dynamicTest("CUDA kernel emulator", () -> Assumptions.abort(why)));
        }
        Set<Op> synced = EnumSet.of(Op.RMS_NORM, Op.LAYER_NORM, Op.SOFTMAX, Op.ARGMAX, Op.ATTENTION, Op.MATMUL);
        List<Variant> variants = List.of(
                new Variant("cuda-emulator", Map.of(), c -> true),
                new Variant("cuda-emulator, no cuBLAS", Map.of("cuda.cublas", "false"), c -> c.op() == Op.MATMUL),
                new Variant("cuda-emulator, cuBLAS for every batch", Map.of("cuda.gemm.minRows", "1"),
                        c -> c.op() == Op.MATMUL),
                new Variant("cuda-emulator, attention split", Map.of("cuda.attention.splitMinKeys", "8"),
                        c -> c.op() == Op.ATTENTION),
                new Variant("cuda-emulator, threads in reverse order", Map.of("cuda.emulator.reverse", "true"),
                        c -> synced.contains(c.op())),
                new Variant("cuda-emulator, CUDA graphs", Map.of("cuda.graphs", "true"), c -> true));
        List<DynamicNode> nodes = new ArrayList<>();
        for (Variant v : variants) {
            Backend backend = CudaBackendProvider.emulated(CudaBackendProvider.options(v.properties()));
            nodes.add(RUNS.suite(v.name(), backend, v.cases()));
        }
        return nodes;
    }

    @AfterAll
    static void report() {
        RUNS.reportAndClose();
    }
}
