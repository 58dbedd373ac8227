package dev.isthmus.backend.cpu.parallel;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A fixed set of daemon threads that, together with the calling thread, run a parallel-for over item
 * ranges.
 *
 * <p>Inference calls hundreds of short operators per token, so dispatch must be cheap: a job is published
 * through one volatile field, idle workers spin for a short while before parking (so back-to-back ops find
 * them awake), chunks are claimed from an atomic counter (dynamic balance), and the caller works too
 * instead of waiting. Jobs from concurrent callers are serialized.
 */
public final class WorkerPool implements AutoCloseable {
    private static final long SPIN_NANOS = 200_000;

    private final int threads;
    private final Thread[] workers;
    private final Worker[] workerStates;
    private final ReentrantLock dispatch = new ReentrantLock();
    private volatile Job current;
    private volatile boolean closed;
    private long generation;

    /** A pool with {@code threads} participants: the caller plus {@code threads - 1} workers. */
    public WorkerPool(int threads, String namePrefix) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be ≥ 1, got " + threads);
        }
        this.threads = threads;
        this.workers = new Thread[threads - 1];
        this.workerStates = new Worker[threads - 1];
        for (int i = 0; i < workers.length; i++) {
            Worker w = new Worker();
            workerStates[i] = w;
            Thread t = new Thread(w, namePrefix + "-" + (i + 1));
            t.setDaemon(true);
            w.thread = t;
            workers[i] = t;
            t.start();
        }
    }

    /** Number of threads that run a job, the caller included. */
    public int threads() {
        return threads;
    }

    /**
     * Runs {@code body} over {@code [0, count)} in chunks of at least {@code grain} items. With a single
     * chunk (small work) it runs directly on the calling thread.
     */
    public void parallelFor(int count, int grain, RangeBody body) {
        if (count <= 0) {
            return;
        }
        grain = Math.max(1, grain);
        if (threads == 1 || count <= grain || closed) {
            body.run(0, count);
            return;
        }
        // Several chunks per thread let fast threads take over the work of slow ones.
        int chunk = Math.max(grain, ceilDiv(count, threads * 4));
        if (chunk >= count) {
            body.run(0, count);
            return;
        }
        dispatch.lock();
        try {
            Job job = new Job(++generation, body, count, chunk, Thread.currentThread());
            current = job;
            for (Worker w : workerStates) {
                if (w.parked) {
                    LockSupport.unpark(w.thread);
                }
            }
            job.work();
            job.awaitCompletion();
            current = null; // do not keep the finished job's operands reachable
            job.rethrow();
        } finally {
            dispatch.unlock();
        }
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }

    /** Stops the workers; later jobs run on the calling thread. */
    @Override
    public void close() {
        closed = true;
        for (Thread t : workers) {
            LockSupport.unpark(t);
        }
        for (Thread t : workers) {
            try {
                t.join(1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    private static final class Job {
        final long generation;
        final RangeBody body;
        final int count;
        final int chunk;
        final Thread caller;
        final AtomicInteger next = new AtomicInteger();
        final AtomicInteger unfinishedChunks;
        volatile boolean callerParked;
        volatile Throwable failure;

        Job(long generation, RangeBody body, int count, int chunk, Thread caller) {
            this.generation = generation;
            this.body = body;
            this.count = count;
            this.chunk = chunk;
            this.caller = caller;
            this.unfinishedChunks = new AtomicInteger((count + chunk - 1) / chunk);
        }

        void work() {
            int from;
            while ((from = next.getAndAdd(chunk)) < count) {
                try {
                    if (failure == null) {
                        body.run(from, Math.min(count, from + chunk));
                    }
                } catch (Throwable t) {
                    failure = t;
                } finally {
                    if (unfinishedChunks.decrementAndGet() == 0 && callerParked) {
                        LockSupport.unpark(caller);
                    }
                }
            }
        }

        void awaitCompletion() {
            long start = System.nanoTime();
            while (unfinishedChunks.get() != 0) {
                if (System.nanoTime() - start < SPIN_NANOS) {
                    Thread.onSpinWait();
                } else {
                    callerParked = true;
                    if (unfinishedChunks.get() != 0) {
                        LockSupport.park(this);
                    }
                }
            }
        }

        void rethrow() {
            Throwable t = failure;
            if (t instanceof RuntimeException e) {
                throw e;
            }
            if (t instanceof Error e) {
                throw e;
            }
            if (t != null) {
                throw new IllegalStateException(t);
            }
        }
    }

    private final class Worker implements Runnable {
        volatile boolean parked;
        Thread thread;

        @Override
        public void run() {
            long seen = 0;
            while (!closed) {
                Job job = awaitJob(seen);
                if (job == null) {
                    return;
                }
                seen = job.generation;
                job.work();
            }
        }

        private Job awaitJob(long seen) {
            long start = System.nanoTime();
            while (true) {
                if (closed) {
                    return null;
                }
                Job job = current;
                if (job != null && job.generation != seen) {
                    return job;
                }
                if (System.nanoTime() - start < SPIN_NANOS) {
                    Thread.onSpinWait();
                    continue;
                }
                // Announce the park before re-checking, so a dispatcher either sees the flag or we see its job.
                parked = true;
                job = current;
                if (!closed && (job == null || job.generation == seen)) {
                    LockSupport.park(this);
                }
                parked = false;
                start = System.nanoTime();
            }
        }
    }
}
