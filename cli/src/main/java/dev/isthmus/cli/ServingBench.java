package dev.isthmus.cli;

import dev.isthmus.api.DType;
import dev.isthmus.engine.graph.KvCache;
import dev.isthmus.engine.model.Model;
import dev.isthmus.engine.sampling.SamplingParams;
import dev.isthmus.engine.serving.Completion;
import dev.isthmus.engine.serving.Engine;
import dev.isthmus.engine.serving.EngineConfig;
import dev.isthmus.engine.serving.Request;
import dev.isthmus.engine.serving.Submission;
import dev.isthmus.engine.serving.Token;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Flow;

/**
 * {@code isthmus bench --concurrency 1,4,8,16}: for each level, that many requests of {@code -p} random
 * prompt tokens and {@code -n} generated tokens (EOS ignored) submitted at once to the serving engine.
 *
 * <p><b>Aggregate decode tok/s</b> counts the tokens all sequences produce while all of them decode: from
 * the moment the last request got its first token to the moment the last token arrived (prefill is
 * excluded, so levels compare decode alone). <b>TTFT</b> is from submission to first token, over all
 * requests of all repetitions.
 */
final class ServingBench {
    private ServingBench() {
    }

    private record Level(int concurrency, double decodeTps, double outputTps, double[] ttftMillis) {
    }

    static void run(PrintWriter out, Model m, String name, List<Integer> levels, int promptTokens, int genTokens,
                    int reps, DType cacheType) {
        if (genTokens < 2) {
            throw new IllegalArgumentException("--concurrency needs -n of at least 2");
        }
        int prompt = Math.max(1, promptTokens);
        List<Level> results = new ArrayList<>();
        for (int c : levels) {
            if (c < 1) {
                throw new IllegalArgumentException("concurrency must be ≥ 1, got " + c);
            }
            var cfg = m.config();
            int perSeq = prompt + genTokens + 16;
            long kvBytes = KvCache.Options.bytesPerBlock(cfg.layers(), cfg.kvDim(), 16, cacheType)
                    * ((long) c * ((perSeq + 15) / 16) + 1);
            EngineConfig config = new EngineConfig(c, Math.max(512, c), c, 16, kvBytes, cacheType, false);
            try (Engine engine = Engine.start(m, config)) {
                once(engine, 1, prompt, Math.min(genTokens, 8), 999); // warm-up
                double[] decode = new double[reps];
                double[] output = new double[reps];
                List<Double> ttft = new ArrayList<>();
                for (int r = 0; r < reps; r++) {
                    Rep rep = once(engine, c, prompt, genTokens, 1000L * r);
                    decode[r] = rep.decodeTps;
                    output[r] = rep.outputTps;
                    for (double t : rep.ttftMillis) {
                        ttft.add(t);
                    }
                }
                double[] t = ttft.stream().mapToDouble(Double::doubleValue).sorted().toArray();
                results.add(new Level(c, median(decode), median(output), t));
            }
        }
        double base = results.getFirst().concurrency == 1 ? results.getFirst().decodeTps : Double.NaN;
        out.printf(Locale.ROOT, "serving %s: -p %d -n %d, %d reps (median), KV %s, backend threads as configured%n",
                name, prompt, genTokens, reps, cacheType);
        out.println("| concurrency | aggregate decode tok/s | per sequence tok/s | vs 1 | output tok/s | TTFT p50 ms "
                + "| TTFT p90 ms | TTFT p99 ms |");
        out.println("|---|---|---|---|---|---|---|---|");
        for (Level l : results) {
            out.printf(Locale.ROOT, "| %d | %.2f | %.2f | %s | %.2f | %.1f | %.1f | %.1f |%n", l.concurrency,
                    l.decodeTps, l.decodeTps / l.concurrency,
                    Double.isNaN(base) ? "-" : String.format(Locale.ROOT, "%.2fx", l.decodeTps / base), l.outputTps,
                    percentile(l.ttftMillis, 50), percentile(l.ttftMillis, 90), percentile(l.ttftMillis, 99));
        }
        out.flush();
    }

    private record Rep(double decodeTps, double outputTps, double[] ttftMillis) {
    }

    private static Rep once(Engine engine, int c, int prompt, int gen, long seed) {
        int vocab = engine.tokenizer().vocabSize();
        List<Submission> subs = new ArrayList<>();
        List<long[]> stamps = new ArrayList<>();
        long t0 = System.nanoTime();
        for (int i = 0; i < c; i++) {
            int[] tokens = new SplittableRandom(seed + i).ints(prompt, 0, vocab).toArray();
            Submission s = engine.submit(new Request(tokens, gen, SamplingParams.greedy(), List.of(), true));
            long[] times = new long[gen];
            s.subscribe(new Flow.Subscriber<Token>() {
                @Override
                public void onSubscribe(Flow.Subscription sub) {
                    sub.request(Long.MAX_VALUE);
                }

                @Override
                public void onNext(Token t) {
                    if (t.id() != Token.NONE && t.index() < times.length) {
                        times[t.index()] = System.nanoTime();
                    }
                }

                @Override
                public void onError(Throwable e) {
                }

                @Override
                public void onComplete() {
                }
            });
            subs.add(s);
            stamps.add(times);
        }
        double[] ttft = new double[c];
        for (int i = 0; i < c; i++) {
            Completion done = subs.get(i).completion().join();
            ttft[i] = done.timeToFirstTokenNanos() / 1e6;
        }
        // Token times arrive through the delivery threads; wait until each stream has its last one.
        for (long[] times : stamps) {
            for (int spin = 0; spin < 10_000 && times[times.length - 1] == 0; spin++) {
                Thread.onSpinWait();
                if (spin > 100) {
                    try {
                        Thread.sleep(1);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        break;
                    }
                }
            }
        }
        long start = 0;
        long end = 0;
        for (long[] times : stamps) {
            start = Math.max(start, times[0]);
            end = Math.max(end, times[times.length - 1]);
        }
        long counted = 0;
        for (long[] times : stamps) {
            for (long t : times) {
                if (t > start) {
                    counted++;
                }
            }
        }
        double decode = end > start ? counted / ((end - start) / 1e9) : Double.NaN;
        double output = (long) c * gen / ((end - t0) / 1e9);
        return new Rep(decode, output, ttft);
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }

    private static double percentile(double[] sorted, int p) {
        if (sorted.length == 0) {
            return Double.NaN;
        }
        int i = (int) Math.ceil(p / 100.0 * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
    }
}
