package dev.isthmus.conformance.reference;

import dev.isthmus.api.DType;

/**
 * Decodes every {@link DType} that holds real numbers into doubles, element by element, from the ggml
 * block layouts (ggml-common.h). All multi-byte fields are little-endian; "f16" fields are IEEE binary16.
 *
 * <p>Each block decoder computes element {@code e} of a block directly from where the layout puts its bits,
 * rather than mirroring an optimized loop, so that it can be checked against the layout description.
 */
public final class Dequant {
    private Dequant() {
    }

    /** Decodes {@code rows × cols} elements stored as contiguous rows starting at {@code offset}. */
    public static double[][] matrix(DType type, byte[] src, int offset, int rows, int cols) {
        int rowBytes = Math.toIntExact(type.rowBytes(cols));
        double[][] out = new double[rows][];
        for (int r = 0; r < rows; r++) {
            out[r] = row(type, src, offset + r * rowBytes, cols);
        }
        return out;
    }

    /** Decodes one row of {@code elements} elements (a multiple of the block size) starting at {@code offset}. */
    public static double[] row(DType type, byte[] src, int offset, int elements) {
        if (elements % type.blockSize() != 0) {
            throw new IllegalArgumentException(type + " rows need a multiple of " + type.blockSize() + " elements");
        }
        double[] out = new double[elements];
        int blocks = elements / type.blockSize();
        for (int b = 0; b < blocks; b++) {
            int o = offset + b * type.blockBytes();
            int base = b * type.blockSize();
            for (int e = 0; e < type.blockSize(); e++) {
                out[base + e] = element(type, src, o, e);
            }
        }
        return out;
    }

    /** Element {@code e} of the block of {@code type} starting at byte {@code o}. */
    public static double element(DType type, byte[] b, int o, int e) {
        return switch (type) {
            case F32 -> Float.intBitsToFloat(u32(b, o));
            case F16 -> HalfFloats.f16ToDouble(u16(b, o));
            case BF16 -> HalfFloats.bf16ToDouble(u16(b, o));
            case I8 -> b[o];
            case I32 -> u32(b, o);
            case Q4_0 -> q4_0(b, o, e);
            case Q4_1 -> q4_1(b, o, e);
            case Q5_0 -> q5_0(b, o, e);
            case Q5_1 -> q5_1(b, o, e);
            case Q8_0 -> q8_0(b, o, e);
            case Q2_K -> q2_K(b, o, e);
            case Q3_K -> q3_K(b, o, e);
            case Q4_K -> q4_K(b, o, e);
            case Q5_K -> q5_K(b, o, e);
            case Q6_K -> q6_K(b, o, e);
            case Q8_K -> q8_K(b, o, e);
        };
    }

    // ---- 32-element blocks -------------------------------------------------------------------------
    // Nibble layout shared by Q4_0/Q4_1/Q5_0/Q5_1: byte qs[j] holds element j in its low nibble and
    // element j + 16 in its high nibble.

    /** Q4_0 (18 bytes): f16 d; u8 qs[16]. x = (q - 8) · d. */
    static double q4_0(byte[] b, int o, int e) {
        double d = f16(b, o);
        int q = nibble(b, o + 2, e);
        return (q - 8) * d;
    }

    /** Q4_1 (20 bytes): f16 d; f16 m; u8 qs[16]. x = q · d + m. */
    static double q4_1(byte[] b, int o, int e) {
        double d = f16(b, o);
        double m = f16(b, o + 2);
        int q = nibble(b, o + 4, e);
        return q * d + m;
    }

    /** Q5_0 (22 bytes): f16 d; u32 qh; u8 qs[16]. Bit e of qh is bit 4 of element e. x = (q - 16) · d. */
    static double q5_0(byte[] b, int o, int e) {
        double d = f16(b, o);
        int qh = u32(b, o + 2);
        int q = nibble(b, o + 6, e) | (((qh >>> e) & 1) << 4);
        return (q - 16) * d;
    }

    /** Q5_1 (24 bytes): f16 d; f16 m; u32 qh; u8 qs[16]. x = q · d + m. */
    static double q5_1(byte[] b, int o, int e) {
        double d = f16(b, o);
        double m = f16(b, o + 2);
        int qh = u32(b, o + 4);
        int q = nibble(b, o + 8, e) | (((qh >>> e) & 1) << 4);
        return q * d + m;
    }

