package dev.isthmus.api;

/**
 * The {@code k} largest values of each row, largest first (ties: lower index first).
 *
 * @param indices per row, the column indices
 * @param values  per row, the values at those indices
 */
public record TopK(int[][] indices, float[][] values) {
}
