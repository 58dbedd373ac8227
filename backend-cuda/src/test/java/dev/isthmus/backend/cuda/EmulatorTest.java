package dev.isthmus.backend.cuda;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The kernel emulator: it has exactly the kernels of the {@link Kernel} table with the C signatures the table
 * declares, and it rejects what CUDA would (bad launch configurations, shuffles with missing lanes).
 */
class EmulatorTest {
    private static EmulatorApi api;

    @BeforeAll
    static void load() {
        // The build makes the emulator whenever a host C++ compiler exists (nvcc needs one too): skipped only if
        // the build recorded that there was none.
        String why = KernelResources.load().emulatorAbsenceReason();
        org.junit.jupiter.api.Assumptions.assumeTrue(why == null, why);
        api = EmulatorApi.get();
    }

    @Test
    void hasExactlyTheKernelsOfTheTableWithTheirSignatures() {
        Map<String, String> kernels = api.kernels();
        TreeSet<String> expected = new TreeSet<>();
        for (Kernel k : Kernel.values()) {
            expected.add(k.symbol());
            assertEquals(k.signatureCode(), kernels.get(k.symbol()), k.symbol());
        }
        assertEquals(expected, new TreeSet<>(kernels.keySet()));
    }

    private static float[] softmaxRows(int rows, int cols, int threads) {
        try (Arena a = Arena.ofConfined(); KernelArgs args = new KernelArgs()) {
            EmulatedGpu gpu = new EmulatedGpu(api, false);
            long x = gpu.allocate(4L * rows * cols);
            long out = gpu.allocate(4L * rows * cols);
            MemorySegment host = a.allocate(4L * rows * cols);
            for (int i = 0; i < rows * cols; i++) {
                host.setAtIndex(ValueLayout.JAVA_FLOAT, i, (i % 7) * 0.25f);
            }
            gpu.copyToDevice(x, host, 4L * rows * cols);
            try {
                gpu.launch(Kernel.SOFTMAX, new Launch(rows, 1, 1, threads, 1, 1, 0),
                        args.pack(Kernel.SOFTMAX, x, 4L * cols, out, 4L * cols, rows, cols));
                gpu.copyToHost(host, out, 4L * rows * cols);
                return host.toArray(ValueLayout.JAVA_FLOAT);
            } finally {
                gpu.free(x);
                gpu.free(out);
                gpu.close();
            }
        }
    }

    @Test
    void runsAKernelWithBarriersAndShuffles() {
        float[] out = softmaxRows(2, 40, 64);
        double sum = 0;
        for (int c = 0; c < 40; c++) {
            sum += out[c];
        }
        assertEquals(1.0, sum, 1e-6);
    }

    @Test
    void reverseThreadOrderGivesTheSameResult() {
        float[] forward = softmaxRows(3, 300, 128);
        api.setReverseOrder(true);
        try {
            float[] reverse = softmaxRows(3, 300, 128);
            assertTrue(Arrays.equals(forward, reverse));
        } finally {
            api.setReverseOrder(false);
        }
    }

    @Test
    void aShuffleWithAMissingLaneIsALaunchFailure() {
        CudaException e = assertThrows(CudaException.class, () -> softmaxRows(1, 40, 48));
        assertEquals(719, e.code());
        assertTrue(e.getMessage().contains("warp shuffle: lane 0 reads lane 16, which does not take part"),
                e.getMessage());
    }

    @Test
    void rejectsLaunchConfigurationsCudaRejects() {
        try (KernelArgs args = new KernelArgs(); Arena a = Arena.ofConfined()) {
            MemorySegment p = args.pack(Kernel.SOFTMAX, 0L, 4L, 0L, 4L, 0, 1); // zero rows: nothing to do
            MemorySegment name = a.allocateFrom("isthmus_softmax");
            assertEquals(0, api.launch(name, 1, 1, 1, 1024, 1, 1, 0, p));
            assertEquals(1, api.launch(name, 1, 1, 1, 1056, 1, 1, 0, p));
            assertTrue(api.lastError().contains("invalid block (1056,1,1)"), api.lastError());
            assertEquals(1, api.launch(name, 1, 65536, 1, 32, 1, 1, 0, p));
            assertTrue(api.lastError().contains("invalid grid (1,65536,1)"), api.lastError());
            assertEquals(1, api.launch(name, 1, 1, 1, 32, 1, 1, 49153, p));
            assertTrue(api.lastError().contains("49153 bytes of dynamic shared memory"), api.lastError());
            assertEquals(500, api.launch(a.allocateFrom("isthmus_no_such_kernel"), 1, 1, 1, 32, 1, 1, 0, p));
            assertTrue(api.lastError().contains("no kernel named isthmus_no_such_kernel"), api.lastError());
        }
    }
}
