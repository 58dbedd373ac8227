package dev.isthmus.conformance;

import dev.isthmus.api.Attention;
import dev.isthmus.api.DType;
import dev.isthmus.api.KvLayout;
import dev.isthmus.api.Rope;
import dev.isthmus.api.RopeLayout;
import dev.isthmus.conformance.reference.Dequant;
import dev.isthmus.conformance.reference.HalfFloats;
import dev.isthmus.conformance.reference.ReferenceOps;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The float64 reference checked against values worked out by hand from the format descriptions and the op
 * definitions, so that the suite's yardstick is not merely trusted.
 */
class ReferenceTest {
    private static final double EPS = 1e-12;

    // ---- half floats ------------------------------------------------------------------------------

    @Test
    void f16DecodingMatchesHandValuesAndTheJdkForAllPatterns() {
        assertEquals(1.0, HalfFloats.f16ToDouble(0x3C00));
        assertEquals(-2.0, HalfFloats.f16ToDouble(0xC000));
        assertEquals(65504.0, HalfFloats.f16ToDouble(0x7BFF));
        assertEquals(Math.pow(2, -24), HalfFloats.f16ToDouble(0x0001)); // smallest subnormal
        assertEquals(Math.pow(2, -14), HalfFloats.f16ToDouble(0x0400)); // smallest normal
        assertEquals(0.333251953125, HalfFloats.f16ToDouble(0x3555));
        assertEquals(Double.POSITIVE_INFINITY, HalfFloats.f16ToDouble(0x7C00));
        assertEquals(Double.NEGATIVE_INFINITY, HalfFloats.f16ToDouble(0xFC00));
        assertEquals(Double.NaN, HalfFloats.f16ToDouble(0x7E00));
        for (int bits = 0; bits < 0x10000; bits++) {
            assertEquals(Float.float16ToFloat((short) bits), HalfFloats.f16ToDouble(bits), 0.0, "bits " + bits);
        }
    }

    @Test
    void bf16DecodingAndRoundHalfToEven() {
        assertEquals(1.0, HalfFloats.bf16ToDouble(0x3F80));
        assertEquals(-3.0, HalfFloats.bf16ToDouble(0xC040));
        float oneUlp = 0x1p-7f; // BF16 spacing just above 1
        assertEquals((short) 0x3F80, HalfFloats.bf16Bits(1f + oneUlp / 2));            // tie, even below
        assertEquals((short) 0x3F82, HalfFloats.bf16Bits(1f + 3 * oneUlp / 2));        // tie, even above
        assertEquals((short) 0x3F81, HalfFloats.bf16Bits(1f + oneUlp / 2 + 0x1p-20f)); // just above the tie
        assertEquals((short) 0x3F80, HalfFloats.bf16Bits(1f + oneUlp / 2 - 0x1p-20f)); // just below the tie
        assertEquals((short) 0xBF82, HalfFloats.bf16Bits(-(1f + 3 * oneUlp / 2)));
        assertEquals(Double.POSITIVE_INFINITY, HalfFloats.bf16ToDouble(HalfFloats.bf16Bits(Float.MAX_VALUE)));
        assertEquals(Double.NaN, HalfFloats.bf16ToDouble(HalfFloats.bf16Bits(Float.NaN)));
    }

    @Test
    void f16RoundHalfToEven() {
        float ulp = 0x1p-10f; // F16 spacing just above 1
        assertEquals(1.0, HalfFloats.roundToF16(1f + ulp / 2));
        assertEquals(1.0 + 2 * ulp, HalfFloats.roundToF16(1f + 3 * ulp / 2));
        assertEquals(1.0 + ulp, HalfFloats.roundToF16(1f + ulp * 0.75f));
        assertEquals(1.0 + 2 * ulp, ReferenceOps.roundTo(DType.F16, 1f + 3 * ulp / 2));
        assertEquals(1.0, ReferenceOps.roundTo(DType.BF16, 1f + 0x1p-8f));
    }

    // ---- 32-element blocks ------------------------------------------------------------------------

