package dev.isthmus.conformance;

import dev.isthmus.api.Attention;
import dev.isthmus.api.DType;
import dev.isthmus.api.KvLayout;
import dev.isthmus.api.Op;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.discovery.Backends;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Set;
import java.util.function.DoubleUnaryOperator;
import java.util.function.Predicate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves the suite can fail: the real CPU backend wrapped in decorators that each break one kernel in a way
 * a real kernel could be broken. Each must be reported as FAIL (or ERROR for a throwing op) with its NMSE or
 * the guard / NaN / index message, in more cases than the undecorated backend fails.
 */
class BrokenKernelTest {
    private static Backend cpu;

    @BeforeAll
    static void open() {
        cpu = Backends.open("cpu", BackendOptions.defaults());
        assertTrue(cpu.device().hostAccessible(), "these decorators edit host memory");
    }

    @AfterAll
    static void close() {
        if (cpu != null) {
            cpu.close();
        }
    }

    private static List<CaseResult> run(Backend backend, Predicate<TestCase> filter) {
        List<TestCase> cases = ConformanceSuite.cases().stream().filter(filter).toList();
        assertFalse(cases.isEmpty());
        return ConformanceSuite.runAll(backend, cases, r -> { });
    }

    private static Predicate<TestCase> op(Op op) {
        return c -> c.op() == op;
    }

    private static long failures(List<CaseResult> results) {
        return results.stream().filter(r -> r.status() == CaseResult.Status.FAIL).count();
    }

    /** Runs the cases on the broken backend and on the plain CPU; returns the broken results. */
    private static List<CaseResult> brokenVersusPlain(Backend broken, Predicate<TestCase> filter) {
        List<CaseResult> bad = run(broken, filter);
        List<CaseResult> plain = run(cpu, filter);
        assertTrue(failures(bad) > failures(plain), () -> "the broken kernel fails no more cases than the real one:\n"
                + new ConformanceReport(broken.name(), bad).format());
        bad.forEach(r -> System.out.println("[" + broken.name() + "] " + r));
        return bad;
    }

    /** Applies {@code f} to every element of a host F32 tensor. */
    private static void transform(Tensor t, DoubleUnaryOperator f) {
        for (long r = 0; r < t.rows(); r++) {
            for (long c = 0; c < t.cols(); c++) {
                long off = t.rowOffset(r) + 4 * c;
                float v = t.segment().get(ValueLayout.JAVA_FLOAT_UNALIGNED, off);
                t.segment().set(ValueLayout.JAVA_FLOAT_UNALIGNED, off, (float) f.applyAsDouble(v));
            }
        }
    }

    @Test
    void matmulWithOutputPerturbedByFivePercent() {
        Backend broken = new DelegatingBackend(cpu) {
            @Override
            public String name() {
                return "matmul*1.05";
            }

            @Override
            public void matmul(Tensor x, Tensor w, Tensor out) {
                super.matmul(x, w, out);
                transform(out, v -> v * 1.05);
            }
        };
        Set<DType> types = Set.of(DType.F32, DType.F16, DType.Q8_0, DType.Q4_K, DType.Q6_K);
        List<CaseResult> results = brokenVersusPlain(broken, c -> c.op() == Op.MATMUL && types.contains(c.dtype()));
        for (CaseResult r : results) {
            if (r.status() == CaseResult.Status.UNSUPPORTED) {
                continue;
            }
            assertEquals(CaseResult.Status.FAIL, r.status(), r::toString);
            if (r.name().contains("/swiglu_")) {
                // silu(1.05 g) * 1.05 u: more than the products' own error
                assertTrue(r.nmse() > 2.5e-3, r::toString);
            } else {
                // (1.05 - 1)² = 2.5e-3, five times the threshold.
                assertEquals(2.5e-3, r.nmse(), 2e-4, r::toString);
            }
            assertTrue(r.message().contains("NMSE"), r::toString);
        }
    }

