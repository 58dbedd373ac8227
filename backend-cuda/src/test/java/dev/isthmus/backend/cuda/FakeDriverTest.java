package dev.isthmus.backend.cuda;

import dev.isthmus.api.Attention;
import dev.isthmus.api.DType;
import dev.isthmus.api.KvLayout;
import dev.isthmus.api.Rope;
import dev.isthmus.api.RopeLayout;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.spi.Availability;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The backend's real driver path — provider probe, {@link DriverGpu} over the jextract bindings, module loading
 * of the packaged fatbin, kernel launches through {@code cuLaunchKernel}'s {@code kernelParams}, the hand-written
 * cuBLAS downcalls, stream capture — against test doubles of {@code libcuda.so.1} and {@code libcublas.so.13}
 * built over the kernel emulator (native/cuda/emu/fake_libcuda.cpp, fake_libcublas.cpp). Runs only in the
 * surefire execution {@code fake-driver}, which puts them on {@code LD_LIBRARY_PATH}.
 *
 * <p>The same kernels run behind both paths, so every result must equal, bit for bit, what the backend computes
 * through {@link EmulatedGpu} (whose results the conformance suite checks against the float64 reference).
 */
class FakeDriverTest {

    @BeforeAll
    static void requireTheFakeDriver() {
        String path = System.getenv("LD_LIBRARY_PATH");
        assertTrue(path != null && path.contains("fake-cuda-driver"),
                "FakeDriverTest runs in the fake-driver surefire execution (LD_LIBRARY_PATH=" + path + ")");
    }

    @Test
    void theProviderFindsTheFakeDeviceThroughTheRealDriverPath() {
        Availability a = new CudaBackendProvider().probe();
        assertTrue(a.available(), a.detail());
        assertTrue(a.detail().startsWith("Isthmus fake CUDA driver (kernel emulator), compute capability 8.0, 16.0 GiB, "
                + "4 SMs, driver CUDA 13.0; kernels CUDA "), a.detail());
        assertTrue(a.detail().endsWith("; cuBLAS libcublas.so.13"), a.detail());
        CudaProbe.Result other = CudaProbe.probe(new CudaProbe.RealDriver(), KernelResources.load(), 1);
        assertEquals("no CUDA device 1 (1 found; set cuda.device)", other.availability().detail());
    }

    @Test
    void moduleLoadingErrorsComeWithTheDriversReason() {
        CudaException notFatbin = assertThrows(CudaException.class,
                () -> DriverGpu.open(0, "not a fatbin at all, just some bytes".getBytes(), "d", 4, false));
        assertEquals(200, notFatbin.code());
        assertTrue(notFatbin.getMessage().startsWith("loading the CUDA kernels (cuModuleLoadDataEx) failed: "
                + "CUDA_ERROR_INVALID_IMAGE (200)"), notFatbin.getMessage());
        // A well-formed fatbin with only PTX: no code this "sm_80 device" can use.
        byte[] ptxOnly = FatbinFormatTest.fatbin(1, 90, ".version 9.0\n".getBytes(), 0);
        CudaException noBinary = assertThrows(CudaException.class, () -> DriverGpu.open(0, ptxOnly, "d", 4, false));
        assertEquals(209, noBinary.code());
        assertTrue(noBinary.getMessage().contains("CUDA_ERROR_NO_BINARY_FOR_GPU (209)"), noBinary.getMessage());
    }

    /** Random bytes of a quantized type with finite f16 scales at the given offsets of each block. */
    static byte[] weights(DType t, int rows, int cols, int[] halfFields, SplittableRandom r) {
        int blocks = rows * cols / t.blockSize();
        byte[] b = new byte[blocks * t.blockBytes()];
        r.nextBytes(b);
        ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        for (int k = 0; k < blocks; k++) {
            for (int f : halfFields) {
                bb.putShort(k * t.blockBytes() + f, Float.floatToFloat16((float) r.nextDouble(-0.05, 0.05)));
            }
        }
        return b;
    }

