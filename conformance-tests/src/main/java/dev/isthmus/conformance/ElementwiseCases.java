package dev.isthmus.conformance;

import dev.isthmus.api.DType;
import dev.isthmus.api.Op;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.conformance.Workspace.Access;
import dev.isthmus.conformance.reference.ReferenceOps;

import java.util.SplittableRandom;
import java.util.function.UnaryOperator;

/** RMS_NORM, LAYER_NORM, ADD, MUL, SCALE, SILU, GELU, SWIGLU and SOFTMAX on F32 rows. */
final class ElementwiseCases {
    private ElementwiseCases() {
    }

    /** Where the output is relative to the inputs. */
    enum Layout {
        /** A separate output tensor. */
        SEPARATE,
        /** The output is the (first) input tensor itself. */
        IN_PLACE,
        /** The output is the second input tensor itself (binary ops). */
        IN_PLACE_SECOND,
        /** Inputs and output are row ranges of larger tensors. */
        VIEWS
    }

    @FunctionalInterface
    interface Gen {
        float[] make(SplittableRandom r, int rows, int cols);
    }

    static void addTo(CaseList list) {
        rmsNorm(list);
        layerNorm(list);
        binary(list, Op.ADD);
        binary(list, Op.MUL);
        scale(list);
        activations(list);
        swiglu(list);
        softmax(list);
    }

    // ---- inputs -----------------------------------------------------------------------------------

    static Gen uniform(double lo, double hi) {
        return (r, rows, cols) -> Data.uniform(r, rows * cols, lo, hi);
    }

    /**
     * Rows of very different magnitudes (1, 1e-3, 10, 3e-2, 1e-4, 0.3, ...), so that norms whose eps is
     * wrong or ignored show: for the small rows {@code mean(x²)} is comparable to or below eps. With
     * {@code offset}, each row also gets a mean in [-offset, offset].
     */
    static Gen magnitudes(double offset) {
        double[] amplitudes = {1, 1e-3, 10, 3e-2, 1e-4, 0.3, 3};
        return (r, rows, cols) -> {
            float[] v = new float[rows * cols];
            for (int row = 0; row < rows; row++) {
                double a = amplitudes[row % amplitudes.length];
                double mean = offset * (2 * r.nextDouble() - 1) * a;
                for (int c = 0; c < cols; c++) {
                    v[row * cols + c] = (float) (mean + a * (2 * r.nextDouble() - 1));
                }
            }
            return v;
        };
    }

    // ---- the common shape of a case: x (and more) in, out ----------------------------------------

    /** Creates x and out per the layout; returns {x, out}. */
    private static Tensor[] placeXOut(Workspace ws, float[] xf, long[] shape, Layout layout, SplittableRandom r) {
        int cols = Math.toIntExact(shape[shape.length - 1]);
        int rows = Math.toIntExact(Data.product(shape, 0, shape.length - 1));
        return switch (layout) {
            case SEPARATE -> new Tensor[] {ws.input("x", DType.F32, Data.f32(xf), shape),
                    ws.output("out", DType.F32, shape)};
            case IN_PLACE -> {
                Tensor x = ws.inPlace("x", DType.F32, Data.f32(xf), shape);
                yield new Tensor[] {x, x};
            }
            case VIEWS -> {
                float[] parent = Data.uniform(r, (rows + 3) * cols, -1, 1);
                System.arraycopy(xf, 0, parent, 2 * cols, rows * cols);
                Tensor x = ws.view("x", Access.INPUT, DType.F32, Data.f32(parent), new long[] {rows + 3, cols}, 2, rows);
                Tensor out = ws.view("out", Access.OUTPUT, DType.F32, Data.f32(Data.uniform(r, (rows + 2) * cols, -1, 1)),
                        new long[] {rows + 2, cols}, 1, rows);
                yield new Tensor[] {x, out};
            }
            case IN_PLACE_SECOND -> throw new IllegalArgumentException("unary ops have no second input");
        };
    }

    @FunctionalInterface
    interface UnaryCall {
        void run(Backend b, Tensor x, Tensor out);
    }

