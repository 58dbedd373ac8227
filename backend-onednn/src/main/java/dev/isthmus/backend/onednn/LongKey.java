package dev.isthmus.backend.onednn;

import java.util.Arrays;

/** A primitive-cache key: a tuple of longs (op id, dtypes, dims, strides, flags) compared by value. */
final class LongKey {
    private final long[] values;
    private final int hash;

    LongKey(long... values) {
        this.values = values;
        this.hash = Arrays.hashCode(values);
    }

    /** Collects the parts of a key. */
    static final class Builder {
        private long[] v = new long[16];
        private int n;

        Builder add(long x) {
            if (n == v.length) {
                v = Arrays.copyOf(v, n * 2);
            }
            v[n++] = x;
            return this;
        }

        /** The length, then the values, so that consecutive arrays cannot be confused. */
        Builder add(long[] xs) {
            add(xs.length);
            for (long x : xs) {
                add(x);
            }
            return this;
        }

        LongKey build() {
            return new LongKey(Arrays.copyOf(v, n));
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof LongKey k && k.hash == hash && Arrays.equals(k.values, values);
    }

    @Override
    public int hashCode() {
        return hash;
    }

    @Override
    public String toString() {
        return Arrays.toString(values);
    }
}
