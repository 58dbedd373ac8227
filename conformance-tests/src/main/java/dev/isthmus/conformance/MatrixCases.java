package dev.isthmus.conformance;

import dev.isthmus.api.DType;
import dev.isthmus.api.Op;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.discovery.Capabilities;
import dev.isthmus.conformance.Workspace.Access;
import dev.isthmus.conformance.reference.Dequant;
import dev.isthmus.conformance.reference.ReferenceOps;

import java.util.List;

/**
 * MATMUL (also through the fused entry points: several weights of one x, and SwiGLU gate/up), DEQUANTIZE and
 * EMBEDDING_LOOKUP over every weight dtype.
 */
final class MatrixCases {
    private MatrixCases() {
    }

    static void addTo(CaseList list) {
        for (DType t : Capabilities.matrix().get(Op.MATMUL)) {
            matmul(list, t);
        }
        for (DType t : Capabilities.matrix().get(Op.DEQUANTIZE)) {
            dequantize(list, t);
        }
        for (DType t : Capabilities.matrix().get(Op.EMBEDDING_LOOKUP)) {
            embedding(list, t);
        }
    }

    // ---- MATMUL -----------------------------------------------------------------------------------

    private static void matmul(CaseList list, DType t) {
        int b = t.blockSize();
        int[][] shapes; // {n, m, k}
        if (b == 1) {
            shapes = new int[][] {{1, 1, 1}, {2, 3, 3}, {1, 7, 17}, {7, 33, 33}, {16, 17, 64}, {2, 67, 130},
                    {1, 129, 256}, {16, 63, 1000}};
        } else if (b == 32) {
            shapes = new int[][] {{1, 1, 32}, {2, 7, 32}, {7, 33, 96}, {16, 17, 256}, {1, 65, 1024}, {16, 31, 160}};
        } else {
            shapes = new int[][] {{1, 1, 256}, {2, 7, 256}, {7, 33, 512}, {16, 17, 768}, {1, 64, 1024}};
        }
        for (int[] s : shapes) {
            list.add(Op.MATMUL, t, "n" + s[0] + "_m" + s[1] + "_k" + s[2],
                    matmulBody(t, new long[] {s[0]}, s[1], s[2], false));
        }
        int k = b == 1 ? 33 : 2 * b;
        // x, w and out as row ranges of larger tensors (w like one part of a fused QKV weight).
        list.add(Op.MATMUL, t, "view_n5_m9_k" + k, matmulBody(t, new long[] {5}, 9, k, true));
        // x as [2, 3, k]: six rows seen through Tensor.rows().
        list.add(Op.MATMUL, t, "x3d_2x3_m11_k" + k, matmulBody(t, new long[] {2, 3}, 11, k, false));
        // the fused entry points: Q, K, V of one x (decode and batch), SwiGLU gate/up (decode and batch)
        int kf = b == 1 ? 40 : b == 32 ? 96 : 512;
        for (int n : new int[] {1, 7}) {
            list.add(Op.MATMUL, t, "qkv_n" + n + "_m48+16+16_k" + kf, matmulAllBody(t, n, new int[] {48, 16, 16}, kf));
            list.add(Op.MATMUL, t, "swiglu_n" + n + "_m70_k" + kf, matmulSwigluBody(t, n, 70, kf));
        }
    }

    private static CaseBody matmulAllBody(DType t, int n, int[] ms, int k) {
        return (ws, r) -> {
            float[] xf = Data.uniform(r, n * k, -1, 1);
            Tensor x = ws.input("x", DType.F32, Data.f32(xf), n, k);
            Tensor[] weights = new Tensor[ms.length];
            Tensor[] outs = new Tensor[ms.length];
            double[][][] refs = new double[ms.length][][];
            int total = 0;
            for (int i = 0; i < ms.length; i++) {
                byte[] wb = Data.randomWeights(t, r, ms[i], k);
                refs[i] = ReferenceOps.matmul(Data.rows(xf, k), Dequant.matrix(t, wb, 0, ms[i], k));
                weights[i] = ws.input("w" + i, t, wb, ms[i], k);
                outs[i] = ws.output("out" + i, DType.F32, n, ms[i]);
                total += ms[i];
            }
            ws.backend().matmul(x, weights, outs);
            ws.verify();
            double[] expected = new double[n * total];
            double[] actual = new double[n * total];
            int col = 0;
            for (int i = 0; i < ms.length; i++) {
                double[] got = ws.read(outs[i]);
                for (int j = 0; j < n; j++) {
                    for (int c = 0; c < ms[i]; c++) {
                        expected[j * total + col + c] = refs[i][j][c];
                        actual[j * total + col + c] = got[j * ms[i] + c];
                    }
                }
                col += ms[i];
            }
            return Outcome.compare("[out0 out1 out2]", expected, actual, total);
        };
    }