    @Test
    void q4_0ByHand() {
        byte[] b = new byte[18];
        putF16(b, 0, 0x3800); // d = 0.5
        for (int j = 0; j < 16; j++) {
            b[2 + j] = (byte) (j | (15 - j) << 4); // element j has quant j, element j + 16 has quant 15 - j
        }
        double[] y = Dequant.row(DType.Q4_0, b, 0, 32);
        assertEquals(-4.0, y[0]);   // (0 - 8) * 0.5
        assertEquals(3.5, y[15]);   // (15 - 8) * 0.5
        assertEquals(3.5, y[16]);   // (15 - 8) * 0.5
        assertEquals(-4.0, y[31]);  // (0 - 8) * 0.5
        assertEquals(-1.5, y[5]);   // (5 - 8) * 0.5
        assertEquals(1.0, y[21]);   // (10 - 8) * 0.5
    }

    @Test
    void q4_1ByHand() {
        byte[] b = new byte[20];
        putF16(b, 0, 0x3400); // d = 0.25
        putF16(b, 2, 0xBC00); // m = -1
        b[4] = 0x3A;          // element 0: 10, element 16: 3
        double[] y = Dequant.row(DType.Q4_1, b, 0, 32);
        assertEquals(1.5, y[0]);    // 10 * 0.25 - 1
        assertEquals(-0.25, y[16]); // 3 * 0.25 - 1
        assertEquals(-1.0, y[1]);   // 0 * 0.25 - 1
    }

    @Test
    void q5_0ByHand() {
        byte[] b = new byte[22];
        putF16(b, 0, 0x3C00);   // d = 1
        b[2] = 0x01;            // qh bit 0: fifth bit of element 0
        b[4] = 0x01;            // qh bit 16: fifth bit of element 16
        b[6] = 0x21;            // element 0 low nibble 1, element 16 low nibble 2
        double[] y = Dequant.row(DType.Q5_0, b, 0, 32);
        assertEquals(1.0, y[0]);    // (1 | 16) - 16
        assertEquals(2.0, y[16]);   // (2 | 16) - 16
        assertEquals(-16.0, y[1]);  // 0 - 16
        assertEquals(-16.0, y[17]);
    }

    @Test
    void q5_1ByHand() {
        byte[] b = new byte[24];
        putF16(b, 0, 0x3800); // d = 0.5
        putF16(b, 2, 0x3C00); // m = 1
        b[6] = 0x02;          // qh bit 17 (byte 2 of qh, bit 1): fifth bit of element 17
        b[9] = 0x30;          // qs[1]: element 1 low nibble 0, element 17 high nibble 3
        double[] y = Dequant.row(DType.Q5_1, b, 0, 32);
        assertEquals(10.5, y[17]); // (3 | 16) * 0.5 + 1
        assertEquals(1.0, y[1]);   // 0 * 0.5 + 1
    }

    @Test
    void q8_0ByHand() {
        byte[] b = new byte[34];
        putF16(b, 0, 0x4000); // d = 2
        b[2 + 5] = -3;
        b[2 + 31] = 127;
        double[] y = Dequant.row(DType.Q8_0, b, 0, 32);
        assertEquals(-6.0, y[5]);
        assertEquals(254.0, y[31]);
        assertEquals(0.0, y[0]);
    }

    // ---- super-blocks -----------------------------------------------------------------------------

    @Test
    void q2_KByHand() {
        byte[] b = new byte[84];
        putF16(b, 80, 0x3C00); // d = 1
        putF16(b, 82, 0x3800); // dmin = 0.5
        b[0] = 0x42;           // sub-block 0: scale 2, min 4
        b[16] = 0x03 | 0x01 << 2; // qs[0]: element 0 has 3, element 32 (bits 2-3) has 1
        b[1] = 0x15;           // sub-block 1 (elements 16..31): scale 5, min 1
        b[16 + 20] = 0x02;     // qs[20] bits 0-1: element 20 (sub-block 1) has 2
        double[] y = Dequant.row(DType.Q2_K, b, 0, 256);
        assertEquals(4.0, y[0]);   // 1 * 2 * 3 - 0.5 * 4
        assertEquals(9.5, y[20]);  // 1 * 5 * 2 - 0.5 * 1
        assertEquals(0.0, y[32]);  // sub-block 2: scale byte 0 -> 0
    }

