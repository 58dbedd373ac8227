package dev.isthmus.backend.cpu.format;

import dev.isthmus.backend.cpu.kernel.LittleEndian;

import java.lang.foreign.MemorySegment;

/**
 * Unpacks the 12-byte 6-bit scale fields of the K-quant super-blocks with word-wide bit operations into
 * longs holding one 8-bit value per byte, so the kernels pick a scale with a shift and a mask (small
 * enough that the JIT always inlines it) instead of per-scale byte juggling.
 */
final class KQuantScales {
    private static final int LOW_SIX_BITS = 0x3F3F3F3F;
    private static final int LOW_NIBBLES = 0x0F0F0F0F;
    private static final int TWO_BITS = 0x03030303;

    private KQuantScales() {
    }

    /**
     * Scales of the 8 sub-blocks of Q4_K/Q5_K, sub-block {@code j} in byte {@code j}. Bytes 0..3 of the
     * field hold scales 0..3 in their low six bits and the top two bits of scales 4..7; bytes 8..11 hold the
     * low four bits of scales 4..7.
     */
    static long q4kScales(MemorySegment s, long field) {
        int w0 = s.get(LittleEndian.INT, field);
        int w2 = s.get(LittleEndian.INT, field + 8);
        int first = w0 & LOW_SIX_BITS;
        int second = (w2 & LOW_NIBBLES) | (((w0 >>> 6) & TWO_BITS) << 4);
        return (first & 0xFFFFFFFFL) | ((long) second << 32);
    }

    /**
     * Minimums of the 8 sub-blocks of Q4_K/Q5_K, packed like {@link #q4kScales} in bytes 4..7 (low six bits,
     * and top bits of 4..7) and the high nibbles of bytes 8..11.
     */
    static long q4kMins(MemorySegment s, long field) {
        int w1 = s.get(LittleEndian.INT, field + 4);
        int w2 = s.get(LittleEndian.INT, field + 8);
        int first = w1 & LOW_SIX_BITS;
        int second = ((w2 >>> 4) & LOW_NIBBLES) | (((w1 >>> 6) & TWO_BITS) << 4);
        return (first & 0xFFFFFFFFL) | ((long) second << 32);
    }

    /**
     * Scales 0..7 (when {@code upper} is false) or 8..15 of Q3_K, stored with an offset of 32, one per byte.
     * Their low four bits are the low nibbles (scales 0..7) or high nibbles (8..15) of bytes 0..7; the high
     * two bits come from bytes 8..11, two bits per scale: scale {@code i} uses bits {@code 2(i/4)} of byte
     * {@code 8 + i%4}.
     */
    static long q3kScales(MemorySegment s, long field, boolean upper) {
        int w0 = s.get(LittleEndian.INT, field);
        int w1 = s.get(LittleEndian.INT, field + 4);
        int high = s.get(LittleEndian.INT, field + 8);
        int shift = upper ? 4 : 0;
        int first = ((w0 >>> shift) & LOW_NIBBLES) | (((high >>> shift) & TWO_BITS) << 4);
        int second = ((w1 >>> shift) & LOW_NIBBLES) | (((high >>> (shift + 2)) & TWO_BITS) << 4);
        return (first & 0xFFFFFFFFL) | ((long) second << 32);
    }
}
