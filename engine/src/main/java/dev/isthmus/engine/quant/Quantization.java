package dev.isthmus.engine.quant;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Quantizes whole matrices row by row on several threads, straight into their destination memory (e.g. a
 * {@link dev.isthmus.engine.gguf.GgufWriter} tensor region), so that a model of any size needs only a few
 * rows of heap per thread.
 */
public final class Quantization {
    /** Rows each thread takes at a time: about this many elements, so threads share the work evenly. */
    private static final int CHUNK_ELEMENTS = 1 << 16;
    private static final ValueLayout.OfFloat LE_FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Produces the float values of one row. Called from several threads at once, so it must be thread-safe. */
    @FunctionalInterface
    public interface RowSource {
        /** Fills {@code dst} (exactly one row long) with row {@code row}. */
        void read(long row, float[] dst);
    }

    private Quantization() {
    }

    /** The default number of threads: one per available processor. */
    public static int defaultThreads() {
        return Runtime.getRuntime().availableProcessors();
    }

    /**
     * Quantizes {@code rows} rows of {@code cols} elements from {@code source} to {@code type}, writing row r at
     * byte {@code r * type.rowBytes(cols)} of {@code target}. The calling thread takes part in the work; the
     * target must be accessible from other threads when {@code threads > 1} (e.g. memory of a shared arena).
     *
     * @throws IllegalArgumentException if {@code cols} is not a multiple of the block size, or {@code target} is
     *                                  smaller than the rows
     * @throws RuntimeException         what a thread threw, rethrown on the calling thread
     */
    public static void quantizeRows(DType type, long rows, int cols, RowSource source, MemorySegment target, int threads) {
        if (!Quantizer.supports(type)) {
            throw new IllegalArgumentException("cannot quantize to " + type);
        }
        int rowBytes = Math.toIntExact(type.rowBytes(cols));
        if (target.byteSize() < Math.multiplyExact(rows, (long) rowBytes)) {
            throw new IllegalArgumentException("target of " + target.byteSize() + " bytes is smaller than " + rows
                    + " rows of " + rowBytes + " bytes");
        }
        int chunkRows = Math.max(1, CHUNK_ELEMENTS / Math.max(1, cols));
        long chunks = (rows + chunkRows - 1) / chunkRows;
        int workers = (int) Math.max(1, Math.min(Math.max(1, threads), chunks));
        AtomicLong nextChunk = new AtomicLong();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Runnable work = () -> {
            try {
                Quantizer q = Quantizer.create(type);
                float[] in = new float[cols];
                byte[] out = new byte[chunkRows * rowBytes];
                for (long c; failure.get() == null && (c = nextChunk.getAndIncrement()) < chunks; ) {
                    long first = c * chunkRows;
                    int n = (int) Math.min(chunkRows, rows - first);
                    for (int i = 0; i < n; i++) {
                        source.read(first + i, in);
                        q.quantize(in, 0, cols, out, i * rowBytes);
                    }
                    MemorySegment.copy(out, 0, target, ValueLayout.JAVA_BYTE, first * rowBytes, n * rowBytes);
                }
            } catch (Throwable t) {
                failure.compareAndSet(null, t);
            }
        };
        List<Thread> started = new ArrayList<>();
        for (int i = 1; i < workers; i++) {
            started.add(Thread.ofPlatform().name("isthmus-quantize-" + i).daemon().start(work));
        }
        work.run();
        boolean interrupted = false;
        for (Thread t : started) {
            while (true) {
                try {
                    t.join();
                    break;
                } catch (InterruptedException e) {
                    interrupted = true; // finish joining: the workers write into memory the caller may release
                }
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        Throwable t = failure.get();
        if (t instanceof RuntimeException r) {
            throw r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        if (t != null) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * The rows of a contiguous host tensor of any type with a {@link Quantizer} (rank ≥ 1; the innermost
     * dimension is the row), decoded to floats. Thread-safe as long as the tensor's memory stays valid.
     */
    public static RowSource rowsOf(Tensor t) {
        if (!t.device().hostAccessible() || !t.isContiguous()) {
            throw new IllegalArgumentException("need a contiguous host tensor, got " + t);
        }
        if (!Quantizer.supports(t.dtype())) {
            throw new IllegalArgumentException("cannot read " + t.dtype() + " values as floats");
        }
        MemorySegment seg = t.segment();
        int cols = Math.toIntExact(t.cols());
        long rowBytes = t.dtype().rowBytes(cols);
        return switch (t.dtype()) {
            case F32 -> (row, dst) -> MemorySegment.copy(seg, LE_FLOAT, row * rowBytes, dst, 0, cols);
            case F16 -> (row, dst) -> {
                long o = row * rowBytes;
                for (int i = 0; i < cols; i++) {
                    dst[i] = Float.float16ToFloat(seg.get(LE_SHORT, o + 2L * i));
                }
            };
            case BF16 -> (row, dst) -> {
                long o = row * rowBytes;
                for (int i = 0; i < cols; i++) {
                    dst[i] = Bits.fromBf16(seg.get(LE_SHORT, o + 2L * i));
                }
            };
            default -> {
                // Dequantizing is stateless, so one quantizer serves every thread; the bytes need a buffer each.
                Quantizer q = Quantizer.create(t.dtype());
                ThreadLocal<byte[]> buffers = ThreadLocal.withInitial(() -> new byte[(int) rowBytes]);
                yield (row, dst) -> {
                    byte[] b = buffers.get();
                    MemorySegment.copy(seg, ValueLayout.JAVA_BYTE, row * rowBytes, b, 0, b.length);
                    q.dequantize(b, 0, cols, dst, 0);
                };
            }
        };
    }
}