    private static CaseBody unary(long[] shape, Gen gen, Layout layout, UnaryCall call,
                                  UnaryOperator<double[][]> reference) {
        return (ws, r) -> {
            int cols = Math.toIntExact(shape[shape.length - 1]);
            int rows = Math.toIntExact(Data.product(shape, 0, shape.length - 1));
            float[] xf = gen.make(r, rows, cols);
            double[][] expected = reference.apply(Data.rows(xf, cols));
            Tensor[] t = placeXOut(ws, xf, layout == Layout.VIEWS ? new long[] {rows, cols} : shape, layout, r);
            call.run(ws.backend(), t[0], t[1]);
            ws.verify();
            return Outcome.compare("out", Data.flatten(expected), ws.read(t[1]), cols);
        };
    }

    private static String name(long[] shape, Layout layout, String extra) {
        String s = MatrixCases.shapeName(shape);
        if (!extra.isEmpty()) {
            s += "_" + extra;
        }
        return switch (layout) {
            case SEPARATE -> s;
            case IN_PLACE -> s + "_inplace";
            case IN_PLACE_SECOND -> s + "_inplace_b";
            case VIEWS -> s + "_views";
        };
    }

    private static long[] s(long... shape) {
        return shape;
    }

    // ---- norms ------------------------------------------------------------------------------------

    private static void rmsNorm(CaseList list) {
        Object[][] cases = { // shape, eps, layout, 1-D weight
                {s(1, 1), 1e-5f, Layout.SEPARATE, true},
                {s(2, 3), 1e-6f, Layout.SEPARATE, false},
                {s(7, 17), 1e-5f, Layout.SEPARATE, true},
                {s(3, 33), 1e-6f, Layout.SEPARATE, true},
                {s(16, 64), 1e-5f, Layout.SEPARATE, false},
                {s(4, 4096), 1e-6f, Layout.SEPARATE, true},
                {s(7, 129), 1e-5f, Layout.IN_PLACE, true},
                {s(2, 3, 33), 1e-6f, Layout.SEPARATE, true},
                {s(5, 64), 1e-6f, Layout.VIEWS, true},
        };
        for (Object[] c : cases) {
            long[] shape = (long[]) c[0];
            float eps = (float) c[1];
            Layout layout = (Layout) c[2];
            boolean oneD = (boolean) c[3];
            list.add(Op.RMS_NORM, DType.F32, name(shape, layout, "eps" + eps + (oneD ? "" : "_w2d")),
                    (ws, r) -> {
                        int cols = Math.toIntExact(shape[shape.length - 1]);
                        int rows = Math.toIntExact(Data.product(shape, 0, shape.length - 1));
                        float[] xf = magnitudes(0).make(r, rows, cols);
                        float[] wf = Data.uniform(r, cols, -2, 2);
                        double[][] expected = ReferenceOps.rmsNorm(Data.rows(xf, cols), Data.toDouble(wf), eps);
                        Tensor w = ws.input("weight", DType.F32, Data.f32(wf), oneD ? s(cols) : s(1, cols));
                        Tensor[] t = placeXOut(ws, xf, layout == Layout.VIEWS ? s(rows, cols) : shape, layout, r);
                        ws.backend().rmsNorm(t[0], w, eps, t[1]);
                        ws.verify();
                        return Outcome.compare("out", Data.flatten(expected), ws.read(t[1]), cols);
                    });
        }
    }

