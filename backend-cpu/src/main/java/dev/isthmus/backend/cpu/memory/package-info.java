/** Off-heap tensor allocation, one shared arena per tensor so that each can be freed on its own. */
package dev.isthmus.backend.cpu.memory;
