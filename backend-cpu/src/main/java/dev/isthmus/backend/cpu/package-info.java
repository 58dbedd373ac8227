/**
 * The {@code cpu} backend: the operator SPI in pure Java on the Vector API over off-heap memory.
 *
 * <p>{@link dev.isthmus.backend.cpu.CpuBackendProvider} is the ServiceLoader entry point and
 * {@link dev.isthmus.backend.cpu.CpuBackend} delegates each operator to a class of
 * {@code dev.isthmus.backend.cpu.ops}; weight formats live in {@code .format}, shared vector building
 * blocks in {@code .kernel}, threading in {@code .parallel} and allocation in {@code .memory}.
 */
package dev.isthmus.backend.cpu;
