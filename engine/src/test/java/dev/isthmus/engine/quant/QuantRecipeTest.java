package dev.isthmus.engine.quant;

import dev.isthmus.api.DType;
import dev.isthmus.engine.synth.SyntheticModel;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.function.Function;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The per-tensor types of each recipe, against llama.cpp's llama_tensor_get_type for Llama models. */
class QuantRecipeTest {
    private static Map<String, QuantRecipe.Choice> plan(String recipe, SyntheticModel.Shape shape) {
        return QuantRecipe.named(recipe).plan(new SyntheticModel(shape, 1).tensors()).stream()
                .collect(Collectors.toMap(c -> c.tensor().name(), Function.identity()));
    }

    private static TreeSet<Integer> layersWith(Map<String, QuantRecipe.Choice> plan, String tensor, DType type) {
        return plan.values().stream()
                .filter(c -> c.tensor().name().endsWith(tensor) && c.type() == type)
                .map(c -> Integer.parseInt(c.tensor().name().split("\\.")[1]))
                .collect(Collectors.toCollection(TreeSet::new));
    }

    /**
     * Llama 3.2 1B (16 layers, tied embeddings) as Q4_K_M: use_more_bits(i, 16) picks layers 0, 1 (first
     * eighth), 14, 15 (last eighth) and 4, 7, 10, 13 ((i - 2) % 3 == 2) for attn_v and ffn_down; the tied
     * token_embd is the output matrix, so it gets Q6_K.
     */
    @Test
    void q4KMOnLlama32() {
        Map<String, QuantRecipe.Choice> p = plan("Q4_K_M", SyntheticModel.Shape.LLAMA_3_2_1B);
        TreeSet<Integer> more = new TreeSet<>(List.of(0, 1, 4, 7, 10, 13, 14, 15));
        assertEquals(more, layersWith(p, "attn_v.weight", DType.Q6_K));
        assertEquals(more, layersWith(p, "ffn_down.weight", DType.Q6_K));
        assertEquals(DType.Q6_K, p.get("token_embd.weight").type());
        assertEquals(DType.F32, p.get("output_norm.weight").type());
        assertFalse(p.get("output_norm.weight").converts());
        for (QuantRecipe.Choice c : p.values()) {
            String n = c.tensor().name();
            if (n.contains("norm")) {
                assertEquals(DType.F32, c.type(), n);
            } else if (!n.contains("attn_v") && !n.contains("ffn_down") && !n.equals("token_embd.weight")) {
                assertEquals(DType.Q4_K, c.type(), n);
            }
            assertFalse(c.fellBack(), n);
        }
    }

    /** TinyLlama (22 layers, separate output) as Q4_K_M: output Q6_K, token_embd stays Q4_K. */
    @Test
    void q4KMOnTinyLlama() {
        Map<String, QuantRecipe.Choice> p = plan("Q4_K_M", SyntheticModel.Shape.TINYLLAMA_1_1B);
        TreeSet<Integer> more = new TreeSet<>(List.of(0, 1, 4, 7, 10, 13, 16, 19, 20, 21));
        assertEquals(more, layersWith(p, "attn_v.weight", DType.Q6_K));
        assertEquals(more, layersWith(p, "ffn_down.weight", DType.Q6_K));
        assertEquals(DType.Q6_K, p.get("output.weight").type());
        assertEquals(DType.Q4_K, p.get("token_embd.weight").type());
        assertEquals(DType.Q4_K, p.get("blk.2.attn_v.weight").type());
        assertEquals(DType.Q4_K, p.get("blk.0.attn_k.weight").type());
    }

    @Test
    void q5KMUsesQ5KAsBase() {
        Map<String, QuantRecipe.Choice> p = plan("Q5_K_M", SyntheticModel.Shape.TINYLLAMA_1_1B);
        assertEquals(DType.Q6_K, p.get("output.weight").type());
        assertEquals(DType.Q5_K, p.get("token_embd.weight").type());
        assertEquals(DType.Q6_K, p.get("blk.0.ffn_down.weight").type());
        assertEquals(DType.Q5_K, p.get("blk.2.ffn_down.weight").type());
        assertEquals(DType.Q5_K, p.get("blk.2.ffn_up.weight").type());
    }