    @Test
    void quantizedMatmulReadingNibblesInTheWrongOrder() {
        Backend broken = new DelegatingBackend(cpu) {
            @Override
            public String name() {
                return "q4_0-nibbles-swapped";
            }

            @Override
            public void matmul(Tensor x, Tensor w, Tensor out) {
                if (w.dtype() != DType.Q4_0) {
                    super.matmul(x, w, out);
                    return;
                }
                try (Arena arena = Arena.ofShared()) {
                    MemorySegment copy = arena.allocate(w.rows() * w.rowBytes(), 64);
                    for (long r = 0; r < w.rows(); r++) {
                        MemorySegment.copy(w.segment(), w.rowOffset(r), copy, r * w.rowBytes(), w.rowBytes());
                    }
                    for (long block = 0; block < copy.byteSize() / 18; block++) {
                        for (int j = 2; j < 18; j++) {
                            long at = block * 18 + j;
                            int b = copy.get(ValueLayout.JAVA_BYTE, at) & 0xFF;
                            copy.set(ValueLayout.JAVA_BYTE, at, (byte) ((b >>> 4) | (b << 4)));
                        }
                    }
                    super.matmul(x, Tensor.host(copy, DType.Q4_0, w.shape()), out);
                }
            }
        };
        List<CaseResult> results = brokenVersusPlain(broken, c -> c.op() == Op.MATMUL && c.dtype() == DType.Q4_0);
        assertTrue(results.stream().allMatch(r -> r.status() == CaseResult.Status.FAIL && r.nmse() > 0.1),
                () -> new ConformanceReport("q4_0-nibbles-swapped", results).format());
    }

    @Test
    void rmsNormWithTheWrongEps() {
        Backend broken = new DelegatingBackend(cpu) {
            @Override
            public String name() {
                return "rmsnorm-eps*10";
            }

            @Override
            public void rmsNorm(Tensor x, Tensor weight, float eps, Tensor out) {
                super.rmsNorm(x, weight, eps * 10, out);
            }
        };
        List<CaseResult> results = brokenVersusPlain(broken, op(Op.RMS_NORM));
        long failed = failures(results);
        assertTrue(failed >= results.size() / 2, () -> new ConformanceReport("rmsnorm-eps*10", results).format());
        results.stream().filter(r -> r.status() == CaseResult.Status.FAIL)
                .forEach(r -> assertTrue(r.nmse() > r.threshold() && r.message().contains("NMSE"), r::toString));
    }

    @Test
    void attentionIgnoringTheCausalMask() {
        Backend broken = new DelegatingBackend(cpu) {
            @Override
            public String name() {
                return "attention-not-causal";
            }

            @Override
            public void attention(Tensor q, Tensor k, Tensor v, KvLayout layout, Attention p, Tensor out) {
                super.attention(q, k, v, layout,
                        new Attention(p.scale(), false, p.slidingWindow(), p.alibiSlopes(), p.logitSoftcap()), out);
            }
        };
        List<CaseResult> results = brokenVersusPlain(broken, op(Op.ATTENTION));
        for (CaseResult r : results) {
            if (r.name().contains("/prefill_ctx5") || r.name().contains("/paged3")) {
                assertEquals(CaseResult.Status.FAIL, r.status(), r::toString);
                assertTrue(r.nmse() > r.threshold(), r::toString);
            }
        }
    }

    @Test
    void siluWritingOneElementPastItsOutput() {
        Backend broken = new DelegatingBackend(cpu) {
            @Override
            public String name() {
                return "silu-overrun";
            }

            @Override
            @SuppressWarnings("restricted")
            public void silu(Tensor x, Tensor out) {
                super.silu(x, out);
                long end = out.segment().byteSize();
                out.segment().reinterpret(end + 4).set(ValueLayout.JAVA_FLOAT_UNALIGNED, end, 1f);
            }
        };
        List<CaseResult> results = brokenVersusPlain(broken, op(Op.SILU));
        for (CaseResult r : results) {
            assertEquals(CaseResult.Status.FAIL, r.status(), r::toString);
            assertTrue(r.message().contains("past the end of output"), r::toString);
        }
    }

    @Test
    void softmaxProducingANaN() {
        Backend broken = new DelegatingBackend(cpu) {
            @Override
            public String name() {
                return "softmax-nan";
            }

            @Override
            public void softmax(Tensor x, Tensor out) {
                super.softmax(x, out);
                out.segment().set(ValueLayout.JAVA_FLOAT_UNALIGNED, out.rowOffset(out.rows() - 1), Float.NaN);
            }
        };
        List<CaseResult> results = brokenVersusPlain(broken, op(Op.SOFTMAX));
        for (CaseResult r : results) {
            assertEquals(CaseResult.Status.FAIL, r.status(), r::toString);
            assertTrue(r.message().contains("NaN"), r::toString);
        }
    }

