package dev.isthmus.backend.cpu;

import dev.isthmus.api.DType;
import dev.isthmus.api.Device;
import dev.isthmus.api.Op;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.discovery.Backends;
import dev.isthmus.api.discovery.Capabilities;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ProviderTest {

    @Test
    void serviceLoaderFindsTheCpuBackend() {
        Backends.Candidate c = Backends.select("cpu");
        assertEquals("cpu", c.name());
        assertEquals(0, c.provider().priority());
        assertTrue(c.availability().available());
        assertTrue(c.availability().detail().contains("Java Vector API"), c.availability().detail());
        try (Backend b = c.provider().create(new BackendOptions(3, Map.of()))) {
            assertEquals("cpu", b.name());
            assertEquals(Device.HOST, b.device());
            assertEquals(3, ((CpuBackend) b).threads());
        }
    }

    @Test
    void supportsExactlyTheProductMatrix() {
        try (Backend b = new CpuBackendProvider().create(BackendOptions.defaults())) {
            assertTrue(Capabilities.gaps(b).isEmpty(), Capabilities.gaps(b).toString());
            assertTrue(b.supports(Op.RMS_NORM, DType.F16));
            assertFalse(b.supports(Op.MATMUL, DType.I8));
            assertFalse(b.supports(Op.ADD, DType.F16));
            assertFalse(b.supports(Op.COPY_ROWS, DType.Q8_0));
            assertFalse(b.supports(Op.ATTENTION, DType.Q4_0));
            assertTrue(b.supports(Op.ATTENTION, DType.F16, DType.BF16));
        }
    }

    @Test
    void allocateIsZeroedAlignedAndReleasable() {
        try (Backend b = new CpuBackendProvider().create(BackendOptions.defaults())) {
            Tensor t = b.allocate(DType.F32, 3, 5);
            assertEquals(0, t.segment().address() % 64);
            assertArrayEquals(new float[15], t.toFloatArray());
            Tensor q = b.allocate(DType.Q4_K, 2, 256);
            assertEquals(2 * 144, q.segment().byteSize());
            b.release(t.slice(0, 1)); // a view is not the allocation: ignored
            t.setFloat(2, 4, 1f);
            b.release(t);
            assertThrows(IllegalStateException.class, () -> t.getFloat(0, 0));
            b.release(t); // twice is harmless

            // large tensors are mapped (zero pages, resident only once touched), with the same guarantees
            Tensor big = b.allocate(DType.F32, 512, 1024);
            assertEquals(0, big.segment().address() % 64);
            assertEquals(0f, big.getFloat(511, 1023));
            assertEquals(0f, big.getFloat(0, 0));
            big.setFloat(300, 7, 2.5f);
            assertEquals(2.5f, big.getFloat(300, 7));
            b.release(big);
            assertThrows(IllegalStateException.class, () -> big.getFloat(0, 0));
        }
    }

    @Test
    void copyMovesRowsBetweenViews() {
        try (Backend b = new CpuBackendProvider().create(BackendOptions.defaults()); Arena arena = Arena.ofConfined()) {
            Tensor src = TestData.f32(arena, new float[] {1, 2, 3, 4, 5, 6}, 3, 2);
            Tensor dst = b.allocate(DType.F32, 5, 2);
            b.copy(src.slice(1, 2), dst.slice(3, 2));
            assertArrayEquals(new float[] {0, 0, 0, 0, 0, 0, 3, 4, 5, 6}, dst.toFloatArray());
            assertThrows(IllegalArgumentException.class, () -> b.copy(src, dst));
        }
    }
}
