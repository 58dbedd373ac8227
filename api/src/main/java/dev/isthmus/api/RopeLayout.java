package dev.isthmus.api;

/** How rotary embedding pairs up the dimensions of a head. */
public enum RopeLayout {
    /** Adjacent pairs {@code (x[2i], x[2i+1])}, as in the original RoPE paper and Llama. */
    NORMAL,
    /** Split halves {@code (x[i], x[i + d/2])}, as GPT-NeoX, Falcon, Qwen2 (HF layout) and Phi use. */
    NEOX
}