    private static CaseBody matmulSwigluBody(DType t, int n, int m, int k) {
        return (ws, r) -> {
            float[] xf = Data.uniform(r, n * k, -1, 1);
            byte[] gb = Data.randomWeights(t, r, m, k);
            byte[] ub = Data.randomWeights(t, r, m, k);
            double[][] ref = ReferenceOps.swiglu(ReferenceOps.matmul(Data.rows(xf, k), Dequant.matrix(t, gb, 0, m, k)),
                    ReferenceOps.matmul(Data.rows(xf, k), Dequant.matrix(t, ub, 0, m, k)));
            Tensor x = ws.input("x", DType.F32, Data.f32(xf), n, k);
            Tensor gate = ws.input("gate", t, gb, m, k);
            Tensor up = ws.input("up", t, ub, m, k);
            Tensor out = ws.output("out", DType.F32, n, m);
            Tensor upOut = ws.output("upOut", DType.F32, n, m);
            ws.backend().matmulSwiglu(x, gate, up, out, upOut);
            ws.verify();
            return Outcome.compare("out", Data.flatten(ref), ws.read(out), m);
        };
    }

    private static CaseBody matmulBody(DType t, long[] lead, int m, int k, boolean views) {
        return (ws, r) -> {
            int n = Math.toIntExact(Data.product(lead, 0, lead.length));
            float[] xf = Data.uniform(r, n * k, -1, 1);
            byte[] wb = Data.randomWeights(t, r, m, k);
            double[][] ref = ReferenceOps.matmul(Data.rows(xf, k), Dequant.matrix(t, wb, 0, m, k));

            Tensor x;
            Tensor w;
            Tensor out;
            if (views) {
                float[] xParent = Data.uniform(r, (n + 5) * k, -1, 1);
                System.arraycopy(xf, 0, xParent, 3 * k, n * k);
                byte[] wParent = Data.randomWeights(t, r, m + 4, k);
                int rowBytes = Math.toIntExact(t.rowBytes(k));
                System.arraycopy(wb, 0, wParent, 2 * rowBytes, wb.length);
                x = ws.view("x", Access.INPUT, DType.F32, Data.f32(xParent), new long[] {n + 5, k}, 3, n);
                w = ws.view("w", Access.INPUT, t, wParent, new long[] {m + 4, k}, 2, m);
                out = ws.view("out", Access.OUTPUT, DType.F32, Data.f32(Data.uniform(r, (n + 3) * m, -1, 1)),
                        new long[] {n + 3, m}, 1, n);
            } else {
                x = ws.input("x", DType.F32, Data.f32(xf), append(lead, k));
                w = ws.input("w", t, wb, m, k);
                out = ws.output("out", DType.F32, append(lead, m));
            }
            ws.backend().matmul(x, w, out);
            ws.verify();
            return Outcome.compare("out", Data.flatten(ref), ws.read(out), m);
        };
    }

    // ---- DEQUANTIZE -------------------------------------------------------------------------------

    private static void dequantize(CaseList list, DType t) {
        int b = t.blockSize();
        List<long[]> shapes = b == 1
                ? List.of(new long[] {1, 1}, new long[] {5, 33}, new long[] {2, 3, 17}, new long[] {3, 1024})
                : List.of(new long[] {1, b}, new long[] {5, 3L * b}, new long[] {2, 3, 2L * b}, new long[] {3, 16L * b});
        for (long[] shape : shapes) {
            list.add(Op.DEQUANTIZE, t, shapeName(shape), dequantizeBody(t, shape, false));
        }
        long cols = b == 1 ? 64 : 2L * b;
        list.add(Op.DEQUANTIZE, t, "view_rows2to5_of_8x" + cols, dequantizeBody(t, new long[] {8, cols}, true));
    }