    /** Q8_0 (34 bytes): f16 d; i8 qs[32]. x = q · d. */
    static double q8_0(byte[] b, int o, int e) {
        return b[o + 2 + e] * f16(b, o);
    }

    private static int nibble(byte[] b, int qs, int e) {
        int v = b[qs + (e % 16)] & 0xFF;
        return e < 16 ? v & 0x0F : v >>> 4;
    }

    // ---- 256-element super-blocks -----------------------------------------------------------------

    /**
     * Q2_K (84 bytes): u8 scales[16]; u8 qs[64]; f16 d; f16 dmin. Elements come in two halves of 128; in
     * half {@code h}, element {@code 32j + l} (j = 0..3, l = 0..31) is bits {@code 2j..2j+1} of
     * {@code qs[32h + l]}, in sub-block {@code 8h + 2j + l/16} whose scale byte has the scale in its low
     * nibble and the min in its high nibble. x = d · sc · q - dmin · m.
     */
    static double q2_K(byte[] b, int o, int e) {
        double d = f16(b, o + 80);
        double dmin = f16(b, o + 82);
        int half = e / 128;
        int j = (e % 128) / 32;
        int l = e % 32;
        int q = ((b[o + 16 + 32 * half + l] & 0xFF) >>> (2 * j)) & 3;
        int sc = b[o + 8 * half + 2 * j + l / 16] & 0xFF;
        return d * (sc & 0x0F) * q - dmin * (sc >>> 4);
    }

    /**
     * Q3_K (110 bytes): u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d. The low two bits of each quant are
     * placed like Q2_K's; element {@code 32j + l} of half {@code h} takes its third bit from bit
     * {@code 4h + j} of {@code hmask[l]}, and a clear bit means "subtract 4" (q = low2 - (hbit ? 0 : 4)). The 16
     * sub-block scales are 6-bit: the low four bits of scale {@code i} are the low nibble of byte {@code i}
     * (i &lt; 8) or the high nibble of byte {@code i - 8}; the high two bits are bits
     * {@code 2(i/4)..2(i/4)+1} of byte {@code 8 + i % 4}. x = d · (sc - 32) · q.
     */
    static double q3_K(byte[] b, int o, int e) {
        double d = f16(b, o + 108);
        int half = e / 128;
        int j = (e % 128) / 32;
        int l = e % 32;
        int low2 = ((b[o + 32 + 32 * half + l] & 0xFF) >>> (2 * j)) & 3;
        boolean high = ((b[o + l] & 0xFF) >>> (4 * half + j) & 1) != 0;
        int q = low2 - (high ? 0 : 4);
        int sub = 8 * half + 2 * j + l / 16;
        return d * (q3kScale(b, o + 96, sub) - 32) * q;
    }

    /** The 6-bit scale {@code i} (0..15) of a Q3_K block whose 12 scale bytes start at {@code s}. */
    static int q3kScale(byte[] b, int s, int i) {
        int low4 = i < 8 ? b[s + i] & 0x0F : (b[s + i - 8] & 0xFF) >>> 4;
        int high2 = ((b[s + 8 + i % 4] & 0xFF) >>> (2 * (i / 4))) & 3;
        return low4 | (high2 << 4);
    }

    /**
     * Q4_K (144 bytes): f16 d; f16 dmin; u8 scales[12]; u8 qs[128]. Elements come in four chunks of 64; in
     * chunk {@code c} element {@code l} (l &lt; 32) is the low nibble of {@code qs[32c + l]} in sub-block
     * {@code 2c} and element {@code 32 + l} is its high nibble in sub-block {@code 2c + 1}. Sub-block scales
     * and mins are 6-bit (see {@link #k4Scale}). x = d · sc · q - dmin · m.
     */
    static double q4_K(byte[] b, int o, int e) {
        double d = f16(b, o);
        double dmin = f16(b, o + 2);
        int c = e / 64;
        int l = e % 32;
        boolean highNibble = (e % 64) >= 32;
        int sub = 2 * c + (highNibble ? 1 : 0);
        int v = b[o + 16 + 32 * c + l] & 0xFF;
        int q = highNibble ? v >>> 4 : v & 0x0F;
        return d * k4Scale(b, o + 4, sub) * q - dmin * k4Min(b, o + 4, sub);
    }