    private static void layerNorm(CaseList list) {
        Object[][] cases = { // shape, weight, bias, layout
                {s(1, 1), true, true, Layout.SEPARATE},
                {s(2, 3), true, true, Layout.SEPARATE},
                {s(7, 17), false, false, Layout.SEPARATE},
                {s(3, 33), true, false, Layout.SEPARATE},
                {s(16, 64), true, true, Layout.SEPARATE},
                {s(4, 1000), true, true, Layout.SEPARATE},
                {s(5, 64), true, true, Layout.IN_PLACE},
                {s(2, 3, 17), false, true, Layout.SEPARATE},
                {s(5, 33), true, true, Layout.VIEWS},
        };
        for (Object[] c : cases) {
            long[] shape = (long[]) c[0];
            boolean hasWeight = (boolean) c[1];
            boolean hasBias = (boolean) c[2];
            Layout layout = (Layout) c[3];
            float eps = 1e-5f;
            String extra = (hasWeight ? "w" : "nullw") + "_" + (hasBias ? "b" : "nullb");
            list.add(Op.LAYER_NORM, DType.F32, name(shape, layout, extra), (ws, r) -> {
                int cols = Math.toIntExact(shape[shape.length - 1]);
                int rows = Math.toIntExact(Data.product(shape, 0, shape.length - 1));
                float[] xf = magnitudes(3).make(r, rows, cols);
                float[] wf = Data.uniform(r, cols, -2, 2);
                float[] bf = Data.uniform(r, cols, -1, 1);
                double[][] expected = ReferenceOps.layerNorm(Data.rows(xf, cols),
                        hasWeight ? Data.toDouble(wf) : null, hasBias ? Data.toDouble(bf) : null, eps);
                Tensor w = hasWeight ? ws.input("weight", DType.F32, Data.f32(wf), cols) : null;
                Tensor b = hasBias ? ws.input("bias", DType.F32, Data.f32(bf), cols) : null;
                Tensor[] t = placeXOut(ws, xf, layout == Layout.VIEWS ? s(rows, cols) : shape, layout, r);
                ws.backend().layerNorm(t[0], w, b, eps, t[1]);
                ws.verify();
                return Outcome.compare("out", Data.flatten(expected), ws.read(t[1]), cols);
            });
        }
    }

    // ---- add / mul --------------------------------------------------------------------------------

    /** How b is shaped: like a, one row [1, cols], or a vector [cols]. */
    enum Broadcast { FULL, ROW, VECTOR }

    private static void binary(CaseList list, Op op) {
        Object[][] cases = { // shape, broadcast, layout
                {s(1, 1), Broadcast.FULL, Layout.SEPARATE},
                {s(3, 3), Broadcast.FULL, Layout.SEPARATE},
                {s(7, 17), Broadcast.ROW, Layout.SEPARATE},
                {s(2, 33), Broadcast.FULL, Layout.SEPARATE},
                {s(16, 64), Broadcast.VECTOR, Layout.SEPARATE},
                {s(4, 1000), Broadcast.FULL, Layout.SEPARATE},
                {s(7, 33), Broadcast.FULL, Layout.IN_PLACE},
                {s(5, 17), Broadcast.ROW, Layout.IN_PLACE},
                {s(3, 65), Broadcast.FULL, Layout.IN_PLACE_SECOND},
                {s(2, 3, 17), Broadcast.ROW, Layout.SEPARATE},
                {s(2, 3, 17), Broadcast.FULL, Layout.SEPARATE},
                {s(5, 33), Broadcast.VECTOR, Layout.VIEWS},
        };
        for (Object[] c : cases) {
            long[] shape = (long[]) c[0];
            Broadcast bc = (Broadcast) c[1];
            Layout layout = (Layout) c[2];
            String extra = switch (bc) {
                case FULL -> "";
                case ROW -> "brow";
                case VECTOR -> "bvec";
            };
            list.add(op, DType.F32, name(shape, layout, extra), (ws, r) -> {
                int cols = Math.toIntExact(shape[shape.length - 1]);
                int rows = Math.toIntExact(Data.product(shape, 0, shape.length - 1));
                float[] af = Data.uniform(r, rows * cols, -4, 4);
                int bRows = bc == Broadcast.FULL ? rows : 1;
                float[] bf = Data.uniform(r, bRows * cols, -4, 4);
                double[][] a = Data.rows(af, cols);
                double[][] b = Data.rows(bf, cols);
                double[][] expected = op == Op.ADD ? ReferenceOps.add(a, b) : ReferenceOps.mul(a, b);
                long[] bShape = switch (bc) {
                    case FULL -> layout == Layout.VIEWS ? s(rows, cols) : shape;
                    case ROW -> s(1, cols);
                    case VECTOR -> s(cols);
                };
                Tensor at;
                Tensor bt;
                Tensor out;
                switch (layout) {
                    case SEPARATE -> {
                        at = ws.input("a", DType.F32, Data.f32(af), shape);
                        bt = ws.input("b", DType.F32, Data.f32(bf), bShape);
                        out = ws.output("out", DType.F32, shape);
                    }
                    case IN_PLACE -> {
                        at = ws.inPlace("a", DType.F32, Data.f32(af), shape);
                        bt = ws.input("b", DType.F32, Data.f32(bf), bShape);
                        out = at;
                    }
                    case IN_PLACE_SECOND -> {
                        at = ws.input("a", DType.F32, Data.f32(af), shape);
                        bt = ws.inPlace("b", DType.F32, Data.f32(bf), bShape);
                        out = bt;
                    }
                    default -> {
                        Tensor[] t = placeXOut(ws, af, s(rows, cols), Layout.VIEWS, r);
                        at = t[0];
                        out = t[1];
                        bt = ws.input("b", DType.F32, Data.f32(bf), bShape);
                    }
                }
                if (op == Op.ADD) {
                    ws.backend().add(at, bt, out);
                } else {
                    ws.backend().mul(at, bt, out);
                }
                ws.verify();
                return Outcome.compare("out", Data.flatten(expected), ws.read(out), cols);
            });
        }
    }