    @Test
    void scaleForgettingItsLastRow() {
        Backend broken = new DelegatingBackend(cpu) {
            @Override
            public String name() {
                return "scale-short";
            }

            @Override
            public void scale(Tensor x, float s, Tensor out) {
                if (x.dim(0) > 1) {
                    super.scale(x.slice(0, x.dim(0) - 1), s, out.slice(0, out.dim(0) - 1));
                } else {
                    super.scale(x, s, out);
                }
            }
        };
        List<CaseResult> results = brokenVersusPlain(broken, op(Op.SCALE));
        results.stream().filter(r -> !r.name().contains("/1x1_")).forEach(r -> {
            // The in-place case leaves the last row unscaled; the others leave it as the NaN poison.
            assertEquals(CaseResult.Status.FAIL, r.status(), r::toString);
        });
    }

    @Test
    void addModifyingItsInput() {
        Backend broken = new DelegatingBackend(cpu) {
            @Override
            public String name() {
                return "add-clobbers-a";
            }

            @Override
            public void add(Tensor a, Tensor b, Tensor out) {
                super.add(a, b, out);
                transform(a, v -> v + 1);
                if (out == a) {
                    transform(a, v -> v - 1); // in place: only the output changed, which is allowed
                }
            }
        };
        List<CaseResult> results = brokenVersusPlain(broken, op(Op.ADD));
        results.stream().filter(r -> !r.name().contains("inplace")).forEach(r -> {
            assertEquals(CaseResult.Status.FAIL, r.status(), r::toString);
            assertTrue(r.message().contains("modified its input"), r::toString);
        });
    }

    @Test
    void argmaxPickingTheLastOfEqualValues() {
        Backend broken = new DelegatingBackend(cpu) {
            @Override
            public String name() {
                return "argmax-last-tie";
            }

            @Override
            public int[] argmax(Tensor x) {
                int[] out = new int[Math.toIntExact(x.rows())];
                for (int r = 0; r < out.length; r++) {
                    for (int c = 1; c < x.cols(); c++) {
                        if (x.getFloat(r, c) >= x.getFloat(r, out[r])) {
                            out[r] = c;
                        }
                    }
                }
                return out;
            }
        };
        List<CaseResult> results = brokenVersusPlain(broken, op(Op.ARGMAX));
        for (CaseResult r : results) {
            boolean ties = r.name().contains("ties") || r.name().contains("constant");
            assertEquals(ties ? CaseResult.Status.FAIL : CaseResult.Status.PASS, r.status(), r::toString);
        }
    }

    @Test
    void geluThrowingIsAnError() {
        Backend broken = new DelegatingBackend(cpu) {
            @Override
            public String name() {
                return "gelu-throws";
            }

            @Override
            public void gelu(Tensor x, Tensor out) {
                throw new UnsupportedOperationException("gelu is not implemented yet");
            }
        };
        List<CaseResult> results = run(broken, op(Op.GELU));
        for (CaseResult r : results) {
            assertEquals(CaseResult.Status.ERROR, r.status(), r::toString);
            assertTrue(r.message().contains("gelu is not implemented yet"), r::toString);
        }
        ConformanceReport report = new ConformanceReport("gelu-throws", results);
        assertFalse(report.allPassed());
        assertTrue(report.format().contains("NOT CONFORMANT"));
    }

    @Test
    void unsupportedIsNeverAPass() {
        Backend partial = new DelegatingBackend(cpu) {
            @Override
            public boolean supports(Op op, DType... dtypes) {
                return op != Op.TOP_K && super.supports(op, dtypes);
            }
        };
        List<CaseResult> results = run(partial, op(Op.TOP_K));
        assertTrue(results.stream().allMatch(r -> r.status() == CaseResult.Status.UNSUPPORTED));
        ConformanceReport report = new ConformanceReport("partial", results);
        assertTrue(report.allPassed(), "unsupported is not a failure");
        assertEquals(0, report.count(CaseResult.Status.PASS), "but never a pass");
    }
}
