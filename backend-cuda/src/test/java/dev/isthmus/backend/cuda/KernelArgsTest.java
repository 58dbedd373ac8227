package dev.isthmus.backend.cuda;

import dev.isthmus.api.DType;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** kernelParams packing and the kernel table's lookups. */
class KernelArgsTest {

    @Test
    void eachPointerOfTheArrayPointsAtItsValueWithItsCType() {
        try (KernelArgs args = new KernelArgs()) {
            MemorySegment p = args.pack(Kernel.SCALE, 0x1234_5678_9ABCL, 256L, 0L, -8L, 7, 99, 2.5f);
            assertEquals(7 * 8, p.byteSize());
            long[] longs = new long[7];
            for (int i = 0; i < 7; i++) {
                MemorySegment v = p.getAtIndex(ValueLayout.ADDRESS, i).reinterpret(8);
                longs[i] = switch (Kernel.SCALE.params().get(i)) {
                    case PTR, I64 -> v.get(ValueLayout.JAVA_LONG, 0);
                    case I32 -> v.get(ValueLayout.JAVA_INT, 0);
                    case F32 -> Float.floatToRawIntBits(v.get(ValueLayout.JAVA_FLOAT, 0));
                };
            }
            assertEquals(0x1234_5678_9ABCL, longs[0]);
            assertEquals(256L, longs[1]);
            assertEquals(0L, longs[2]);
            assertEquals(-8L, longs[3]);
            assertEquals(7, longs[4]);
            assertEquals(99, longs[5]);
            assertEquals(Float.floatToRawIntBits(2.5f), longs[6]);
        }
    }

    @Test
    void wrongCountsAndTypesNameTheKernelAndParameter() {
        try (KernelArgs args = new KernelArgs()) {
            IllegalArgumentException count = assertThrows(IllegalArgumentException.class,
                    () -> args.pack(Kernel.SCALE, 1L, 2L));
            assertEquals("isthmus_scale takes 7 arguments, got 2", count.getMessage());
            IllegalArgumentException type = assertThrows(IllegalArgumentException.class,
                    () -> args.pack(Kernel.SCALE, 1L, 2L, 3L, 4L, 5, 6, 2.5)); // a double, not a float
            assertEquals("isthmus_scale parameter 6 (s: F32) needs a Float, got Double 2.5", type.getMessage());
            assertThrows(IllegalArgumentException.class, () -> args.pack(Kernel.SCALE, 1, 2L, 3L, 4L, 5, 6, 2f));
        }
    }

    @Test
    void everyKernelFitsTheArgumentBufferAndHasAUniqueSymbol() {
        Set<String> symbols = new HashSet<>();
        for (Kernel k : Kernel.values()) {
            assertTrue(k.params().size() <= KernelArgs.MAX_PARAMS, k.symbol());
            assertTrue(symbols.add(k.symbol()), "duplicate " + k.symbol());
            assertTrue(k.symbol().startsWith("isthmus_"));
        }
    }

    @Test
    void lookupsByDtypeCoverTheSupportedTypes() {
        for (DType t : CudaBackend.WEIGHT_TYPES) {
            assertEquals("isthmus_matvec_" + t.name().toLowerCase(), Kernel.matvec(t).symbol());
            assertEquals("isthmus_rows_" + t.name().toLowerCase(), Kernel.rows(t).symbol());
            if (t.isQuantized()) {
                assertEquals("isthmus_rows_" + t.name().toLowerCase() + "_to_f16", Kernel.rowsToF16(t).symbol());
            }
        }
        for (DType t : CudaBackend.CACHE_TYPES) {
            assertEquals("isthmus_copy_rows_" + t.name().toLowerCase(), Kernel.copyRows(t).symbol());
            assertEquals("isthmus_attention_" + t.name().toLowerCase(), Kernel.attention(t).symbol());
        }
        assertThrows(IllegalArgumentException.class, () -> Kernel.matvec(DType.I8));
        assertThrows(IllegalArgumentException.class, () -> Kernel.rowsToF16(DType.F32));
    }
}
