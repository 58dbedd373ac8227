package dev.isthmus.server;

import dev.isthmus.engine.serving.Engine;
import dev.isthmus.engine.serving.EngineStats;
import dev.isthmus.engine.serving.Histogram;
import dev.isthmus.engine.speculative.SpeculationStats;

/** The engine's state in the Prometheus text exposition format (version 0.0.4). */
final class PrometheusMetrics {
    private PrometheusMetrics() {
    }

    static String render(Engine engine) {
        EngineStats s = engine.stats();
        StringBuilder b = new StringBuilder();
        gauge(b, "isthmus_queue_depth", "Requests waiting for admission to the batch.", s.waiting());
        gauge(b, "isthmus_active_sequences", "Sequences in the running batch (prefilling or decoding).", s.running());
        gauge(b, "isthmus_kv_blocks_total", "KV cache blocks in the pool.", s.kv().blocks());
        gauge(b, "isthmus_kv_blocks_used", "KV cache blocks held by sequences.", s.kv().used());
        gauge(b, "isthmus_kv_blocks_cached", "Unheld KV blocks that keep a reusable prompt prefix.", s.kv().cached());
        counter(b, "isthmus_kv_prefix_hit_blocks_total", "KV blocks reused from the prefix cache.", s.kv().prefixHitBlocks());
        counter(b, "isthmus_kv_evictions_total", "Cached KV blocks reused for new data.", s.kv().evictions());
        counter(b, "isthmus_requests_total", "Requests accepted.", s.requests());
        counter(b, "isthmus_requests_rejected_total", "Requests refused because the queue was full.", s.rejected());
        counter(b, "isthmus_prompt_tokens_total", "Prompt tokens accepted.", s.promptTokens());
        counter(b, "isthmus_generation_tokens_total", "Tokens generated.", s.generatedTokens());
        counter(b, "isthmus_preemptions_total", "Sequences preempted for lack of KV blocks.", s.preemptions());
        counter(b, "isthmus_forward_passes_total", "Batched forward passes run.", s.steps());
        gauge(b, "isthmus_generation_tokens_per_second", "Tokens generated per second over the last 10 s.",
                s.tokensPerSecond());
        SpeculationStats spec = s.speculation();
        if (spec != null) {
            counter(b, "isthmus_speculative_drafts_total", "Non-empty proposals the model verified.", spec.proposals());
            counter(b, "isthmus_speculative_draft_tokens_total", "Proposed tokens the model verified.", spec.drafted());
            counter(b, "isthmus_speculative_accepted_tokens_total", "Proposed tokens the model accepted.",
                    spec.accepted());
            counter(b, "isthmus_speculative_draft_seconds_total", "Time spent proposing tokens.",
                    spec.draftNanos() / 1e9);
        }
        Histogram h = engine.timeToFirstToken();
        String name = "isthmus_time_to_first_token_seconds";
        b.append("# HELP ").append(name).append(" Time from request to its first generated token.\n");
        b.append("# TYPE ").append(name).append(" histogram\n");
        double[] bounds = h.bounds();
        long[] counts = h.cumulativeCounts();
        for (int i = 0; i < bounds.length; i++) {
            b.append(name).append("_bucket{le=\"").append(number(bounds[i])).append("\"} ").append(counts[i]).append('\n');
        }
        b.append(name).append("_bucket{le=\"+Inf\"} ").append(counts[bounds.length]).append('\n');
        b.append(name).append("_sum ").append(number(h.sum())).append('\n');
        b.append(name).append("_count ").append(counts[bounds.length]).append('\n');
        return b.toString();
    }

    private static void gauge(StringBuilder b, String name, String help, double value) {
        metric(b, name, help, "gauge", value);
    }

    private static void counter(StringBuilder b, String name, String help, double value) {
        metric(b, name, help, "counter", value);
    }

    private static void metric(StringBuilder b, String name, String help, String type, double value) {
        b.append("# HELP ").append(name).append(' ').append(help).append('\n');
        b.append("# TYPE ").append(name).append(' ').append(type).append('\n');
        b.append(name).append(' ').append(number(value)).append('\n');
    }

    private static String number(double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e15) {
            return Long.toString((long) v);
        }
        return Double.toString(v);
    }
}
