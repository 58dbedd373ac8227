package dev.isthmus.engine.quant;

import dev.isthmus.api.DType;

/**
 * The 32-element 4- and 5-bit formats (Q4_0, Q5_0: {@link SymmetricQuantizer}; Q4_1, Q5_1:
 * {@link AffineQuantizer}) store their quants alike after the block's scale fields: for 5 bits a u32 {@code qh}
 * whose bit j is bit 4 of element j, then u8 {@code qs[16]}, byte j holding element j in its low nibble and
 * element j + 16 in its high nibble.
 */
abstract class NibbleQuantizer extends BlockQuantizer {
    /** 4 or 5. */
    final int bits;
    /** Scratch for encoding one block: its quants, unsigned, in [0, 2^bits - 1]. */
    final int[] q = new int[32];

    NibbleQuantizer(DType dtype, int bits) {
        super(dtype);
        this.bits = bits;
    }

    /** Writes {@link #q} from {@code y[at]} on. */
    final void packQuants(byte[] y, int at) {
        int qs = at;
        if (bits == 5) {
            int qh = 0;
            for (int i = 0; i < 32; i++) {
                qh |= (q[i] >>> 4) << i;
            }
            Bits.putInt(y, at, qh);
            qs += 4;
        }
        for (int j = 0; j < 16; j++) {
            y[qs + j] = (byte) ((q[j] & 0x0F) | (q[j + 16] & 0x0F) << 4);
        }
    }

    /**
     * Quant {@code i} (0 to 31) of the block whose quants {@link #packQuants} wrote from {@code y[at]} on. Reads
     * without scratch, so that decoding stays safe from several threads at once.
     */
    final int quant(byte[] y, int at, int i) {
        int qs = bits == 5 ? at + 4 : at;
        int b = y[qs + (i & 15)] & 0xFF;
        int nibble = i < 16 ? b & 0x0F : b >>> 4;
        return bits == 5 ? nibble | ((Bits.getInt(y, at) >>> i) & 1) << 4 : nibble;
    }
}
