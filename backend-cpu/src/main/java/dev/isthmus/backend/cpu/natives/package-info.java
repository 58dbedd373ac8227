/**
 * The C kernels of {@code native/cpu} (AVX-512 VNNI int8 matmul, F16C, flash attention) behind FFM downcalls,
 * selected at run time by CPU features, with the Java Vector API kernels as the fallback.
 */
package dev.isthmus.backend.cpu.natives;