    static float[] floats(SplittableRandom r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) r.nextDouble(-1, 1);
        }
        return a;
    }

    /** Uploads host bytes as a device tensor. */
    static Tensor upload(Backend b, Arena a, DType t, byte[] bytes, long... shape) {
        Tensor h = Tensor.host(a.allocate(bytes.length, 64), t, shape);
        MemorySegment.copy(bytes, 0, h.segment(), ValueLayout.JAVA_BYTE, 0, bytes.length);
        Tensor d = b.allocate(t, shape);
        b.copy(h, d);
        return d;
    }

    static Tensor upload(Backend b, Arena a, float[] v, long... shape) {
        Tensor h = Tensor.allocate(a, DType.F32, shape);
        h.copyFrom(v);
        Tensor d = b.allocate(DType.F32, shape);
        b.copy(h, d);
        return d;
    }

    static float[] download(Backend b, Arena a, Tensor d) {
        Tensor h = Tensor.allocate(a, DType.F32, d.shape());
        b.copy(d, h);
        return h.toFloatArray();
    }

    /** A workload touching every kind of kernel and both matmul paths; returns every output. */
    static List<float[]> workload(Backend b) {
        SplittableRandom r = new SplittableRandom(2024);
        List<float[]> out = new ArrayList<>();
        try (Arena a = Arena.ofConfined()) {
            for (int n : new int[] {1, 20}) { // matvec kernels, then cuBLAS
                Tensor x = upload(b, a, floats(r, n * 512), n, 512);
                Tensor w32 = upload(b, a, floats(r, 48 * 512), 48, 512);
                Tensor q4k = upload(b, a, DType.Q4_K, weights(DType.Q4_K, 48, 512, new int[] {0, 2}, r), 48, 512);
                Tensor q80 = upload(b, a, DType.Q8_0, weights(DType.Q8_0, 48, 512, new int[] {0}, r), 48, 512);
                Tensor o = b.allocate(DType.F32, n, 48);
                for (Tensor w : new Tensor[] {w32, q4k, q80}) {
                    b.matmul(x, w, o);
                    out.add(download(b, a, o));
                }
            }
            Tensor q6 = upload(b, a, DType.Q6_K, weights(DType.Q6_K, 5, 512, new int[] {208}, r), 5, 512);
            Tensor dq = b.allocate(DType.F32, 5, 512);
            b.dequantize(q6, dq);
            out.add(download(b, a, dq));
            Tensor e = b.allocate(DType.F32, 3, 512);
            b.embeddingLookup(q6, new int[] {4, 0, 4}, e);
            out.add(download(b, a, e));
            Tensor h = upload(b, a, floats(r, 6 * 64), 6, 64);
            Tensor y = b.allocate(DType.F32, 6, 64);
            b.rmsNorm(h, upload(b, a, floats(r, 64), 64), 1e-5f, y);
            b.softmax(y, y);
            out.add(download(b, a, y));
            Tensor q = upload(b, a, floats(r, 6 * 4 * 16), 6, 4, 16);
            b.rope(q, new int[] {0, 1, 2, 900, 31, 7}, new Rope(RopeLayout.NORMAL, 16, 10000, 1, null));
            out.add(download(b, a, q));
            Tensor k = b.allocate(DType.BF16, 64, 2, 16);
            Tensor v = b.allocate(DType.BF16, 64, 2, 16);
            b.copyRows(upload(b, a, floats(r, 40 * 32), 40, 2, 16), k, range(40));
            b.copyRows(upload(b, a, floats(r, 40 * 32), 40, 2, 16), v, range(40));
            Tensor att = b.allocate(DType.F32, 6, 4, 16);
            KvLayout layout = new KvLayout(8, new int[][] {{3, 0, 1}, {4, 2}}, new int[] {20, 13},
                    new int[] {0, 1, 0, 1, 0, 1}, new int[] {19, 12, 5, 0, 10, 7});
            b.attention(q, k, v, layout, new Attention(0.25f, true, 0, null, 0f), att);
            out.add(download(b, a, att));
            out.add(new float[] {b.argmax(y)[0], b.argmax(y)[5]});
        }
        return out;
    }

    static int[] range(int n) {
        int[] a = new int[n];
        for (int i = 0; i < n; i++) {
            a[i] = i;
        }
        return a;
    }

    private static List<float[]> run(Function<BackendOptions, Backend> open, Map<String, String> p) {
        try (Backend b = open.apply(new BackendOptions(0, p))) {
            return workload(b);
        }
    }

    @Test
    void everyOpThroughTheDriverEqualsTheSameOpThroughTheEmulatorApi() {
        for (Map<String, String> p : List.of(Map.<String, String>of(), Map.of("cuda.graphs", "true"))) {
            List<float[]> viaDriver = run(o -> new CudaBackendProvider().create(o), p);
            List<float[]> viaEmulator = run(CudaBackendProvider::emulated, Map.of());
            assertEquals(viaEmulator.size(), viaDriver.size());
            for (int i = 0; i < viaDriver.size(); i++) {
                assertArrayEquals(viaEmulator.get(i), viaDriver.get(i), p + ": output " + i);
            }
        }
    }

    @Test
    void theDriverBackendUsesCublasAndItsGraphsUpdateAcrossDecodeSteps() {
        try (Backend b = new CudaBackendProvider().create(CudaBackendProvider.options(Map.of("cuda.graphs", "true")))) {
            CudaBackend cuda = (CudaBackend) b;
            assertTrue(cuda.description().endsWith("; cuBLAS (libcublas.so.13)"), cuda.description());
            List<Integer> tokens = CudaGraphsTest.decode(cuda, 10);
            List<Integer> eager;
            try (CudaBackend e = CudaBackendProvider.emulated(BackendOptions.defaults())) {
                eager = CudaGraphsTest.decode(e, 10);
            }
            assertEquals(eager, tokens);
            CudaStream.GraphStats s = CudaGraphsTest.graphStats(cuda);
            assertTrue(s.updates() >= 8 && s.instantiations() <= 3, s.toString());
        }
    }
}