    @Test
    void q3_KByHand() {
        byte[] b = new byte[110];
        putF16(b, 108, 0x3C00); // d = 1
        int hmask = 0;
        int qs = 32;
        int scales = 96;
        // element 0: low bits 2, high bit clear (so minus 4), scale 0 = 5 | 2 << 4 = 37 -> 37 - 32 = 5
        b[qs] = 0b10;
        b[scales] = 0x05;
        b[scales + 8] = 0b10;
        // element 52 (j = 1, l = 20): low bits 3 (bits 2-3 of qs[20]), high bit 1 of hmask[20] set,
        // scale 3 = 15 | 3 << 4 = 63 -> 31
        b[qs + 20] = 0b1100;
        b[hmask + 20] = 0b10;
        b[scales + 3] = 0x0F;
        b[scales + 11] = 0b11;
        // element 229 (half 1, j = 3, l = 5): low bits 1 (bits 6-7 of qs[32 + 5]), high bit 7 of hmask[5] set,
        // scale 14 = high nibble of byte 6 (7) | bits 6-7 of byte 10 (1) << 4 = 23 -> -9
        b[qs + 37] = 0b0100_0000;
        b[hmask + 5] = (byte) 0x80;
        b[scales + 6] = 0x70;
        b[scales + 10] = 0b0100_0000;
        double[] y = Dequant.row(DType.Q3_K, b, 0, 256);
        assertEquals(-10.0, y[0]);  // 5 * (2 - 4)
        assertEquals(93.0, y[52]);  // 31 * 3
        assertEquals(-9.0, y[229]); // -9 * 1
    }

    @Test
    void q4_KByHand() {
        byte[] b = new byte[144];
        putF16(b, 0, 0x3C00); // d = 1
        putF16(b, 2, 0x3800); // dmin = 0.5
        int s = 4;
        int qs = 16;
        b[s] = 3;                          // sub-block 0 scale 3
        b[s + 4] = 2;                      // sub-block 0 min 2
        b[s + 1] = (byte) 0x40;            // sub-block 1 scale 0; top bits 1 = high bits of sub-block 5's scale
        b[s + 5] = (byte) 0x80;            // sub-block 1 min 0; top bits 2 = high bits of sub-block 5's min
        b[s + 9] = 0x35;                   // sub-block 5: scale low nibble 5, min low nibble 3
        b[qs] = (byte) 0x97;               // element 0 = 7 (sub-block 0), element 32 = 9 (sub-block 1)
        b[qs + 64 + 3] = (byte) 0xB0;      // element 128 + 32 + 3 = 163 (sub-block 5) = 11
        double[] y = Dequant.row(DType.Q4_K, b, 0, 256);
        assertEquals(20.0, y[0]);     // 1 * 3 * 7 - 0.5 * 2
        assertEquals(0.0, y[32]);     // scale 0, min 0
        // sub-block 5: scale 5 | 1 << 4 = 21, min 3 | 2 << 4 = 35
        assertEquals(213.5, y[163]);  // 21 * 11 - 0.5 * 35
        assertEquals(-17.5, y[160]);  // 21 * 0 - 0.5 * 35
    }

    @Test
    void q5_KByHand() {
        byte[] b = new byte[176];
        putF16(b, 0, 0x3C00); // d = 1
        putF16(b, 2, 0x3C00); // dmin = 1
        b[4 + 1] = 2;         // sub-block 1 scale 2
        b[4 + 5] = 3;         // sub-block 1 min 3
        b[16 + 1] = 0x02;     // qh[1] bit 1: fifth bit of element 33 (sub-block 1)
        b[48 + 1] = 0x70;     // qs[1] high nibble 7: element 33
        double[] y = Dequant.row(DType.Q5_K, b, 0, 256);
        assertEquals(43.0, y[33]); // 2 * (7 + 16) - 3
        assertEquals(-3.0, y[32]); // 2 * 0 - 3
    }

