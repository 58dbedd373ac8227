package dev.isthmus.engine.quant;

import dev.isthmus.api.DType;

/** Runs a block codec over a row: checks the length once, then one call per block. */
abstract class BlockQuantizer implements Quantizer {
    private final DType dtype;

    BlockQuantizer(DType dtype) {
        this.dtype = dtype;
    }

    @Override
    public final DType dtype() {
        return dtype;
    }

    @Override
    public final void quantize(float[] src, int srcOffset, int count, byte[] dst, int dstOffset) {
        int blocks = blocks(count);
        int n = dtype.blockSize();
        int bytes = dtype.blockBytes();
        for (int b = 0; b < blocks; b++) {
            quantizeBlock(src, srcOffset + b * n, dst, dstOffset + b * bytes);
        }
    }

    @Override
    public final void dequantize(byte[] src, int srcOffset, int count, float[] dst, int dstOffset) {
        int blocks = blocks(count);
        int n = dtype.blockSize();
        int bytes = dtype.blockBytes();
        for (int b = 0; b < blocks; b++) {
            dequantizeBlock(src, srcOffset + b * bytes, dst, dstOffset + b * n);
        }
    }

    private int blocks(int count) {
        if (count < 0 || count % dtype.blockSize() != 0) {
            throw new IllegalArgumentException(dtype + " needs a multiple of " + dtype.blockSize()
                    + " elements, got " + count);
        }
        return count / dtype.blockSize();
    }

    /** Encodes one block of {@code dtype().blockSize()} elements. */
    abstract void quantizeBlock(float[] x, int xo, byte[] y, int yo);

    /** Decodes one block. */
    abstract void dequantizeBlock(byte[] y, int yo, float[] x, int xo);

    @Override
    public String toString() {
        return getClass().getSimpleName() + "[" + dtype + "]";
    }
}
