package dev.isthmus.cli;

import dev.isthmus.engine.generation.GenerationParams;
import dev.isthmus.engine.generation.GenerationResult;
import dev.isthmus.engine.model.Model;
import dev.isthmus.engine.sampling.SamplingParams;
import dev.isthmus.engine.speculative.SpeculationStats;
import dev.isthmus.engine.speculative.SpeculativeGenerator;
import dev.isthmus.engine.speculative.SpeculativeResult;

import java.io.PrintWriter;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * {@code isthmus bench --draft-model ...} / {@code --lookup-ngram N}: generation from one prompt with and
 * without speculation, alternating, median tokens/s of each, the acceptance rate and the speedup.
 */
final class SpeculativeBench {
    private SpeculativeBench() {
    }

    static void run(PrintWriter out, Model target, SpeculativeGenerator spec, SpeculationChoice choice, String name,
                    String prompt, int tokens, float temperature, int reps) {
        SamplingParams sampling = temperature <= 0 ? SamplingParams.greedy()
                : SamplingParams.defaults(1234).withTemperature(temperature);
        GenerationParams params = new GenerationParams(tokens, sampling, List.of(), null, false);
        GenerationParams warmUp = new GenerationParams(Math.min(tokens, 16), sampling, List.of(), null, false);
        target.generator().generate(prompt, warmUp, s -> { });
        spec.generate(prompt, warmUp, s -> { });

        double[] plain = new double[reps];
        double[] fast = new double[reps];
        SpeculationStats total = SpeculationStats.NONE;
        boolean identical = true;
        int generated = 0;
        for (int i = 0; i < reps; i++) {
            GenerationResult p = target.generator().generate(prompt, params, s -> { });
            SpeculativeResult s = spec.generate(prompt, params, t -> { });
            plain[i] = p.generationTokensPerSecond();
            fast[i] = s.generation().generationTokensPerSecond();
            identical &= Arrays.equals(p.tokens(), s.generation().tokens());
            generated = s.generation().tokens().length;
            SpeculationStats x = s.stats();
            total = total.plus(x);
            System.err.printf(Locale.ROOT, "rep %d: plain %.2f t/s, speculative %.2f t/s, acceptance %s%n", i + 1,
                    plain[i], fast[i], acceptance(x));
        }
        double plainMedian = median(plain);
        double fastMedian = median(fast);
        out.println("| model | drafter | K | p-min | temp | tokens | acceptance | accepted/proposal | passes/token "
                + "| plain t/s | speculative t/s | speedup | same tokens |");
        out.println("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        out.printf(Locale.ROOT, "| %s | %s | %d | %s | %.2f | %d | %s | %.2f | %.2f | %.2f | %.2f | %.2fx | %s |%n",
                name, spec.drafts().description(), choice.draftMax,
                choice.draftModel != null ? String.format(Locale.ROOT, "%.2f", choice.draftPMin) : "-", temperature,
                generated, acceptance(total), total.proposals() == 0 ? 0 : total.meanAcceptedLength(),
                (double) total.steps() / Math.max(1, (long) generated * reps), plainMedian, fastMedian,
                fastMedian / plainMedian, temperature <= 0 ? (identical ? "yes" : "NO") : "n/a (sampled)");
        out.printf(Locale.ROOT, "time per speculative run: draft %.0f ms, verify %.0f ms (mean of %d)%n",
                total.draftNanos() / 1e6 / reps, total.verifyNanos() / 1e6 / reps, reps);
        out.flush();
    }

    private static String acceptance(SpeculationStats s) {
        return s.drafted() == 0 ? "nothing proposed"
                : String.format(Locale.ROOT, "%.1f%% of %d", 100 * s.acceptanceRate(), s.drafted());
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }
}