    @Test
    void q6_KByHand() {
        byte[] b = new byte[210];
        putF16(b, 208, 0x3800); // d = 0.5
        int ql = 0;
        int qh = 128;
        int sc = 192;
        b[ql] = (byte) 0xA3;          // element 0 low bits 3, element 64 low bits 10
        b[ql + 32] = 0x07;            // element 32 low bits 7, element 96 low bits 0
        b[qh] = (byte) 0b11_01_10_01; // high bits: element 0 -> 1, 32 -> 2, 64 -> 1, 96 -> 3
        b[sc] = -2;
        b[sc + 2] = 3;
        b[sc + 4] = 4;
        b[sc + 6] = -1;
        // second half, element 128 + 17: ql[64 + 17] low nibble, qh[32 + 17] bits 0-1, scale 8 + 1
        b[ql + 81] = 0x0F;
        b[qh + 49] = 0x02;
        b[sc + 9] = 5;
        double[] y = Dequant.row(DType.Q6_K, b, 0, 256);
        assertEquals(13.0, y[0]);    // 0.5 * -2 * ((3 | 1 << 4) - 32 = -13)
        assertEquals(10.5, y[32]);   // 0.5 * 3 * ((7 | 2 << 4) - 32 = 7)
        assertEquals(-12.0, y[64]);  // 0.5 * 4 * ((10 | 1 << 4) - 32 = -6)
        assertEquals(-8.0, y[96]);   // 0.5 * -1 * ((0 | 3 << 4) - 32 = 16)
        assertEquals(37.5, y[145]);  // 0.5 * 5 * ((15 | 2 << 4) - 32 = 15)
    }

    @Test
    void q8_KByHand() {
        byte[] b = new byte[292];
        int bits = Float.floatToIntBits(0.25f);
        b[0] = (byte) bits;
        b[1] = (byte) (bits >>> 8);
        b[2] = (byte) (bits >>> 16);
        b[3] = (byte) (bits >>> 24);
        b[4 + 100] = -8;
        double[] y = Dequant.row(DType.Q8_K, b, 0, 256);
        assertEquals(-2.0, y[100]);
        assertEquals(0.0, y[99]);
    }

    @Test
    void randomQ8_KBlocksHaveConsistentBlockSums() {
        byte[] b = Data.randomBlocks(DType.Q8_K, new SplittableRandom(1), 3);
        for (int blk = 0; blk < 3; blk++) {
            int o = blk * 292;
            for (int j = 0; j < 16; j++) {
                int sum = 0;
                for (int i = 0; i < 16; i++) {
                    sum += b[o + 4 + 16 * j + i];
                }
                short stored = (short) ((b[o + 260 + 2 * j] & 0xFF) | (b[o + 261 + 2 * j] & 0xFF) << 8);
                assertEquals(sum, stored);
            }
        }
    }

    // ---- operators --------------------------------------------------------------------------------

    @Test
    void matmul2x3() {
        double[][] x = {{1, 2, 3}, {4, 5, 6}};
        double[][] w = {{1, 0, -1}, {2, 1, 0}};
        double[][] out = ReferenceOps.matmul(x, w);
        assertArrayEquals(new double[] {-2, 4}, out[0], EPS);
        assertArrayEquals(new double[] {-2, 13}, out[1], EPS);
    }

    @Test
    void softmaxOfKnownValues() {
        double[][] out = ReferenceOps.softmax(new double[][] {{1, 2, 3}, {1000, 1000}, {-5}});
        assertArrayEquals(new double[] {0.09003057317038046, 0.24472847105479767, 0.6652409557748219}, out[0], 1e-15);
        assertArrayEquals(new double[] {0.5, 0.5}, out[1], EPS);
        assertArrayEquals(new double[] {1}, out[2], EPS);
    }