    /**
     * Q5_K (176 bytes): f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]. Like Q4_K, plus a fifth bit
     * (worth 16) for element {@code l} / {@code 32 + l} of chunk {@code c} from bit {@code 2c} / {@code 2c + 1}
     * of {@code qh[l]}.
     */
    static double q5_K(byte[] b, int o, int e) {
        double d = f16(b, o);
        double dmin = f16(b, o + 2);
        int c = e / 64;
        int l = e % 32;
        boolean highNibble = (e % 64) >= 32;
        int sub = 2 * c + (highNibble ? 1 : 0);
        int v = b[o + 48 + 32 * c + l] & 0xFF;
        int q = highNibble ? v >>> 4 : v & 0x0F;
        int bit = ((b[o + 16 + l] & 0xFF) >>> sub) & 1;
        q += 16 * bit;
        return d * k4Scale(b, o + 4, sub) * q - dmin * k4Min(b, o + 4, sub);
    }

    /**
     * The 6-bit scale of sub-block {@code j} (0..7) of Q4_K/Q5_K, whose 12 scale bytes start at {@code s}:
     * for j &lt; 4 the low 6 bits of byte j; otherwise the low nibble of byte j + 4 with the top two bits of
     * byte j - 4 above it.
     */
    static int k4Scale(byte[] b, int s, int j) {
        if (j < 4) {
            return b[s + j] & 63;
        }
        return (b[s + j + 4] & 0x0F) | (((b[s + j - 4] & 0xFF) >>> 6) << 4);
    }

    /**
     * The 6-bit min of sub-block {@code j}: for j &lt; 4 the low 6 bits of byte j + 4; otherwise the high
     * nibble of byte j + 4 with the top two bits of byte j above it.
     */
    static int k4Min(byte[] b, int s, int j) {
        if (j < 4) {
            return b[s + j + 4] & 63;
        }
        return ((b[s + j + 4] & 0xFF) >>> 4) | (((b[s + j] & 0xFF) >>> 6) << 4);
    }

    /**
     * Q6_K (210 bytes): u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d. Elements come in two halves of 128
     * (half {@code h} uses {@code ql[64h..]}, {@code qh[32h..]}, {@code scales[8h..]}); element
     * {@code 32t + l} (t = 0..3, l = 0..31) has as low four bits the low (t = 0, 1) or high (t = 2, 3)
     * nibble of {@code ql[l]} (t even) or {@code ql[l + 32]} (t odd), and as high two bits bits
     * {@code 2t..2t+1} of {@code qh[l]}; its scale is {@code scales[l/16 + 2t]}. x = d · sc · (q - 32).
     */
    static double q6_K(byte[] b, int o, int e) {
        double d = f16(b, o + 208);
        int half = e / 128;
        int t = (e % 128) / 32;
        int l = e % 32;
        int ql = o + 64 * half;
        int qh = o + 128 + 32 * half;
        int scales = o + 192 + 8 * half;
        int lowByte = b[ql + l + (t % 2 == 1 ? 32 : 0)] & 0xFF;
        int low4 = t < 2 ? lowByte & 0x0F : lowByte >>> 4;
        int high2 = ((b[qh + l] & 0xFF) >>> (2 * t)) & 3;
        int q = (low4 | (high2 << 4)) - 32;
        int sc = b[scales + l / 16 + 2 * t];
        return d * sc * q;
    }

    /** Q8_K (292 bytes): f32 d; i8 qs[256]; i16 bsums[16] (sums of 16 quants, not needed to decode). x = q · d. */
    static double q8_K(byte[] b, int o, int e) {
        double d = Float.intBitsToFloat(u32(b, o));
        return b[o + 4 + e] * d;
    }

    // ---- little-endian fields ---------------------------------------------------------------------

    static int u16(byte[] b, int o) {
        return (b[o] & 0xFF) | (b[o + 1] & 0xFF) << 8;
    }

    static int u32(byte[] b, int o) {
        return (b[o] & 0xFF) | (b[o + 1] & 0xFF) << 8 | (b[o + 2] & 0xFF) << 16 | (b[o + 3] & 0xFF) << 24;
    }

    static double f16(byte[] b, int o) {
        return HalfFloats.f16ToDouble(u16(b, o));
    }
}
