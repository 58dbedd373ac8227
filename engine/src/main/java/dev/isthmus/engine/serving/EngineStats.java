package dev.isthmus.engine.serving;

import dev.isthmus.engine.graph.KvCache;
import dev.isthmus.engine.speculative.SpeculationStats;

/**
 * A snapshot of an {@link Engine}'s state and counters.
 *
 * @param waiting              requests waiting for admission (including preempted ones)
 * @param running              sequences in the batch (prefilling or decoding)
 * @param kv                   the KV block pool's counters
 * @param requests             requests accepted so far
 * @param rejected             requests refused because the queue was full
 * @param promptTokens         prompt tokens accepted so far
 * @param generatedTokens      tokens generated so far
 * @param preemptions          sequences evicted for lack of KV blocks (and later recomputed)
 * @param steps                forward passes run
 * @param tokensPerSecond      generated tokens per second over the last ten seconds
 * @param speculation          proposals and acceptance over all sequences so far, or {@code null} if the engine
 *                             does not speculate
 */
public record EngineStats(int waiting, int running, KvCache.Stats kv, long requests, long rejected,
                          long promptTokens, long generatedTokens, long preemptions, long steps,
                          double tokensPerSecond, SpeculationStats speculation) {
}
