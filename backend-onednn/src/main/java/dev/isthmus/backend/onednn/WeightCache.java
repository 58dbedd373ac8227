package dev.isthmus.backend.onednn;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.ref.WeakReference;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

import static dev.isthmus.bindings.onednn.dnnl_h.dnnl_memory_desc_equal;
import static dev.isthmus.bindings.onednn.dnnl_h.dnnl_memory_desc_get_size;

/**
 * Weights converted once into the layouts oneDNN's matmul prefers, keyed by the weight tensor's memory
 * (address, size, dtype, shape, row stride) and by whether they are converted as they are or mixed by
 * {@link Rotation} (the int8 path's two forms).
 *
 * <p>A key alone is not proof that the memory still holds the same weights: an address can be reused after
 * its memory is freed. An entry therefore also remembers the {@link MemorySegment.Scope} of the weights
 * (weakly) and a fingerprint of sampled bytes; it is valid only while that same scope is alive and the
 * fingerprint matches. Entries over memory this backend frees ({@link #evict}) are dropped at once, entries
 * whose scope died are dropped at the next insertion, and everything at {@link #close}.
 *
 * <p>Weights are treated as immutable while cached, as the SPI's weights are (memory-mapped model files).
 */
final class WeightCache implements AutoCloseable {
    record Key(long address, long byteSize, DType dtype, long rows, long cols, long rowStride, boolean mixed) {
    }

    /** One layout of one weight: its descriptor (owned) and bytes. */
    record Packed(MemorySegment md, MemorySegment data) {
    }

    /** The converted forms of one weight tensor. */
    static final class Entry {
        private final WeakReference<MemorySegment.Scope> scope;
        private final long fingerprint;
        private final Arena arena = Arena.ofShared();
        private final List<Packed> packed = new ArrayList<>();
        /**
         * The scales of integer weights, or null: f16 per group of 32 ({@code [k / 32, m]}) for weight
         * decompression, f32 per row ({@code [m]}) for the int8 matmul.
         */
        MemorySegment scales;
        /** Integer weights in the plain layout, between unpacking and packing, or null. */
        MemorySegment unpacked;
        private Arena temporary;

        private Entry(MemorySegment.Scope scope, long fingerprint) {
            this.scope = new WeakReference<>(scope);
            this.fingerprint = fingerprint;
        }

        /** Memory that lives as long as this entry, 64-byte aligned, zero-filled. */
        MemorySegment allocate(long bytes) {
            return arena.allocate(Math.max(bytes, 1), 4096);
        }

        /** Memory freed by {@link #releaseTemporary} (or with the entry). */
        MemorySegment temporary(long bytes) {
            releaseTemporary();
            temporary = Arena.ofShared();
            return temporary.allocate(Math.max(bytes, 1), 4096);
        }

        void releaseTemporary() {
            if (temporary != null) {
                temporary.close();
                temporary = null;
            }
            unpacked = null;
        }

        /** The form laid out as {@code md}, converting with {@code pack} (given md and target) the first time. */
        MemorySegment packed(MemorySegment md, java.util.function.BiConsumer<MemorySegment, MemorySegment> pack) {
            for (Packed p : packed) {
                if (dnnl_memory_desc_equal(p.md(), md) != 0) {
                    return p.data();
                }
            }
            MemorySegment data = allocate(dnnl_memory_desc_get_size(md));
            pack.accept(md, data);
            packed.add(new Packed(Dnnl.cloneMd(md), data));
            return data;
        }

        int layouts() {
            return packed.size();
        }

        long bytes() {
            long b = scales == null ? 0 : scales.byteSize();
            for (Packed p : packed) {
                b += p.data().byteSize();
            }
            return b;
        }

        private boolean validFor(MemorySegment segment) {
            MemorySegment.Scope s = scope.get();
            return s != null && s == segment.scope() && s.isAlive() && fingerprint == fingerprint(segment);
        }

        private boolean dead() {
            MemorySegment.Scope s = scope.get();
            return s == null || !s.isAlive();
        }

        private void free() {
            releaseTemporary();
            for (Packed p : packed) {
                Dnnl.destroyMd(p.md());
            }
            packed.clear();
            arena.close();
        }
    }

    private final Map<Key, Entry> entries = new HashMap<>();

    static Key keyOf(Tensor w, boolean mixed) {
        return new Key(w.segment().address(), w.segment().byteSize(), w.dtype(), w.rows(), w.cols(),
                Dnnl.uniformRowStride(w), mixed);
    }

    /**
     * The entry of {@code w} ({@code mixed}: of its {@link Rotation}-mixed form), created (with {@code init}
     * filling its scales, if any) when missing or stale.
     */
    Entry get(Tensor w, boolean mixed, Function<Entry, Entry> init) {
        Key key = keyOf(w, mixed);
        Entry e = entries.get(key);
        if (e != null && e.validFor(w.segment())) {
            return e;
        }
        if (e != null) {
            entries.remove(key);
            e.free();
        }
        purgeDead();
        e = init.apply(new Entry(w.segment().scope(), fingerprint(w.segment())));
        entries.put(key, e);
        return e;
    }

    /** Drops the entries of weights inside {@code [address, address + size)}. */
    void evict(long address, long size) {
        Iterator<Map.Entry<Key, Entry>> it = entries.entrySet().iterator();
        while (it.hasNext()) {
            Map.Entry<Key, Entry> e = it.next();
            long a = e.getKey().address();
            long end = a + e.getKey().byteSize();
            if (a < address + size && end > address) {
                e.getValue().free();
                it.remove();
            }
        }
    }

    private void purgeDead() {
        Iterator<Entry> it = entries.values().iterator();
        while (it.hasNext()) {
            Entry e = it.next();
            if (e.dead()) {
                e.free();
                it.remove();
            }
        }
    }

    int size() {
        return entries.size();
    }

    long bytes() {
        long b = 0;
        for (Entry e : entries.values()) {
            b += e.bytes();
        }
        return b;
    }

    @Override
    public void close() {
        for (Entry e : entries.values()) {
            e.free();
        }
        entries.clear();
    }

    /** A hash of the size and of 8-byte words sampled across the segment (every byte of a tiny one). */
    static long fingerprint(MemorySegment s) {
        long size = s.byteSize();
        long h = 0x9E3779B97F4A7C15L ^ size;
        if (size < 8) {
            for (long i = 0; i < size; i++) {
                h = mix(h, s.get(ValueLayout.JAVA_BYTE, i));
            }
            return h;
        }
        int samples = 8;
        long step = Math.max(8, (size - 8) / samples);
        for (long off = 0; off <= size - 8; off += step) {
            h = mix(h, s.get(ValueLayout.JAVA_LONG_UNALIGNED, off));
        }
        return mix(h, s.get(ValueLayout.JAVA_LONG_UNALIGNED, size - 8));
    }

    private static long mix(long h, long v) {
        h ^= v;
        h *= 0xBF58476D1CE4E5B9L;
        return h ^ (h >>> 31);
    }
}
