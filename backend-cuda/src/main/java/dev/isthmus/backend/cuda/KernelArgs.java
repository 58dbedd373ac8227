package dev.isthmus.backend.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

/**
 * Packs kernel arguments the way {@code cuLaunchKernel}'s {@code kernelParams} wants them: an array of pointers,
 * entry {@code i} pointing at the value of parameter {@code i}, each value stored with its C type's size.
 *
 * <p>Values are checked against {@link Kernel#params()}: a {@link Kernel.Param#PTR} takes a {@code Long} device
 * address ({@code 0} for NULL), {@code I64} a {@code Long}, {@code I32} an {@code Integer}, {@code F32} a
 * {@code Float}. One instance owns a native buffer reused by every launch (the driver copies the values when the
 * launch is queued), so it is not thread-safe.
 */
public final class KernelArgs implements AutoCloseable {
    /** Most parameters of any kernel. */
    public static final int MAX_PARAMS = 40;

    private final Arena arena = Arena.ofShared();
    private final MemorySegment values = arena.allocate(8L * MAX_PARAMS, 16);
    private final MemorySegment pointers = arena.allocate(8L * MAX_PARAMS, 16);

    /**
     * Writes {@code args} for {@code kernel} and returns the {@code void**} array.
     *
     * @throws IllegalArgumentException naming the kernel and parameter if the count or a type does not match
     */
    public MemorySegment pack(Kernel kernel, Object... args) {
        List<Kernel.Param> params = kernel.params();
        if (args.length != params.size()) {
            throw new IllegalArgumentException(kernel.symbol() + " takes " + params.size() + " arguments, got "
                    + args.length);
        }
        for (int i = 0; i < args.length; i++) {
            MemorySegment slot = values.asSlice(8L * i, 8);
            Object a = args[i];
            Kernel.Param p = params.get(i);
            switch (p) {
                case PTR, I64 -> {
                    if (!(a instanceof Long v)) {
                        throw mismatch(kernel, i, "a Long", a);
                    }
                    slot.set(ValueLayout.JAVA_LONG, 0, v);
                }
                case I32 -> {
                    if (!(a instanceof Integer v)) {
                        throw mismatch(kernel, i, "an Integer", a);
                    }
                    slot.set(ValueLayout.JAVA_INT, 0, v);
                }
                case F32 -> {
                    if (!(a instanceof Float v)) {
                        throw mismatch(kernel, i, "a Float", a);
                    }
                    slot.set(ValueLayout.JAVA_FLOAT, 0, v);
                }
            }
            pointers.setAtIndex(ValueLayout.ADDRESS, i, slot);
        }
        return pointers.asSlice(0, 8L * args.length);
    }

    private static IllegalArgumentException mismatch(Kernel k, int i, String expected, Object actual) {
        return new IllegalArgumentException(k.symbol() + " parameter " + i + " (" + k.paramNames().get(i) + ": "
                + k.params().get(i) + ") needs " + expected + ", got "
                + (actual == null ? "null" : actual.getClass().getSimpleName() + " " + actual));
    }

    @Override
    public void close() {
        arena.close();
    }
}
