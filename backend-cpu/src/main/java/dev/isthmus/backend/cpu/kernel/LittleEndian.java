package dev.isthmus.backend.cpu.kernel;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** Unaligned little-endian scalar access to segments, the byte order of GGUF files and of our buffers. */
public final class LittleEndian {
    public static final ValueLayout.OfShort SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfLong LONG =
            ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfFloat FLOAT =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private LittleEndian() {
    }

    /** The unsigned byte at {@code offset}. */
    public static int u8(MemorySegment s, long offset) {
        return s.get(ValueLayout.JAVA_BYTE, offset) & 0xFF;
    }

    public static float f32(MemorySegment s, long offset) {
        return s.get(FLOAT, offset);
    }

    public static void f32(MemorySegment s, long offset, float value) {
        s.set(FLOAT, offset, value);
    }

    /** The IEEE half-precision float at {@code offset}, widened. */
    public static float f16(MemorySegment s, long offset) {
        return Float.float16ToFloat(s.get(SHORT, offset));
    }
}