    // ---- scale, silu, gelu, swiglu, softmax -------------------------------------------------------

    private static void scale(CaseList list) {
        Object[][] cases = { // shape, s, layout
                {s(1, 1), 0.5f, Layout.SEPARATE},
                {s(7, 17), -3.25f, Layout.SEPARATE},
                {s(16, 64), 1e-3f, Layout.SEPARATE},
                {s(3, 1000), 0.125f, Layout.IN_PLACE},
                {s(2, 3, 33), 7.5f, Layout.SEPARATE},
                {s(5, 33), -0.7f, Layout.VIEWS},
        };
        for (Object[] c : cases) {
            long[] shape = (long[]) c[0];
            float factor = (float) c[1];
            Layout layout = (Layout) c[2];
            list.add(Op.SCALE, DType.F32, name(shape, layout, "s" + factor),
                    unary(shape, uniform(-4, 4), layout, (b, x, out) -> b.scale(x, factor, out),
                            x -> ReferenceOps.scale(x, factor)));
        }
    }

    private static void activations(CaseList list) {
        Object[][] cases = { // shape, lo, hi, layout
                {s(1, 1), -1.0, 1.0, Layout.SEPARATE},
                {s(7, 17), -6.0, 6.0, Layout.SEPARATE},
                {s(16, 64), -6.0, 6.0, Layout.SEPARATE},
                {s(3, 1000), -20.0, 20.0, Layout.SEPARATE},
                {s(2, 257), -80.0, 80.0, Layout.SEPARATE},
                {s(5, 33), -6.0, 6.0, Layout.IN_PLACE},
                {s(2, 3, 17), -6.0, 6.0, Layout.SEPARATE},
                {s(4, 33), -6.0, 6.0, Layout.VIEWS},
        };
        for (Op op : new Op[] {Op.SILU, Op.GELU}) {
            for (Object[] c : cases) {
                long[] shape = (long[]) c[0];
                double lo = (double) c[1];
                double hi = (double) c[2];
                Layout layout = (Layout) c[3];
                UnaryCall call = op == Op.SILU ? Backend::silu : Backend::gelu;
                UnaryOperator<double[][]> ref = op == Op.SILU ? ReferenceOps::silu : ReferenceOps::gelu;
                list.add(op, DType.F32, name(shape, layout, "range" + (int) hi), unary(shape, uniform(lo, hi), layout, call, ref));
            }
        }
    }

