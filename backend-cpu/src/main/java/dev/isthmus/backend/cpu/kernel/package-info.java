/** Vector species selection, little-endian access, half-float conversion and F32 dot/axpy kernels. */
package dev.isthmus.backend.cpu.kernel;
