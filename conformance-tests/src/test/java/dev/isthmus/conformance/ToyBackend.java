package dev.isthmus.conformance;

import dev.isthmus.api.Attention;
import dev.isthmus.api.DType;
import dev.isthmus.api.Device;
import dev.isthmus.api.KvLayout;
import dev.isthmus.api.Op;
import dev.isthmus.api.Rope;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.TopK;
import dev.isthmus.api.discovery.Capabilities;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.conformance.reference.Dequant;
import dev.isthmus.conformance.reference.ReferenceOps;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A test-only backend computing every op with the float64 reference and storing F32 results: it is correct
 * by construction, so the whole suite must pass on it, which shows the harness (guards, views, aliasing,
 * transfers, decoding) raises no false alarms.
 *
 * <p>In device mode its memory is "device memory" that Java must not read directly: every byte is stored
 * XOR-scrambled, so a harness that dereferenced device segments instead of going through {@link #copy}
 * would see garbage.
 */
final class ToyBackend implements Backend {
    private static final byte SCRAMBLE = 0x5A;

    private final boolean deviceMode;
    private final Device device;
    private final Arena arena = Arena.ofShared();

    ToyBackend(boolean deviceMode) {
        this.deviceMode = deviceMode;
        this.device = deviceMode ? new Device("toy-device", false) : Device.HOST;
    }

    @Override
    public String name() {
        return deviceMode ? "toy-device" : "toy";
    }

    @Override
    public Device device() {
        return device;
    }

    @Override
    public boolean supports(Op op, DType... dtypes) {
        return dtypes.length == 1 && Capabilities.matrix().get(op).contains(dtypes[0]);
    }

    @Override
    public Tensor allocate(DType dtype, long... shape) {
        long bytes = Tensor.byteSizeOf(dtype, shape);
        MemorySegment seg = arena.allocate(Math.max(bytes, 1), 64).asSlice(0, bytes);
        if (deviceMode) {
            seg.fill(SCRAMBLE);
        }
        return Tensor.of(seg, device, dtype, shape);
    }

    @Override
    public void release(Tensor tensor) {
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        for (long r = 0; r < src.rows(); r++) {
            writeRow(dst, r, readRow(src, r));
        }
    }

    @Override
    public void synchronize() {
    }

    private byte[] readRow(Tensor t, long r) {
        byte[] b = new byte[Math.toIntExact(t.rowBytes())];
        MemorySegment.copy(t.segment(), ValueLayout.JAVA_BYTE, t.rowOffset(r), b, 0, b.length);
        if (!t.device().hostAccessible()) {
            for (int i = 0; i < b.length; i++) {
                b[i] ^= SCRAMBLE;
            }
        }
        return b;
    }

    private void writeRow(Tensor t, long r, byte[] b) {
        byte[] out = b.clone();
        if (!t.device().hostAccessible()) {
            for (int i = 0; i < out.length; i++) {
                out[i] ^= SCRAMBLE;
            }
        }
        MemorySegment.copy(out, 0, t.segment(), ValueLayout.JAVA_BYTE, t.rowOffset(r), out.length);
    }

    /** The tensor as rows × cols doubles. */
    private double[][] read(Tensor t) {
        int rows = Math.toIntExact(t.rows());
        int cols = Math.toIntExact(t.cols());
        double[][] m = new double[rows][];
        for (int r = 0; r < rows; r++) {
            m[r] = Dequant.row(t.dtype(), readRow(t, r), 0, cols);
        }
        return m;
    }

    /** The tensor as [dim0][rest] doubles. */
    private double[][] readOuter(Tensor t) {
        double[] flat = Data.flatten(read(t));
        int outer = Math.toIntExact(t.dim(0));
        return Data.rows(flat, flat.length / outer);
    }

    private double[][][] read3(Tensor t) {
        double[] flat = Data.flatten(read(t));
        return Data.cube(flat, Math.toIntExact(t.dim(0)), Math.toIntExact(t.dim(1)), Math.toIntExact(t.dim(2)));
    }

    private void write(Tensor t, double[] flat) {
        int cols = Math.toIntExact(t.cols());
        for (long r = 0; r < t.rows(); r++) {
            float[] row = new float[cols];
            for (int c = 0; c < cols; c++) {
                row[c] = (float) flat[Math.toIntExact(r * cols + c)];
            }
            byte[] bytes = switch (t.dtype()) {
                case F32 -> Data.f32(row);
                case F16, BF16 -> Data.encode(t.dtype(), row);
                default -> throw new IllegalArgumentException("toy cannot write " + t.dtype());
            };
            writeRow(t, r, bytes);
        }
    }

    private void write(Tensor t, double[][] m) {
        write(t, Data.flatten(m));
    }

    @Override
    public void matmul(Tensor x, Tensor w, Tensor out) {
        write(out, ReferenceOps.matmul(read(x), read(w)));
    }

    @Override
    public void dequantize(Tensor src, Tensor dst) {
        write(dst, read(src));
    }

    @Override
    public void embeddingLookup(Tensor table, int[] ids, Tensor out) {
        write(out, ReferenceOps.embeddingLookup(read(table), ids));
    }

    @Override
    public void rmsNorm(Tensor x, Tensor weight, float eps, Tensor out) {
        write(out, ReferenceOps.rmsNorm(read(x), read(weight)[0], eps));
    }

    @Override
    public void layerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out) {
        write(out, ReferenceOps.layerNorm(read(x), weight == null ? null : read(weight)[0],
                bias == null ? null : read(bias)[0], eps));
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        write(out, ReferenceOps.add(read(a), read(b)));
    }

    @Override
    public void mul(Tensor a, Tensor b, Tensor out) {
        write(out, ReferenceOps.mul(read(a), read(b)));
    }

    @Override
    public void scale(Tensor x, float s, Tensor out) {
        write(out, ReferenceOps.scale(read(x), s));
    }

    @Override
    public void silu(Tensor x, Tensor out) {
        write(out, ReferenceOps.silu(read(x)));
    }

    @Override
    public void gelu(Tensor x, Tensor out) {
        write(out, ReferenceOps.gelu(read(x)));
    }

    @Override
    public void swiglu(Tensor gate, Tensor up, Tensor out) {
        write(out, ReferenceOps.swiglu(read(gate), read(up)));
    }

    @Override
    public void softmax(Tensor x, Tensor out) {
        write(out, ReferenceOps.softmax(read(x)));
    }

    @Override
    public void rope(Tensor x, int[] positions, Rope rope) {
        write(x, Data.flatten(ReferenceOps.rope(read3(x), positions, rope)));
    }

    @Override
    public void copyRows(Tensor src, Tensor dst, int[] rows) {
        write(dst, ReferenceOps.copyRows(readOuter(dst), readOuter(src), rows, dst.dtype()));
    }

    @Override
    public void attention(Tensor q, Tensor kCache, Tensor vCache, KvLayout layout, Attention params, Tensor out) {
        write(out, Data.flatten(ReferenceOps.attention(read3(q), read3(kCache), read3(vCache), layout, params)));
    }

    @Override
    public int[] argmax(Tensor x) {
        return ReferenceOps.argmax(read(x));
    }

    @Override
    public TopK topK(Tensor x, int k) {
        double[][] m = read(x);
        int[][] idx = ReferenceOps.topKIndices(m, k);
        float[][] values = new float[m.length][k];
        for (int r = 0; r < m.length; r++) {
            for (int i = 0; i < k; i++) {
                values[r][i] = (float) m[r][idx[r][i]];
            }
        }
        return new TopK(idx, values);
    }

    @Override
    public void close() {
        arena.close();
    }
}
