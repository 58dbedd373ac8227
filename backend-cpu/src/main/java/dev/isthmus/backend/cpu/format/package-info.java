/**
 * One {@link dev.isthmus.backend.cpu.format.WeightFormat} per weight dtype (the exact ggml block layouts),
 * each providing row dequantization and a fused dot product, so formats can be optimised one at a time.
 *
 * <p>Kernel code keeps every vector inside one method: a vector passed to or returned from a method the
 * JIT declines to inline is boxed, which costs an order of magnitude.
 */
package dev.isthmus.backend.cpu.format;
