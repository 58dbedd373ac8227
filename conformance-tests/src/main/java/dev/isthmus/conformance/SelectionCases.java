package dev.isthmus.conformance;

import dev.isthmus.api.DType;
import dev.isthmus.api.Op;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.TopK;
import dev.isthmus.conformance.Workspace.Access;
import dev.isthmus.conformance.reference.ReferenceOps;

import java.util.Locale;
import java.util.SplittableRandom;

/** ARGMAX and TOP_K: exact indices (lowest index first on ties). */
final class SelectionCases {
    private SelectionCases() {
    }

    /** How a case's values are made. */
    enum Values {
        /** Uniform in [-10, 10]. */
        RANDOM,
        /** Small integers, so that most values repeat (ties everywhere). */
        TIES,
        /** Every value of a row equal. */
        CONSTANT,
        /** All negative, in [-10, -1]. */
        NEGATIVE
    }

    static void addTo(CaseList list) {
        Object[][] argmax = { // rows, cols, values, view
                {1, 1, Values.RANDOM, false},
                {3, 3, Values.RANDOM, false},
                {7, 17, Values.RANDOM, false},
                {2, 33, Values.RANDOM, false},
                {4, 1000, Values.RANDOM, false},
                {1, 32000, Values.RANDOM, false},
                {5, 64, Values.TIES, false},
                {3, 17, Values.CONSTANT, false},
                {4, 33, Values.NEGATIVE, false},
                {3, 100, Values.RANDOM, true},
        };
        for (Object[] c : argmax) {
            int rows = (int) c[0];
            int cols = (int) c[1];
            Values values = (Values) c[2];
            boolean view = (boolean) c[3];
            list.add(Op.ARGMAX, DType.F32, name(rows, cols, values, view), (ws, r) -> {
                float[] x = make(values, r, rows * cols);
                int[] expected = ReferenceOps.argmax(Data.rows(x, cols));
                Tensor t = place(ws, x, rows, cols, view, r);
                int[] actual = ws.backend().argmax(t);
                ws.verify();
                return Outcome.exact("argmax", expected, actual);
            });
        }

        Object[][] topK = { // rows, cols, k, values, view
                {1, 1, 1, Values.RANDOM, false},
                {3, 17, 1, Values.RANDOM, false},
                {2, 33, 5, Values.RANDOM, false},
                {4, 1000, 40, Values.RANDOM, false},
                {1, 32000, 40, Values.RANDOM, false},
                {3, 64, 8, Values.TIES, false},
                {5, 7, 7, Values.RANDOM, false},
                {2, 20, 4, Values.CONSTANT, false},
                {3, 100, 10, Values.RANDOM, true},
        };
        for (Object[] c : topK) {
            int rows = (int) c[0];
            int cols = (int) c[1];
            int k = (int) c[2];
            Values values = (Values) c[3];
            boolean view = (boolean) c[4];
            list.add(Op.TOP_K, DType.F32, name(rows, cols, values, view) + "_k" + k, (ws, r) -> {
                float[] x = make(values, r, rows * cols);
                double[][] xd = Data.rows(x, cols);
                int[][] expected = ReferenceOps.topKIndices(xd, k);
                Tensor t = place(ws, x, rows, cols, view, r);
                TopK actual = ws.backend().topK(t, k);
                ws.verify();
                if (actual == null || actual.indices() == null || actual.values() == null) {
                    return Outcome.fail("topK returned null");
                }
                if (actual.indices().length != rows || actual.values().length != rows) {
                    return Outcome.fail("topK returned " + actual.indices().length + " index rows and "
                            + actual.values().length + " value rows for " + rows + " rows");
                }
                Outcome o = Outcome.exactMatch();
                double[] expectedValues = new double[rows * k];
                double[] actualValues = new double[rows * k];
                for (int row = 0; row < rows; row++) {
                    o = o.and(Outcome.exact("indices of row " + row, expected[row], actual.indices()[row]));
                    if (actual.values()[row] == null || actual.values()[row].length != k) {
                        return Outcome.fail("values of row " + row + " do not have " + k + " entries");
                    }
                    for (int i = 0; i < k; i++) {
                        expectedValues[row * k + i] = xd[row][expected[row][i]];
                        actualValues[row * k + i] = actual.values()[row][i];
                    }
                }
                return o.and(Outcome.compare("values", expectedValues, actualValues, k));
            });
        }
    }

    private static String name(int rows, int cols, Values values, boolean view) {
        String s = rows + "x" + cols;
        if (values != Values.RANDOM) {
            s += "_" + values.name().toLowerCase(Locale.ROOT);
        }
        return view ? s + "_view" : s;
    }

    private static float[] make(Values values, SplittableRandom r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = switch (values) {
                case RANDOM -> (float) (20 * r.nextDouble() - 10);
                case TIES -> r.nextInt(5);
                case CONSTANT -> 2.5f;
                case NEGATIVE -> (float) (-1 - 9 * r.nextDouble());
            };
        }
        return x;
    }

    private static Tensor place(Workspace ws, float[] x, int rows, int cols, boolean view, SplittableRandom r) {
        if (!view) {
            return ws.input("x", DType.F32, Data.f32(x), rows, cols);
        }
        float[] parent = Data.uniform(r, (rows + 4) * cols, 20, 30); // larger than every value of the view
        System.arraycopy(x, 0, parent, 2 * cols, x.length);
        return ws.view("x", Access.INPUT, DType.F32, Data.f32(parent), new long[] {rows + 4, cols}, 2, rows);
    }
}
