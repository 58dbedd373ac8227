package dev.isthmus.engine.serving;

import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.DoubleAdder;

/** A cumulative histogram of seconds with fixed bucket bounds (Prometheus style); thread-safe. */
public final class Histogram {
    private final double[] bounds;
    private final AtomicLongArray counts;
    private final DoubleAdder sum = new DoubleAdder();

    public Histogram(double... bounds) {
        this.bounds = bounds.clone();
        this.counts = new AtomicLongArray(bounds.length + 1);
    }

    /** Time-to-first-token buckets, 5 ms to 60 s. */
    public static Histogram latency() {
        return new Histogram(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60);
    }

    public void observe(double seconds) {
        int i = 0;
        while (i < bounds.length && seconds > bounds[i]) {
            i++;
        }
        counts.incrementAndGet(i);
        sum.add(seconds);
    }

    /** Upper bounds of the finite buckets. */
    public double[] bounds() {
        return bounds.clone();
    }

    /** Observations ≤ each bound, then the total (the {@code +Inf} bucket). */
    public long[] cumulativeCounts() {
        long[] c = new long[bounds.length + 1];
        long acc = 0;
        for (int i = 0; i < c.length; i++) {
            acc += counts.get(i);
            c[i] = acc;
        }
        return c;
    }

    public long count() {
        long[] c = cumulativeCounts();
        return c[c.length - 1];
    }

    public double sum() {
        return sum.sum();
    }
}
