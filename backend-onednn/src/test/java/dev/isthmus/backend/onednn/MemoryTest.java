package dev.isthmus.backend.onednn;

import dev.isthmus.api.DType;
import dev.isthmus.api.Device;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MemoryTest {

    @Test
    void allocateIsZeroedHostMemoryFreedOnlyThroughTheAllocatedTensor() {
        try (Backend b = new OneDnnBackendProvider().create(BackendOptions.defaults())) {
            assertEquals(Device.HOST, b.device());
            Tensor t = b.allocate(DType.F32, 4, 8);
            assertArrayEquals(new float[32], t.toFloatArray());
            b.release(t.slice(0, 2));
            t.setFloat(3, 7, 1f);
            assertEquals(1f, t.getFloat(3, 7), "a view starting at the same address is not the allocation");
            b.release(Tensor.allocate(Arena.ofAuto(), DType.F32, 4));
            b.release(t);
            assertThrows(IllegalStateException.class, () -> t.getFloat(0, 0));
            b.release(t);
        }
    }

    @Test
    void copyBetweenViews() {
        try (Backend b = new OneDnnBackendProvider().create(BackendOptions.defaults())) {
            Tensor a = b.allocate(DType.F32, 6, 5);
            Tensor c = b.allocate(DType.F32, 3, 5);
            float[] values = new float[30];
            for (int i = 0; i < values.length; i++) {
                values[i] = i;
            }
            a.copyFrom(values);
            b.copy(a.slice(2, 3), c);
            assertArrayEquals(java.util.Arrays.copyOfRange(values, 10, 25), c.toFloatArray());
            Tensor heads = b.allocate(DType.F32, 2, 3, 5);
            b.copy(a.reshape(2, 3, 5), heads);
            assertArrayEquals(values, heads.toFloatArray());
            assertThrows(IllegalArgumentException.class, () -> b.copy(a, c));
        }
    }

    @Test
    void closedBackendRefusesWork() {
        Backend b = new OneDnnBackendProvider().create(BackendOptions.defaults());
        Tensor x = b.allocate(DType.F32, 1, 4);
        b.close();
        b.close();
        try (Arena arena = Arena.ofShared()) {
            Tensor y = Tensor.allocate(arena, DType.F32, 1, 4);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> b.silu(y, y));
            assertTrue(e.getMessage().contains("closed"), e.getMessage());
        }
        assertThrows(IllegalStateException.class, () -> x.getFloat(0, 0), "its memory went with it");
    }
}