    private static CaseBody dequantizeBody(DType t, long[] shape, boolean view) {
        return (ws, r) -> {
            int cols = Math.toIntExact(shape[shape.length - 1]);
            int rows = Math.toIntExact(Data.product(shape, 0, shape.length - 1));
            byte[] src = Data.randomWeights(t, r, rows, cols);
            double[][] all = Dequant.matrix(t, src, 0, rows, cols);
            Tensor in;
            Tensor out;
            double[] expected;
            if (view) {
                in = ws.view("src", Access.INPUT, t, src, shape, 2, 3);
                out = ws.view("dst", Access.OUTPUT, DType.F32, Data.f32(Data.uniform(r, 6 * cols, -1, 1)),
                        new long[] {6, cols}, 1, 3);
                expected = Data.flatten(new double[][] {all[2], all[3], all[4]});
            } else {
                in = ws.input("src", t, src, shape);
                out = ws.output("dst", DType.F32, shape);
                expected = Data.flatten(all);
            }
            ws.backend().dequantize(in, out);
            ws.verify();
            return Outcome.compare("dst", expected, ws.read(out), cols);
        };
    }

    // ---- EMBEDDING_LOOKUP -------------------------------------------------------------------------

    private static void embedding(CaseList list, DType t) {
        int b = t.blockSize();
        int vocab = 50;
        int[] dims = b == 1 ? new int[] {3, 33, 128} : new int[] {b, 3 * b, 2 * b};
        int[][] ids = {{0}, {49, 0, 7, 7, 3, 49, 12}, null};
        String[] idNames = {"ids1", "ids7_repeats", "ids16_random"};
        for (int i = 0; i < dims.length; i++) {
            list.add(Op.EMBEDDING_LOOKUP, t, "v" + vocab + "_d" + dims[i] + "_" + idNames[i],
                    embeddingBody(t, vocab, dims[i], ids[i], false));
        }
        list.add(Op.EMBEDDING_LOOKUP, t, "view_out_v" + vocab + "_d" + dims[1],
                embeddingBody(t, vocab, dims[1], new int[] {5, 5, 48, 1}, true));
    }

    private static CaseBody embeddingBody(DType t, int vocab, int dim, int[] fixedIds, boolean view) {
        return (ws, r) -> {
            int[] ids = fixedIds;
            if (ids == null) {
                ids = new int[16];
                for (int i = 0; i < ids.length; i++) {
                    ids[i] = r.nextInt(vocab);
                }
            }
            byte[] table = Data.randomWeights(t, r, vocab, dim);
            double[][] ref = ReferenceOps.embeddingLookup(Dequant.matrix(t, table, 0, vocab, dim), ids);
            Tensor tt = ws.input("table", t, table, vocab, dim);
            Tensor out = view
                    ? ws.view("out", Access.OUTPUT, DType.F32, Data.f32(Data.uniform(r, (ids.length + 4) * dim, -1, 1)),
                    new long[] {ids.length + 4, dim}, 2, ids.length)
                    : ws.output("out", DType.F32, ids.length, dim);
            ws.backend().embeddingLookup(tt, ids.clone(), out);
            ws.verify();
            return Outcome.compare("out", Data.flatten(ref), ws.read(out), dim);
        };
    }

    // ---- helpers ----------------------------------------------------------------------------------

    static long[] append(long[] lead, long last) {
        long[] s = new long[lead.length + 1];
        System.arraycopy(lead, 0, s, 0, lead.length);
        s[lead.length] = last;
        return s;
    }

    static String shapeName(long[] shape) {
        StringBuilder sb = new StringBuilder();
        for (long d : shape) {
            if (!sb.isEmpty()) {
                sb.append('x');
            }
            sb.append(d);
        }
        return sb.toString();
    }
}
