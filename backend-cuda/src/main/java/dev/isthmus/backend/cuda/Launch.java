package dev.isthmus.backend.cuda;

/**
 * A launch configuration: grid and block dimensions and bytes of dynamic shared memory.
 *
 * @throws IllegalArgumentException if it is outside what every CUDA device accepts (block at most 1024 threads
 *                                  and (1024, 1024, 64); grid at most (2^31 - 1, 65535, 65535); at most 48 KiB of
 *                                  dynamic shared memory without the opt-in attribute, which the backend does not
 *                                  use)
 */
public record Launch(int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ, int sharedBytes) {
    /** Largest gridDim.y and gridDim.z. */
    public static final int MAX_GRID_YZ = 65535;
    /** Largest gridDim.x. */
    public static final int MAX_GRID_X = Integer.MAX_VALUE;
    /** Most threads in a block. */
    public static final int MAX_THREADS = 1024;
    /** Dynamic shared memory every device gives a block without opting in. */
    public static final int MAX_SHARED_BYTES = 48 * 1024;

    public Launch {
        if (blockX < 1 || blockY < 1 || blockZ < 1 || blockX > 1024 || blockY > 1024 || blockZ > 64
                || (long) blockX * blockY * blockZ > MAX_THREADS) {
            throw new IllegalArgumentException("invalid block (" + blockX + ", " + blockY + ", " + blockZ + ")");
        }
        if (gridX < 1 || gridY < 1 || gridZ < 1 || gridY > MAX_GRID_YZ || gridZ > MAX_GRID_YZ) {
            throw new IllegalArgumentException("invalid grid (" + gridX + ", " + gridY + ", " + gridZ + ")");
        }
        if (sharedBytes < 0 || sharedBytes > MAX_SHARED_BYTES) {
            throw new IllegalArgumentException(sharedBytes + " bytes of dynamic shared memory (limit "
                    + MAX_SHARED_BYTES + ")");
        }
    }

    /** A one-dimensional block of {@code threads} threads and a 2-D grid, no dynamic shared memory. */
    public static Launch of(int gridX, int gridY, int threads) {
        return new Launch(gridX, gridY, 1, threads, 1, 1, 0);
    }

    /** Total number of blocks. */
    public long blocks() {
        return (long) gridX * gridY * gridZ;
    }

    /** Threads per block. */
    public int threads() {
        return blockX * blockY * blockZ;
    }

    @Override
    public String toString() {
        return "grid(" + gridX + "," + gridY + "," + gridZ + ") block(" + blockX + "," + blockY + "," + blockZ + ")"
                + (sharedBytes > 0 ? " smem " + sharedBytes : "");
    }
}
