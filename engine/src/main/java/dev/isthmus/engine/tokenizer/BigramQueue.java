package dev.isthmus.engine.tokenizer;

import java.util.Arrays;

/**
 * The work queue of candidate merges of adjacent symbols: lowest key first, ties broken by the
 * leftmost position, which is the order both llama.cpp tokenizers merge in. Entries are never
 * removed early; the tokenizers skip the ones that went stale when a neighbour was merged.
 */
final class BigramQueue {
    private double[] keys;
    private int[] lefts;
    private int[] rights;
    private int[] sizes;
    private int[] heap;
    private int entries;
    private int heapSize;

    BigramQueue(int capacity) {
        capacity = Math.max(capacity, 8);
        keys = new double[capacity];
        lefts = new int[capacity];
        rights = new int[capacity];
        sizes = new int[capacity];
        heap = new int[capacity];
    }

    boolean isEmpty() {
        return heapSize == 0;
    }

    void push(double key, int left, int right, int size) {
        if (entries == keys.length) {
            int capacity = entries * 2;
            keys = Arrays.copyOf(keys, capacity);
            lefts = Arrays.copyOf(lefts, capacity);
            rights = Arrays.copyOf(rights, capacity);
            sizes = Arrays.copyOf(sizes, capacity);
            heap = Arrays.copyOf(heap, capacity);
        }
        int entry = entries++;
        keys[entry] = key;
        lefts[entry] = left;
        rights[entry] = right;
        sizes[entry] = size;
        int i = heapSize++;
        while (i > 0) {
            int parent = (i - 1) >>> 1;
            if (!before(entry, heap[parent])) {
                break;
            }
            heap[i] = heap[parent];
            i = parent;
        }
        heap[i] = entry;
    }

    /** Removes the first entry and returns its handle for {@link #key}, {@link #left}, {@link #right}, {@link #size}. */
    int pop() {
        int top = heap[0];
        int last = heap[--heapSize];
        int i = 0;
        while (true) {
            int child = 2 * i + 1;
            if (child >= heapSize) {
                break;
            }
            if (child + 1 < heapSize && before(heap[child + 1], heap[child])) {
                child++;
            }
            if (!before(heap[child], last)) {
                break;
            }
            heap[i] = heap[child];
            i = child;
        }
        if (heapSize > 0) {
            heap[i] = last;
        }
        return top;
    }

    double key(int entry) {
        return keys[entry];
    }

    int left(int entry) {
        return lefts[entry];
    }

    int right(int entry) {
        return rights[entry];
    }

    int size(int entry) {
        return sizes[entry];
    }

    private boolean before(int a, int b) {
        return keys[a] < keys[b] || (keys[a] == keys[b] && lefts[a] < lefts[b]);
    }
}
