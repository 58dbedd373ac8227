package dev.isthmus.engine.serving;

import dev.isthmus.api.DType;

/**
 * Limits of an {@link Engine}.
 *
 * @param maxBatch       sequences in flight at once (running: prefilling or decoding)
 * @param maxBatchTokens tokens per forward pass: decode rows first, then prompt chunks up to this budget
 *                       (chunked prefill, so a long prompt never stalls running decodes for long)
 * @param maxQueue       requests waiting for admission; beyond it {@link Engine#submit} refuses
 *                       ({@link EngineOverloadedException})
 * @param blockSize      KV positions per block
 * @param kvMemoryBytes  KV cache budget in bytes; 0: enough for {@code maxBatch} full contexts, at most 1 GiB
 * @param kvType         KV cache dtype (F32, F16 or BF16)
 * @param prefixSharing  reuse the KV blocks of identical prompt prefixes
 */
public record EngineConfig(int maxBatch, int maxBatchTokens, int maxQueue, int blockSize, long kvMemoryBytes,
                           DType kvType, boolean prefixSharing) {
    public EngineConfig {
        if (maxBatch <= 0 || maxBatchTokens < maxBatch || maxQueue < 0 || blockSize <= 0 || kvMemoryBytes < 0) {
            throw new IllegalArgumentException("bad engine limits: maxBatch " + maxBatch + ", maxBatchTokens "
                    + maxBatchTokens + " (≥ maxBatch), maxQueue " + maxQueue + ", blockSize " + blockSize
                    + ", kvMemoryBytes " + kvMemoryBytes);
        }
    }

    /** 16 sequences, 512 tokens per pass, a queue of 64, blocks of 16, automatic F16 KV budget, sharing on. */
    public static EngineConfig defaults() {
        return new EngineConfig(16, 512, 64, 16, 0, DType.F16, true);
    }

    public EngineConfig withMaxBatch(int n) {
        return new EngineConfig(n, Math.max(maxBatchTokens, n), maxQueue, blockSize, kvMemoryBytes, kvType, prefixSharing);
    }

    public EngineConfig withMaxBatchTokens(int n) {
        return new EngineConfig(maxBatch, n, maxQueue, blockSize, kvMemoryBytes, kvType, prefixSharing);
    }

    public EngineConfig withMaxQueue(int n) {
        return new EngineConfig(maxBatch, maxBatchTokens, n, blockSize, kvMemoryBytes, kvType, prefixSharing);
    }

    public EngineConfig withKvMemory(int blockSize, long bytes, DType type) {
        return new EngineConfig(maxBatch, maxBatchTokens, maxQueue, blockSize, bytes, type, prefixSharing);
    }

    public EngineConfig withPrefixSharing(boolean on) {
        return new EngineConfig(maxBatch, maxBatchTokens, maxQueue, blockSize, kvMemoryBytes, kvType, on);
    }
}
