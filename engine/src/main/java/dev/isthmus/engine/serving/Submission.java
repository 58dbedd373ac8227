package dev.isthmus.engine.serving;

import java.util.Objects;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executor;
import java.util.concurrent.Flow;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A request accepted by the {@link Engine}: a {@link Flow.Publisher} of its {@link Token}s (one
 * subscriber; tokens produced before it subscribes are kept for it, delivery follows its demand and never
 * blocks the engine), the {@link #completion()} future, and {@link #cancel()}.
 *
 * <p>The completion future completes before the subscriber's {@code onComplete}, so a subscriber may
 * read it there. Cancelling (this method, the subscription's {@code cancel}, or the future's
 * {@code cancel}) stops the sequence at the engine's next step and returns its KV blocks to the pool;
 * the future then fails with {@link CancellationException} and a subscriber that has not cancelled gets
 * {@code onError}.
 */
public final class Submission implements Flow.Publisher<Token> {
    private final Request request;
    private final Executor executor;
    private final Runnable wakeEngine;
    private final CompletableFuture<Completion> completion = new CompletableFuture<>();
    private final ConcurrentLinkedQueue<Token> items = new ConcurrentLinkedQueue<>();
    private final AtomicReference<Flow.Subscriber<? super Token>> subscriber = new AtomicReference<>();
    private final AtomicLong demand = new AtomicLong();
    private final AtomicInteger wip = new AtomicInteger();
    private volatile boolean done;
    private volatile Throwable error;
    private volatile boolean finished;
    private volatile boolean cancelRequested;

    Submission(Request request, Executor executor, Runnable wakeEngine) {
        this.request = request;
        this.executor = executor;
        this.wakeEngine = wakeEngine;
        completion.whenComplete((c, e) -> {
            if (e instanceof CancellationException && !done) {
                cancel();
            }
        });
    }

    public Request request() {
        return request;
    }

    /** Completes with the whole result, or fails ({@link CancellationException} if cancelled). */
    public CompletableFuture<Completion> completion() {
        return completion;
    }

    /** Asks the engine to stop this request and free its blocks. */
    public void cancel() {
        cancelRequested = true;
        wakeEngine.run();
    }

    boolean cancelRequested() {
        return cancelRequested;
    }

    @Override
    public void subscribe(Flow.Subscriber<? super Token> s) {
        Objects.requireNonNull(s, "subscriber");
        if (!subscriber.compareAndSet(null, s)) {
            s.onSubscribe(new Flow.Subscription() {
                @Override
                public void request(long n) {
                }

                @Override
                public void cancel() {
                }
            });
            s.onError(new IllegalStateException("a submission has a single subscriber"));
            return;
        }
        s.onSubscribe(new Flow.Subscription() {
            @Override
            public void request(long n) {
                if (n <= 0) {
                    error = new IllegalArgumentException("non-positive request: " + n + " (§3.9)");
                    done = true;
                    Submission.this.cancel();
                } else {
                    demand.getAndAccumulate(n, (a, b) -> a + b < 0 ? Long.MAX_VALUE : a + b);
                }
                drain();
            }

            @Override
            public void cancel() {
                finished = true;
                Submission.this.cancel();
            }
        });
        drain();
    }

    /** Engine thread: a new item. */
    void emit(Token token) {
        items.add(token);
        drain();
    }

    /** Engine thread: the end. */
    void complete(Completion c) {
        completion.complete(c);
        done = true;
        drain();
    }

    /** Engine thread: failure or cancellation. */
    void fail(Throwable t) {
        completion.completeExceptionally(t);
        if (error == null) {
            error = t;
        }
        done = true;
        drain();
    }

    private void drain() {
        if (wip.getAndIncrement() == 0) {
            try {
                executor.execute(this::drainLoop);
            } catch (RuntimeException rejected) {
                drainLoop(); // the executor is shut down: deliver on this thread
            }
        }
    }

    private void drainLoop() {
        int missed = 1;
        do {
            Flow.Subscriber<? super Token> s = subscriber.get();
            if (s != null && !finished) {
                try {
                    while (!finished && demand.get() > 0) {
                        Token t = items.poll();
                        if (t == null) {
                            break;
                        }
                        if (demand.get() != Long.MAX_VALUE) {
                            demand.decrementAndGet();
                        }
                        s.onNext(t);
                    }
                    boolean terminal = done && (items.isEmpty() || error instanceof IllegalArgumentException);
                    if (!finished && terminal) {
                        finished = true;
                        if (error != null) {
                            s.onError(error);
                        } else {
                            s.onComplete();
                        }
                    }
                } catch (RuntimeException e) {
                    // A subscriber that throws is cancelled (§2.13).
                    finished = true;
                    cancel();
                }
            }
            missed = wip.addAndGet(-missed);
        } while (missed != 0);
    }
}
