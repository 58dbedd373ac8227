package dev.isthmus.api;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TensorTest {
    @Test
    void blockFormatsMatchGgml() {
        assertEquals(34, DType.Q8_0.blockBytes());
        assertEquals(18, DType.Q4_0.blockBytes());
        assertEquals(144, DType.Q4_K.blockBytes());
        assertEquals(210, DType.Q6_K.blockBytes());
        assertEquals(292, DType.Q8_K.blockBytes());
        assertEquals(DType.BF16, DType.fromGgmlId(30));
        assertEquals(3 * 18, DType.Q4_0.rowBytes(96));
        assertThrows(IllegalArgumentException.class, () -> DType.Q4_0.rowBytes(33));
        assertThrows(IllegalArgumentException.class, () -> DType.fromGgmlId(99));
    }

    @Test
    void sizesAndStridesOfQuantizedTensor() {
        try (Arena arena = Arena.ofConfined()) {
            Tensor t = Tensor.allocate(arena, DType.Q4_0, 5, 64);
            assertEquals(5 * 2 * 18, t.segment().byteSize());
            assertEquals(36, t.stride(0));
            assertEquals(18, t.stride(1));
            assertEquals(5, t.rows());
            assertEquals(2 * 36, t.slice(2, 3).segment().address() - t.segment().address());
            assertThrows(IllegalArgumentException.class, () -> Tensor.allocate(arena, DType.Q4_0, 5, 48));
        }
    }

    @Test
    void slicesShareMemoryAndKeepStrides() {
        try (Arena arena = Arena.ofConfined()) {
            Tensor t = Tensor.allocate(arena, DType.F32, 4, 3, 2);
            float[] values = new float[24];
            for (int i = 0; i < values.length; i++) {
                values[i] = i;
            }
            t.copyFrom(values);
            Tensor s = t.slice(1, 2);
            assertArrayEquals(new long[] {2, 3, 2}, s.shape());
            assertEquals(6f, s.getFloat(0, 0));
            assertEquals(17f, s.getFloat(5, 1));
            s.setFloat(0, 1, -1f);
            assertEquals(-1f, t.getFloat(3, 1));
            assertTrue(s.isContiguous());
            assertThrows(IndexOutOfBoundsException.class, () -> t.slice(3, 2));
        }
    }

    @Test
    void reshapeRequiresSameCount() {
        try (Arena arena = Arena.ofConfined()) {
            Tensor t = Tensor.allocate(arena, DType.F32, 6, 4);
            assertArrayEquals(new long[] {2, 3, 4}, t.reshape(2, 3, 4).shape());
            assertThrows(IllegalArgumentException.class, () -> t.reshape(5, 5));
        }
    }

    @Test
    void tooSmallSegmentIsRejected() {
        try (Arena arena = Arena.ofConfined()) {
            assertThrows(IllegalArgumentException.class,
                    () -> Tensor.host(arena.allocate(10), DType.F32, 3));
            assertFalse(Tensor.host(arena.allocate(12), DType.F32, 3).toString().isEmpty());
        }
    }
}
