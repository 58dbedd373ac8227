package dev.isthmus.engine.quant;

import dev.isthmus.api.DType;

/** F32 (a copy), F16 and BF16 (round to nearest, ties to even; F16 overflow becomes infinity). */
final class FloatQuantizer implements Quantizer {
    private final DType dtype;

    FloatQuantizer(DType dtype) {
        if (!dtype.isFloatingPoint()) {
            throw new IllegalArgumentException(dtype + " is not a float type");
        }
        this.dtype = dtype;
    }

    @Override
    public DType dtype() {
        return dtype;
    }

    @Override
    public void quantize(float[] src, int srcOffset, int count, byte[] dst, int dstOffset) {
        checkCount(count);
        switch (dtype) {
            case F32 -> {
                for (int i = 0; i < count; i++) {
                    Bits.putFloat(dst, dstOffset + 4 * i, src[srcOffset + i]);
                }
            }
            case F16 -> {
                for (int i = 0; i < count; i++) {
                    Bits.putShort(dst, dstOffset + 2 * i, Float.floatToFloat16(src[srcOffset + i]));
                }
            }
            default -> {
                for (int i = 0; i < count; i++) {
                    Bits.putShort(dst, dstOffset + 2 * i, Bits.toBf16(src[srcOffset + i]));
                }
            }
        }
    }

    @Override
    public void dequantize(byte[] src, int srcOffset, int count, float[] dst, int dstOffset) {
        checkCount(count);
        switch (dtype) {
            case F32 -> {
                for (int i = 0; i < count; i++) {
                    dst[dstOffset + i] = Bits.getFloat(src, srcOffset + 4 * i);
                }
            }
            case F16 -> {
                for (int i = 0; i < count; i++) {
                    dst[dstOffset + i] = Bits.getHalf(src, srcOffset + 2 * i);
                }
            }
            default -> {
                for (int i = 0; i < count; i++) {
                    dst[dstOffset + i] = Bits.fromBf16(Bits.getShort(src, srcOffset + 2 * i));
                }
            }
        }
    }

    private static void checkCount(int count) {
        if (count < 0) {
            throw new IllegalArgumentException("negative element count " + count);
        }
    }

    @Override
    public String toString() {
        return "FloatQuantizer[" + dtype + "]";
    }
}
