package dev.isthmus.cli;

import dev.isthmus.api.spi.Backend;
import dev.isthmus.engine.hub.ModelLocator;
import dev.isthmus.engine.model.Model;
import dev.isthmus.engine.serving.SpeculationConfig;
import dev.isthmus.engine.speculative.DraftModel;
import dev.isthmus.engine.speculative.DraftSource;
import dev.isthmus.engine.speculative.NgramLookup;
import dev.isthmus.engine.speculative.SpeculationStats;
import dev.isthmus.engine.speculative.SpeculativeGenerator;
import dev.isthmus.engine.speculative.SpeculativeParams;
import picocli.CommandLine.Option;

import java.util.Locale;

/** {@code --draft-model} and {@code --lookup-ngram} with their knobs, shared by run, bench and serve. */
final class SpeculationChoice {
    @Option(names = "--draft-model", paramLabel = "MODEL", description = "Speculative decoding: this small model "
            + "(GGUF or hf:, with the model's vocabulary) proposes tokens, the model verifies them in one pass.")
    String draftModel;

    @Option(names = "--lookup-ngram", paramLabel = "N", description = "Speculative decoding without a draft model: "
            + "propose what followed the last occurrence of the context's last N..1 tokens (prompt lookup).")
    Integer lookupNgram;

    @Option(names = "--draft-max", paramLabel = "K", defaultValue = "16",
            description = "Tokens proposed per step at most (default: ${DEFAULT-VALUE}).")
    int draftMax;

    @Option(names = "--draft-min", paramLabel = "K", defaultValue = "0",
            description = "Shorter proposals are not verified (default: ${DEFAULT-VALUE}).")
    int draftMin;

    @Option(names = "--draft-p-min", paramLabel = "P", defaultValue = "0.75", description = "The draft model stops "
            + "proposing where its most likely token is less likely than P (default: ${DEFAULT-VALUE}).")
    double draftPMin;

    boolean enabled() {
        return draftModel != null || lookupNgram != null;
    }

    /** A speculative generator for {@code target}, and the draft model it opened (closed with it). */
    static final class Speculation implements AutoCloseable {
        final SpeculativeGenerator generator;
        private final Model draft;

        Speculation(SpeculativeGenerator generator, Model draft) {
            this.generator = generator;
            this.draft = draft;
        }

        /** The same drafter and limits for the serving engine. */
        SpeculationConfig serving() {
            return new SpeculationConfig(generator.drafts(), generator.params());
        }

        @Override
        public void close() {
            if (draft != null) {
                draft.close();
            }
        }
    }

    /**
     * @throws IllegalArgumentException for contradictory options or a draft whose vocabulary is not the target's
     */
    Speculation open(Backend backend, Model target) {
        if (draftModel != null && lookupNgram != null) {
            throw new IllegalArgumentException("--draft-model and --lookup-ngram exclude each other");
        }
        SpeculativeParams params = new SpeculativeParams(draftMax, draftMin);
        if (lookupNgram != null) {
            return new Speculation(new SpeculativeGenerator(target.transformer(), target.tokenizer(),
                    new NgramLookup(lookupNgram), params), null);
        }
        Model draft = Model.open(ModelLocator.fromEnvironment(System.err).resolve(draftModel), null, backend);
        try {
            DraftSource source = new DraftModel(draft, draftPMin);
            return new Speculation(new SpeculativeGenerator(target.transformer(), target.tokenizer(), source, params),
                    draft);
        } catch (RuntimeException e) {
            draft.close();
            throw e;
        }
    }

    /** One line: proposals, acceptance, passes of the target. */
    static String describe(SpeculationStats s, int tokens) {
        return String.format(Locale.ROOT, "%d drafted, %d accepted (%s), %.2f accepted per proposal, "
                        + "%d target passes for %d tokens | draft %.0f ms, verify %.0f ms",
                s.drafted(), s.accepted(), Double.isNaN(s.acceptanceRate()) ? "-"
                        : String.format(Locale.ROOT, "%.1f%%", 100 * s.acceptanceRate()),
                Double.isNaN(s.meanAcceptedLength()) ? 0 : s.meanAcceptedLength(), s.steps(), tokens,
                s.draftNanos() / 1e6, s.verifyNanos() / 1e6);
    }
}
