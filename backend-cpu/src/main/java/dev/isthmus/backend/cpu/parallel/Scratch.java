package dev.isthmus.backend.cpu.parallel;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Per-thread reusable buffers, so kernels never allocate in their hot loops. Native buffers serve
 * kernels that work on segments; small heap arrays hold per-row bookkeeping. Each slot grows on demand
 * and is freed by the GC together with its thread.
 */
public final class Scratch {
    /** Slot of a native buffer. Kernels that need two buffers at once use different slots. */
    public static final int PRIMARY = 0;
    public static final int SECONDARY = 1;
    public static final int TERTIARY = 2;
    /** Slot of a calling thread's buffer that its workers read during one operator (e.g. quantized activations). */
    public static final int SHARED = 3;
    /** A second such slot. */
    public static final int SHARED2 = 4;

    private static final ThreadLocal<Scratch> CURRENT = ThreadLocal.withInitial(Scratch::new);

    private final MemorySegment[] segments = new MemorySegment[5];
    private float[] floats = new float[64];
    private float[] moreFloats = new float[64];
    private long[] longs = new long[64];
    private int[] ints = new int[64];
    private double[] doubles = new double[64];

    private Scratch() {
    }

    /** The calling thread's scratch. */
    public static Scratch current() {
        return CURRENT.get();
    }

    /** A native buffer of at least {@code bytes} bytes (contents unspecified), 64-byte aligned. */
    public MemorySegment segment(int slot, long bytes) {
        MemorySegment s = segments[slot];
        if (s == null || s.byteSize() < bytes) {
            long size = Math.max(bytes, s == null ? 4096 : s.byteSize() * 2);
            s = Arena.ofAuto().allocate(size, 64);
            segments[slot] = s;
        }
        return s;
    }

    /** A float array of at least {@code length} elements (contents unspecified). */
    public float[] floats(int length) {
        if (floats.length < length) {
            floats = new float[Math.max(length, floats.length * 2)];
        }
        return floats;
    }

    /** A second float array, independent of {@link #floats}. */
    public float[] moreFloats(int length) {
        if (moreFloats.length < length) {
            moreFloats = new float[Math.max(length, moreFloats.length * 2)];
        }
        return moreFloats;
    }

    /** A double array of at least {@code length} elements (contents unspecified). */
    public double[] doubles(int length) {
        if (doubles.length < length) {
            doubles = new double[Math.max(length, doubles.length * 2)];
        }
        return doubles;
    }

    /** An int array of at least {@code length} elements (contents unspecified). */
    public int[] ints(int length) {
        if (ints.length < length) {
            ints = new int[Math.max(length, ints.length * 2)];
        }
        return ints;
    }

    /** A long array of at least {@code length} elements (contents unspecified). */
    public long[] longs(int length) {
        if (longs.length < length) {
            longs = new long[Math.max(length, longs.length * 2)];
        }
        return longs;
    }
}
