package dev.isthmus.backend.cpu.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.nio.ByteOrder;

/**
 * The vector species every kernel uses: a float species and byte, short and int species with the same
 * number of lanes, so that one lane of packed weights widens into one float lane.
 *
 * <p>Kernels are written for 8 or 16 float lanes (the block formats split into groups of 16 elements):
 * 512-bit hardware gets 16 lanes, everything else 8. The system property {@code isthmus.cpu.vectorBits}
 * ({@code 256} or {@code 512}) overrides the choice, which lets tests exercise both widths.
 */
public final class Lanes {
    /** Float species of 8 or 16 lanes. */
    public static final VectorSpecies<Float> FLOATS = chooseFloatSpecies();
    /** Number of float lanes of {@link #FLOATS}. */
    public static final int COUNT = FLOATS.length();
    /** Byte species with {@link #COUNT} lanes. */
    public static final VectorSpecies<Byte> BYTES =
            VectorSpecies.of(byte.class, VectorShape.forBitSize(COUNT * Byte.SIZE));
    /** Short species with {@link #COUNT} lanes. */
    public static final VectorSpecies<Short> SHORTS =
            VectorSpecies.of(short.class, VectorShape.forBitSize(COUNT * Short.SIZE));
    /** Int species with {@link #COUNT} lanes. */
    public static final VectorSpecies<Integer> INTS = FLOATS.withLanes(int.class);
    /** GGUF data and all our buffers are little-endian. */
    public static final ByteOrder ORDER = ByteOrder.LITTLE_ENDIAN;
    /** A mask with one bit per lane, for {@code VectorMask.fromLong}. */
    public static final long LANE_BITS = (1L << COUNT) - 1;

    private Lanes() {
    }

    private static VectorSpecies<Float> chooseFloatSpecies() {
        String forced = System.getProperty("isthmus.cpu.vectorBits");
        int bits = forced != null ? Integer.parseInt(forced.trim())
                : FloatVector.SPECIES_PREFERRED.vectorBitSize();
        return bits >= 512 ? FloatVector.SPECIES_512 : FloatVector.SPECIES_256;
    }

    /** Human-readable description, e.g. {@code 512-bit}. */
    public static String describe() {
        return FLOATS.vectorBitSize() + "-bit (" + COUNT + " float lanes)";
    }
}
