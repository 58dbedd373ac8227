package dev.isthmus.backend.cuda;

import dev.isthmus.api.DType;
import dev.isthmus.api.Device;
import dev.isthmus.api.Tensor;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Kernel arguments from tensors: device addresses (segments made from addresses, never dereferenced), byte
 * strides of views, and the checks the kernels rely on.
 */
class TensorArgsTest {
    static final Device GPU = new Device("cuda:0", false);
    static final long BASE = 0x7f00_0000_0000L;

    static Tensor device(DType t, long offset, long... shape) {
        long bytes = Tensor.byteSizeOf(t, shape);
        return Tensor.of(MemorySegment.ofAddress(BASE + offset).reinterpret(bytes), GPU, t, shape);
    }

    @Test
    void aContiguousMatrixHasItsRowBytesAsStride() {
        TensorArgs.Rows r = TensorArgs.rows(device(DType.F32, 0, 5, 33), GPU, "x");
        assertEquals(BASE, r.address());
        assertEquals(33 * 4, r.stride());
        assertEquals(5, r.rows());
        assertEquals(33, r.cols());
        TensorArgs.Rows q = TensorArgs.rows(device(DType.Q4_K, 256, 3, 512), GPU, "w");
        assertEquals(2 * 144, q.stride());
        assertEquals(BASE + 256, q.address());
    }

    @Test
    void aRowRangeViewKeepsTheParentStrideAndOffsetsTheAddress() {
        Tensor parent = device(DType.Q4_0, 0, 13, 64); // rows of 2 blocks = 36 bytes
        Tensor view = parent.slice(2, 9);
        TensorArgs.Rows r = TensorArgs.rows(view, GPU, "w");
        assertEquals(BASE + 2 * 36, r.address());
        assertEquals(36, r.stride());
        assertEquals(9, r.rows());
    }

    @Test
    void higherRankTensorsAreRowsWhenEvenlySpaced() {
        TensorArgs.Rows r = TensorArgs.rows(device(DType.F32, 0, 2, 3, 16), GPU, "x");
        assertEquals(6, r.rows());
        assertEquals(64, r.stride());
        // A slice of the middle dimension of each outer entry is not one stride apart.
        Tensor cache = device(DType.F32, 0, 10, 4, 16);
        TensorArgs.Rows slots = TensorArgs.outer(cache.slice(3, 5), GPU, "cache");
        assertEquals(BASE + 3 * 4 * 16 * 4, slots.address());
        assertEquals(4 * 16 * 4, slots.stride());
        assertEquals(5, slots.rows());
        assertEquals(64, slots.cols());
    }

    @Test
    void headsOfAQueryTensorAndItsView() {
        Tensor q = device(DType.F32, 0, 7, 8, 64).slice(2, 3);
        TensorArgs.Heads h = TensorArgs.heads(q, GPU, "q");
        assertEquals(BASE + 2L * 8 * 64 * 4, h.address());
        assertEquals(8 * 64 * 4, h.rowStride());
        assertEquals(64 * 4, h.headStride());
        assertEquals(3, h.n());
        assertThrows(IllegalArgumentException.class, () -> TensorArgs.heads(device(DType.F32, 0, 3, 64), GPU, "q"));
    }

    @Test
    void misalignedDataIsRejectedBeforeAKernelFaults() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TensorArgs.rows(device(DType.F32, 2, 4, 4), GPU, "x"));
        assertTrue(e.getMessage().contains("not 4-byte aligned"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> TensorArgs.rows(device(DType.F16, 1, 4, 4), GPU, "x"));
        TensorArgs.rows(device(DType.F16, 2, 4, 4), GPU, "x");
        // Q4_0 rows of one block are 18 bytes: 2-byte aligned, as the kernels need for the f16 scales.
        TensorArgs.rows(device(DType.Q4_0, 0, 3, 32).slice(1, 2), GPU, "w");
    }

    @Test
    void hostAndForeignTensorsAreRejectedWithAHint() {
        Tensor host = Tensor.of(MemorySegment.ofArray(new float[16]), Device.HOST, DType.F32, 4, 4);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TensorArgs.rows(host, GPU, "x"));
        assertTrue(e.getMessage().contains("is not on cuda:0; copy it there with Backend.copy first"), e.getMessage());
        Tensor other = Tensor.of(MemorySegment.ofAddress(BASE).reinterpret(64), new Device("cuda:1", false),
                DType.F32, 4, 4);
        assertThrows(IllegalArgumentException.class, () -> TensorArgs.rows(other, GPU, "x"));
    }
}