    @Test
    void ropeRotatesByNinetyDegrees() {
        float quarter = (float) (Math.PI / 2);
        // NORMAL, one pair at frequency 1: position 1 with freqScale pi/2 turns (1, 0) into (0, 1).
        double[][][] out = ReferenceOps.rope(new double[][][] {{{1, 0, 5}}}, new int[] {1},
                new Rope(RopeLayout.NORMAL, 2, 10000, quarter, null));
        assertArrayEquals(new double[] {0, 1, 5}, out[0][0], 1e-7); // the third dimension is not rotated
        // NEOX, dims 4, theta 4: pairs (0, 2) at frequency 1 and (1, 3) at 4^(-1/2) = 0.5. At position 2 with
        // freqScale pi/2 the first pair turns by pi, the second by pi/2.
        out = ReferenceOps.rope(new double[][][] {{{1, 2, 3, 4}}}, new int[] {2},
                new Rope(RopeLayout.NEOX, 4, 4, quarter, null));
        assertArrayEquals(new double[] {-1, -4, -3, 2}, out[0][0], 1e-6);
        // freqFactors divide the frequency: factor 2 at position 2 is again a quarter turn.
        out = ReferenceOps.rope(new double[][][] {{{1, 0}}}, new int[] {2},
                new Rope(RopeLayout.NORMAL, 2, 10000, quarter, new float[] {2}));
        assertArrayEquals(new double[] {0, 1}, out[0][0], 1e-7);
        // theta^(-2i/dims): NORMAL dims 4, theta 100, pair 1 has frequency 0.1; position 5 turns it by 0.5 rad.
        out = ReferenceOps.rope(new double[][][] {{{0, 0, 1, 0}}}, new int[] {5},
                Rope.of(RopeLayout.NORMAL, 4, 100));
        assertArrayEquals(new double[] {0, 0, Math.cos(0.5), Math.sin(0.5)}, out[0][0], 1e-12);
    }

    @Test
    void normsOfKnownValues() {
        double[][] rms = ReferenceOps.rmsNorm(new double[][] {{3, 4}}, new double[] {1, 2}, 0);
        double rmsOf34 = Math.sqrt(12.5);
        assertArrayEquals(new double[] {3 / rmsOf34, 8 / rmsOf34}, rms[0], EPS);
        double[][] rmsEps = ReferenceOps.rmsNorm(new double[][] {{0, 0, 0, 2}}, new double[] {1, 1, 1, 1}, 3);
        assertArrayEquals(new double[] {0, 0, 0, 1}, rmsEps[0], EPS); // mean(x²) = 1, + eps 3 -> divide by 2
        double[][] ln = ReferenceOps.layerNorm(new double[][] {{1, 2, 3}}, null, null, 0);
        double sd = Math.sqrt(2.0 / 3);
        assertArrayEquals(new double[] {-1 / sd, 0, 1 / sd}, ln[0], EPS);
        double[][] lnWb = ReferenceOps.layerNorm(new double[][] {{1, 2, 3}}, new double[] {2, 2, 2},
                new double[] {1, 1, 1}, 0);
        assertArrayEquals(new double[] {1 - 2 / sd, 1, 1 + 2 / sd}, lnWb[0], EPS);
    }

    @Test
    void activationsOfKnownValues() {
        assertEquals(0.7310585786300049, ReferenceOps.silu(new double[][] {{1}})[0][0], 1e-15);
        assertEquals(0.8411919906082768, ReferenceOps.gelu(new double[][] {{1}})[0][0], 1e-15);
        assertEquals(-0.15880800939172324, ReferenceOps.gelu(new double[][] {{-1}})[0][0], 1e-15);
        assertEquals(2 * 0.7310585786300049, ReferenceOps.swiglu(new double[][] {{1}}, new double[][] {{2}})[0][0], 1e-15);
        assertArrayEquals(new double[] {11, 22}, ReferenceOps.add(new double[][] {{1, 2}}, new double[][] {{10, 20}})[0]);
        assertArrayEquals(new double[] {30, 80}, ReferenceOps.mul(new double[][] {{1, 2}, {3, 4}},
                new double[][] {{10, 20}})[1]); // broadcast row
    }