    /** Single types are pure: embeddings and output too, norms stay as they are. */
    @Test
    void singleTypesArePure() {
        for (String name : List.of("Q4_0", "Q8_0", "Q6_K", "F16", "BF16")) {
            DType t = QuantRecipe.named(name).baseType();
            for (QuantRecipe.Choice c : plan(name, SyntheticModel.Shape.TINYLLAMA_1_1B).values()) {
                assertEquals(c.tensor().shape().length == 1 ? DType.F32 : t, c.type(), name + " " + c.tensor().name());
            }
        }
    }

    /** Rows of 64 (stories260K): K-quants fall back as llama.cpp's tensor_type_fallback; 48 is not a multiple of 32. */
    @Test
    void fallbacksForRowsBlocksDoNotDivide() {
        assertEquals(DType.Q4_0, QuantRecipe.fit(DType.Q2_K, 64));
        assertEquals(DType.Q4_0, QuantRecipe.fit(DType.Q3_K, 64));
        assertEquals(DType.Q5_0, QuantRecipe.fit(DType.Q4_K, 64));
        assertEquals(DType.Q5_1, QuantRecipe.fit(DType.Q5_K, 64));
        assertEquals(DType.Q8_0, QuantRecipe.fit(DType.Q6_K, 64));
        assertEquals(DType.F16, QuantRecipe.fit(DType.Q4_K, 48));
        assertEquals(DType.F16, QuantRecipe.fit(DType.Q8_0, 48));
        assertEquals(DType.Q4_K, QuantRecipe.fit(DType.Q4_K, 512));

        List<QuantRecipe.Tensor> small = List.of(
                new QuantRecipe.Tensor("token_embd.weight", new long[] {512, 64}, DType.F32),
                new QuantRecipe.Tensor("blk.0.attn_v.weight", new long[] {64, 64}, DType.F32),
                new QuantRecipe.Tensor("blk.0.ffn_up.weight", new long[] {172, 64}, DType.F32),
                new QuantRecipe.Tensor("blk.0.attn_norm.weight", new long[] {64}, DType.F32));
        Map<String, QuantRecipe.Choice> p = QuantRecipe.named("Q4_K_M").plan(small).stream()
                .collect(Collectors.toMap(c -> c.tensor().name(), Function.identity()));
        // tied: token_embd is the output; a mixture's output goes straight to Q8_0 when Q6_K does not fit
        assertEquals(DType.Q8_0, p.get("token_embd.weight").type());
        assertEquals(DType.Q8_0, p.get("blk.0.attn_v.weight").type()); // layer 0 wants Q6_K
        assertTrue(p.get("blk.0.attn_v.weight").fellBack());
        assertEquals(DType.Q5_0, p.get("blk.0.ffn_up.weight").type());
        assertEquals(DType.Q4_K, p.get("blk.0.ffn_up.weight").wanted());
        assertEquals(DType.F32, p.get("blk.0.attn_norm.weight").type());
    }

    @Test
    void namesAndFileTypesAreLlamaCpps() {
        assertEquals(List.of("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
                "Q6_K", "Q4_K_M", "Q5_K_M"), QuantRecipe.names());
        Map<String, Integer> ftype = Map.ofEntries(Map.entry("F32", 0), Map.entry("F16", 1), Map.entry("Q4_0", 2),
                Map.entry("Q4_1", 3), Map.entry("Q8_0", 7), Map.entry("Q5_0", 8), Map.entry("Q5_1", 9),
                Map.entry("Q2_K", 10), Map.entry("Q3_K", 11), Map.entry("Q4_K", 14), Map.entry("Q4_K_M", 15),
                Map.entry("Q5_K", 16), Map.entry("Q5_K_M", 17), Map.entry("Q6_K", 18), Map.entry("BF16", 32));
        ftype.forEach((n, v) -> assertEquals(v, QuantRecipe.named(n).fileType(), n));
        assertEquals("Q4_K_M", QuantRecipe.named("q4_k_m").name());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> QuantRecipe.named("Q9_0"));
        assertTrue(e.getMessage().contains("unknown type 'Q9_0'") && e.getMessage().contains("Q4_K_M"), e.getMessage());
    }

    @Test
    void useMoreBitsMatchesLlamaCpp() {
        // n = 32 (Llama 2 7B): 0-3, 28-31 and every third from 6
        List<Integer> picked = new java.util.ArrayList<>();
        for (int i = 0; i < 32; i++) {
            if (QuantRecipe.useMoreBits(i, 32)) {
                picked.add(i);
            }
        }
        assertEquals(List.of(0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31), picked);
    }
}
