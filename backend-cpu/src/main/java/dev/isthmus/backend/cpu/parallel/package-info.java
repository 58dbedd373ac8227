/** The worker pool's parallel-for and per-thread scratch buffers. */
package dev.isthmus.backend.cpu.parallel;