    @Test
    void attentionOfKnownValues() {
        // Two keys, head size 1: scores 0 and ln 3 give weights 1/4 and 3/4 of values 4 and 8.
        double ln3 = Math.log(3);
        double[][][] q = {{{1}}};
        // Paged with block size 1 and block table [1, 0]: position 0 is in slot 1, position 1 in slot 0.
        double[][][] k = {{{ln3}}, {{0}}};
        double[][][] v = {{{8}}, {{4}}};
        KvLayout atPos1 = new KvLayout(1, new int[][] {{1, 0}}, new int[] {2}, new int[] {0}, new int[] {1});
        KvLayout atPos0 = new KvLayout(1, new int[][] {{1, 0}}, new int[] {2}, new int[] {0}, new int[] {0});
        Attention plain = new Attention(1, true, 0, null, 0);
        assertEquals(7.0, ReferenceOps.attention(q, k, v, atPos1, plain)[0][0][0], EPS);
        assertEquals(4.0, ReferenceOps.attention(q, k, v, atPos0, plain)[0][0][0], EPS);   // causal: key 0 only
        Attention nonCausal = new Attention(1, false, 0, null, 0);
        assertEquals(7.0, ReferenceOps.attention(q, k, v, atPos0, nonCausal)[0][0][0], EPS); // sees both
        Attention window1 = new Attention(1, true, 1, null, 0);
        assertEquals(8.0, ReferenceOps.attention(q, k, v, atPos1, window1)[0][0][0], EPS);  // only j > p - 1
        // ALiBi slope ln 3 at position 1: scores 0 - ln 3 and ln 3 + 0 -> weights 1/10 and 9/10.
        Attention alibi = new Attention(1, true, 0, new float[] {(float) ln3}, 0);
        assertEquals(0.4 + 7.2, ReferenceOps.attention(q, k, v, atPos1, alibi)[0][0][0], 1e-6);
        // Softcap 1: scores tanh(0) = 0 and tanh(ln 3) = 0.8.
        Attention capped = new Attention(1, true, 0, null, 1);
        double w = Math.exp(0.8);
        assertEquals((4 + 8 * w) / (1 + w), ReferenceOps.attention(q, k, v, atPos1, capped)[0][0][0], 1e-12);
        // GQA: two query heads share the one KV head; the second query head has q = 0 (equal weights).
        double[][][] q2 = {{{1}, {0}}};
        double[][][] out = ReferenceOps.attention(q2, k, v, atPos1, plain);
        assertEquals(7.0, out[0][0][0], EPS);
        assertEquals(6.0, out[0][1][0], EPS);
    }

    @Test
    void selectionWithTies() {
        assertArrayEquals(new int[] {1, 0}, ReferenceOps.argmax(new double[][] {{1, 3, 3}, {-1, -2, -1}}));
        assertArrayEquals(new int[] {1, 2, 3}, ReferenceOps.topKIndices(new double[][] {{1, 3, 3, 2}}, 3)[0]);
        assertArrayEquals(new int[] {0, 1}, ReferenceOps.topKIndices(new double[][] {{-0.0, 0.0, -1}}, 2)[0]);
    }

    @Test
    void copyRowsRoundsToTheDestination() {
        double[][] dst = {{9, 9}, {9, 9}, {9, 9}};
        double[][] out = ReferenceOps.copyRows(dst, new double[][] {{1 + 0x1p-8, 0.1}}, new int[] {2}, DType.BF16);
        assertArrayEquals(new double[] {9, 9}, out[0]);
        assertArrayEquals(new double[] {9, 9}, out[1]);
        assertEquals(1.0, out[2][0]);                     // tie to even
        assertEquals(0.10009765625, out[2][1]);           // 0.1 to the nearest BF16
        assertEquals(0.0999755859375, ReferenceOps.copyRows(dst, new double[][] {{0.1, 0}}, new int[] {0},
                DType.F16)[0][0]); // 0.1 to the nearest F16
    }

    private static void putF16(byte[] b, int o, int bits) {
        b[o] = (byte) bits;
        b[o + 1] = (byte) (bits >>> 8);
    }
}
