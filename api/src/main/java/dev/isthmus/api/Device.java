package dev.isthmus.api;

/**
 * Where a tensor's bytes live.
 *
 * <p>Only tensors on a {@linkplain #hostAccessible() host-accessible} device may be read or written
 * through their {@link java.lang.foreign.MemorySegment} by Java code; for any other device the
 * segment carries a device address and data moves through {@code Backend.copy}.
 *
 * @param name           a short name such as {@code host} or {@code cuda:0}
 * @param hostAccessible whether Java code may dereference the memory directly
 */
public record Device(String name, boolean hostAccessible) {
    /** Ordinary process memory (heap-independent, off-heap or memory-mapped). */
    public static final Device HOST = new Device("host", true);
}
