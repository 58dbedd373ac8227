package dev.isthmus.backend.cuda;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Grid and block sizes, as the kernels' GEOMETRY comments require, and CUDA's limits. */
class LaunchGeometryTest {

    @Test
    void launchRejectsWhatCudaRejects() {
        assertThrows(IllegalArgumentException.class, () -> new Launch(1, 1, 1, 1025, 1, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> new Launch(1, 1, 1, 512, 4, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> new Launch(1, 1, 1, 1, 1, 65, 0));
        assertThrows(IllegalArgumentException.class, () -> new Launch(1, 65536, 1, 32, 1, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> new Launch(1, 1, 65536, 32, 1, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> new Launch(0, 1, 1, 32, 1, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> new Launch(1, 1, 1, 32, 1, 1, 48 * 1024 + 1));
        Launch ok = new Launch(Integer.MAX_VALUE, 65535, 65535, 1024, 1, 1, 48 * 1024);
        assertEquals(1024, ok.threads());
    }

    @Test
    void elementwiseCoversEveryColumnAndClampsRowsToTheGridLimit() {
        Launch l = LaunchGeometry.elementwise(3, 4097);
        assertEquals(256, l.blockX());
        assertEquals(17, l.gridX()); // 17 * 256 = 4352 >= 4097 > 16 * 256
        assertEquals(3, l.gridY());
        Launch big = LaunchGeometry.elementwise(1_000_000, 1);
        assertEquals(65535, big.gridY()); // kernels loop over rows with stride gridDim.y
        assertEquals(1, big.gridX());
        Launch none = LaunchGeometry.elementwise(0, 0);
        assertEquals(1, none.gridX());
        assertEquals(1, none.gridY());
    }

    @Test
    void quantizedRowsGetOneThreadPerGroup() {
        Launch l = LaunchGeometry.rowsQuantized(7, 4096 / 32);
        assertEquals(128, l.blockX());
        assertEquals(1, l.gridX());
        assertEquals(7, l.gridY());
        assertEquals(2, LaunchGeometry.rowsQuantized(1, 129).gridX());
    }

    @Test
    void rowwiseUsesWholeWarpsUpTo256Threads() {
        assertEquals(32, LaunchGeometry.rowwise(5, 1).blockX());
        assertEquals(64, LaunchGeometry.rowwise(5, 33).blockX());
        assertEquals(256, LaunchGeometry.rowwise(5, 4096).blockX());
        assertEquals(5, LaunchGeometry.rowwise(5, 4096).gridX());
        assertEquals(65535, LaunchGeometry.rowwise(100_000, 8).gridX());
        for (int cols = 1; cols < 2000; cols += 37) {
            assertEquals(0, LaunchGeometry.rowwise(1, cols).blockX() % 32);
        }
    }

    @Test
    void matvecPutsFourFeaturesInABlockAndEightRowsInAChunk() {
        Launch decode = LaunchGeometry.matvec(1, 4096);
        assertEquals(128, decode.blockX());
        assertEquals(1024, decode.gridX());
        assertEquals(1, decode.gridY());
        Launch batch = LaunchGeometry.matvec(17, 5);
        assertEquals(2, batch.gridX());
        assertEquals(3, batch.gridY()); // rows 0-7, 8-15, 16
        assertEquals(65535, LaunchGeometry.matvec(10_000_000, 1).gridY());
    }

    @Test
    void ropeUsesOneBlockPerHeadRow() {
        Launch l = LaunchGeometry.rope(5, 8, 128);
        assertEquals(40, l.gridX());
        assertEquals(64, l.blockX());
        assertEquals(32, LaunchGeometry.rope(1, 1, 2).blockX());
        assertEquals(128, LaunchGeometry.rope(1, 1, 512).blockX());
    }

    @Test
    void attentionGroupsTheHeadsOfOneKvHeadIntoABlock() {
        // Llama-3-8B-like decode: 32 heads, 8 KV heads, head size 128, one row, short context.
        LaunchGeometry.AttentionPlan p = LaunchGeometry.attention(1, 32, 8, 128, 100, 108, 16);
        assertEquals(4, p.headsPerBlock());
        assertEquals(8, p.launch().gridX());
        assertEquals(1, p.launch().gridY());
        assertEquals(1, p.splits());
        assertEquals(128, p.launch().blockX());
        assertEquals(4 * (4 * 128 + 32 * 129 + 4 * 32 + 3 * 4), p.launch().sharedBytes());
        assertTrue(p.headsPerBlock() * 128 <= LaunchGeometry.ATTENTION_THREADS * LaunchGeometry.ATTENTION_ACC);
    }

    @Test
    void attentionSplitsLongDecodeRowsWhenTheGridIsSmall() {
        LaunchGeometry.AttentionPlan p = LaunchGeometry.attention(1, 32, 8, 128, 4000, 108, 16);
        assertEquals(8, p.launch().gridX());
        assertEquals(p.splits(), p.launch().gridZ());
        assertEquals(16, p.splits()); // min(16, ceil(216 / 8) = 27, ceil(4000 / 256) = 16)
        assertEquals(1L * 32 * 16 * 130, p.partialFloats(1, 32, 128));
        // A prefill fills the device: no split.
        assertEquals(1, LaunchGeometry.attention(512, 32, 8, 128, 4000, 108, 16).splits());
        // Splitting can be disabled.
        assertEquals(1, LaunchGeometry.attention(1, 32, 8, 128, 4000, 108, 1).splits());
        // Short contexts are not split.
        assertEquals(1, LaunchGeometry.attention(1, 32, 8, 128, 300, 108, 16).splits());
    }

    @Test
    void attentionFitsSharedMemoryForLargeHeadsAndRejectsTooLargeOnes() {
        LaunchGeometry.AttentionPlan p = LaunchGeometry.attention(1, 16, 2, 256, 10, 108, 16);
        assertTrue(p.launch().sharedBytes() <= Launch.MAX_SHARED_BYTES);
        assertEquals(8, p.headsPerBlock());
        LaunchGeometry.AttentionPlan mqa = LaunchGeometry.attention(3, 64, 1, 64, 10, 108, 16);
        assertEquals(32, mqa.headsPerBlock());
        assertEquals(2, mqa.launch().gridX());
        assertEquals(3, mqa.launch().gridY());
        assertThrows(IllegalArgumentException.class, () -> LaunchGeometry.attention(1, 2, 1, 512, 10, 108, 16));
        assertThrows(IllegalArgumentException.class, () -> LaunchGeometry.attention(1, 6, 4, 64, 10, 108, 16));
    }

    @Test
    void attentionHeadGroupsCoverEveryHeadOnce() {
        for (int heads : new int[] {1, 2, 6, 8, 12, 40, 64}) {
            for (int kv : new int[] {1, 2, 4, 8}) {
                if (heads % kv != 0) {
                    continue;
                }
                for (int hd : new int[] {64, 80, 128, 256}) {
                    LaunchGeometry.AttentionPlan p = LaunchGeometry.attention(1, heads, kv, hd, 10, 108, 16);
                    int group = heads / kv;
                    int groups = (group + p.headsPerBlock() - 1) / p.headsPerBlock();
                    assertEquals(kv * groups, p.launch().gridX());
                    // The kernel's mapping: block x -> heads [h0, h0 + nh) of KV head x / groups.
                    boolean[] seen = new boolean[heads];
                    for (int bx = 0; bx < p.launch().gridX(); bx++) {
                        int kvh = bx / groups;
                        int h0 = kvh * group + (bx % groups) * p.headsPerBlock();
                        int nh = Math.min(p.headsPerBlock(), kvh * group + group - h0);
                        for (int h = h0; h < h0 + nh; h++) {
                            assertTrue(!seen[h] && h / group == kvh, "head " + h);
                            seen[h] = true;
                        }
                    }
                    for (boolean s : seen) {
                        assertTrue(s);
                    }
                }
            }
        }
    }
}
