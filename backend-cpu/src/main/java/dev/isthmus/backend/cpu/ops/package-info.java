/**
 * One class per operator (or family of element-wise operators): argument validation with messages that
 * name the op, operand and shapes, then a parallel loop over rows calling the kernels.
 */
package dev.isthmus.backend.cpu.ops;