    private static void swiglu(CaseList list) {
        Object[][] cases = { // shape, layout
                {s(1, 1), Layout.SEPARATE},
                {s(7, 17), Layout.SEPARATE},
                {s(16, 64), Layout.SEPARATE},
                {s(3, 1000), Layout.SEPARATE},
                {s(5, 33), Layout.IN_PLACE},
                {s(5, 33), Layout.IN_PLACE_SECOND},
                {s(2, 3, 17), Layout.SEPARATE},
        };
        for (Object[] c : cases) {
            long[] shape = (long[]) c[0];
            Layout layout = (Layout) c[1];
            list.add(Op.SWIGLU, DType.F32, name(shape, layout, ""), (ws, r) -> {
                int cols = Math.toIntExact(shape[shape.length - 1]);
                int rows = Math.toIntExact(Data.product(shape, 0, shape.length - 1));
                float[] gf = Data.uniform(r, rows * cols, -8, 8);
                float[] uf = Data.uniform(r, rows * cols, -2, 2);
                double[][] expected = ReferenceOps.swiglu(Data.rows(gf, cols), Data.rows(uf, cols));
                Tensor gate;
                Tensor up;
                Tensor out;
                switch (layout) {
                    case IN_PLACE -> {
                        gate = ws.inPlace("gate", DType.F32, Data.f32(gf), shape);
                        up = ws.input("up", DType.F32, Data.f32(uf), shape);
                        out = gate;
                    }
                    case IN_PLACE_SECOND -> {
                        gate = ws.input("gate", DType.F32, Data.f32(gf), shape);
                        up = ws.inPlace("up", DType.F32, Data.f32(uf), shape);
                        out = up;
                    }
                    default -> {
                        gate = ws.input("gate", DType.F32, Data.f32(gf), shape);
                        up = ws.input("up", DType.F32, Data.f32(uf), shape);
                        out = ws.output("out", DType.F32, shape);
                    }
                }
                ws.backend().swiglu(gate, up, out);
                ws.verify();
                return Outcome.compare("out", Data.flatten(expected), ws.read(out), cols);
            });
        }
    }

    private static void softmax(CaseList list) {
        Object[][] cases = { // shape, lo, hi, layout
                {s(1, 1), -1.0, 1.0, Layout.SEPARATE},
                {s(2, 3), -1.0, 1.0, Layout.SEPARATE},
                {s(7, 17), -5.0, 5.0, Layout.SEPARATE},
                {s(3, 33), -5.0, 5.0, Layout.SEPARATE},
                {s(16, 64), -5.0, 5.0, Layout.SEPARATE},
                {s(4, 1000), -10.0, 10.0, Layout.SEPARATE},
                {s(1, 32000), -10.0, 10.0, Layout.SEPARATE},
                {s(3, 257), -100.0, 100.0, Layout.SEPARATE},
                {s(2, 65), 80.0, 120.0, Layout.SEPARATE},
                {s(5, 64), -5.0, 5.0, Layout.IN_PLACE},
                {s(2, 3, 17), -5.0, 5.0, Layout.SEPARATE},
                {s(4, 33), -5.0, 5.0, Layout.VIEWS},
        };
        for (Object[] c : cases) {
            long[] shape = (long[]) c[0];
            double lo = (double) c[1];
            double hi = (double) c[2];
            Layout layout = (Layout) c[3];
            list.add(Op.SOFTMAX, DType.F32, name(shape, layout, "range" + (int) lo + "to" + (int) hi),
                    unary(shape, uniform(lo, hi), layout, Backend::softmax, ReferenceOps::softmax));
        }
        // Rows with every value equal (uniform distribution; and the degenerate single-column row).
        long[] shape = s(3, 40);
        list.add(Op.SOFTMAX, DType.F32, "3x40_constant_rows",
                unary(shape, (r, rows, cols) -> {
                    float[] v = new float[rows * cols];
                    for (int i = 0; i < v.length; i++) {
                        v[i] = (i / cols) * 7.5f - 3;
                    }
                    return v;
                }, Layout.SEPARATE, Backend::softmax, ReferenceOps::softmax));
    }
}
