package dev.isthmus.backend.cuda;

import dev.isthmus.api.DType;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * Every kernel the CUDA backend launches, by its {@code extern "C"} name in {@code native/cuda/kernels.cu}, with
 * the kinds of its parameters in order. This is the one table of names: the fatbin test checks that each entry
 * is a function of the sm_80 and sm_90 code and a PTX {@code .entry} with these parameter types, and the emulator
 * test checks the same against the C++ signatures.
 *
 * <p>Strides are always in bytes ({@link Param#I64}); see {@code native/cuda/include/isthmus_common.cuh}.
 */
public enum Kernel {
    // rows.cu: dst row r = dequantize(src row ids[r] or r), one thread per 32-element group
    ROWS_Q4_0("isthmus_rows_q4_0", Sig.ROWS), ROWS_Q4_1("isthmus_rows_q4_1", Sig.ROWS),
    ROWS_Q5_0("isthmus_rows_q5_0", Sig.ROWS), ROWS_Q5_1("isthmus_rows_q5_1", Sig.ROWS),
    ROWS_Q8_0("isthmus_rows_q8_0", Sig.ROWS), ROWS_Q2_K("isthmus_rows_q2_k", Sig.ROWS),
    ROWS_Q3_K("isthmus_rows_q3_k", Sig.ROWS), ROWS_Q4_K("isthmus_rows_q4_k", Sig.ROWS),
    ROWS_Q5_K("isthmus_rows_q5_k", Sig.ROWS), ROWS_Q6_K("isthmus_rows_q6_k", Sig.ROWS),
    ROWS_Q8_K("isthmus_rows_q8_k", Sig.ROWS),
    // rows.cu: the same into F16 (weights for a cuBLAS GEMM)
    ROWS_Q4_0_TO_F16("isthmus_rows_q4_0_to_f16", Sig.ROWS), ROWS_Q4_1_TO_F16("isthmus_rows_q4_1_to_f16", Sig.ROWS),
    ROWS_Q5_0_TO_F16("isthmus_rows_q5_0_to_f16", Sig.ROWS), ROWS_Q5_1_TO_F16("isthmus_rows_q5_1_to_f16", Sig.ROWS),
    ROWS_Q8_0_TO_F16("isthmus_rows_q8_0_to_f16", Sig.ROWS), ROWS_Q2_K_TO_F16("isthmus_rows_q2_k_to_f16", Sig.ROWS),
    ROWS_Q3_K_TO_F16("isthmus_rows_q3_k_to_f16", Sig.ROWS), ROWS_Q4_K_TO_F16("isthmus_rows_q4_k_to_f16", Sig.ROWS),
    ROWS_Q5_K_TO_F16("isthmus_rows_q5_k_to_f16", Sig.ROWS), ROWS_Q6_K_TO_F16("isthmus_rows_q6_k_to_f16", Sig.ROWS),
    ROWS_Q8_K_TO_F16("isthmus_rows_q8_k_to_f16", Sig.ROWS),
    // rows.cu: plain element types to F32, one thread per element
    ROWS_F32("isthmus_rows_f32", Sig.ROWS), ROWS_F16("isthmus_rows_f16", Sig.ROWS),
    ROWS_BF16("isthmus_rows_bf16", Sig.ROWS),
    // rows.cu: dst row rows[r] (or r) = convert(F32 src row r)
    COPY_ROWS_F32("isthmus_copy_rows_f32", Sig.ROWS), COPY_ROWS_F16("isthmus_copy_rows_f16", Sig.ROWS),
    COPY_ROWS_BF16("isthmus_copy_rows_bf16", Sig.ROWS),
    // matvec.cu
    MATVEC_F32("isthmus_matvec_f32", Sig.MATVEC), MATVEC_F16("isthmus_matvec_f16", Sig.MATVEC),
    MATVEC_BF16("isthmus_matvec_bf16", Sig.MATVEC), MATVEC_Q4_0("isthmus_matvec_q4_0", Sig.MATVEC),
    MATVEC_Q4_1("isthmus_matvec_q4_1", Sig.MATVEC), MATVEC_Q5_0("isthmus_matvec_q5_0", Sig.MATVEC),
    MATVEC_Q5_1("isthmus_matvec_q5_1", Sig.MATVEC), MATVEC_Q8_0("isthmus_matvec_q8_0", Sig.MATVEC),
    MATVEC_Q2_K("isthmus_matvec_q2_k", Sig.MATVEC), MATVEC_Q3_K("isthmus_matvec_q3_k", Sig.MATVEC),
    MATVEC_Q4_K("isthmus_matvec_q4_k", Sig.MATVEC), MATVEC_Q5_K("isthmus_matvec_q5_k", Sig.MATVEC),
    MATVEC_Q6_K("isthmus_matvec_q6_k", Sig.MATVEC), MATVEC_Q8_K("isthmus_matvec_q8_k", Sig.MATVEC),
    // rowwise.cu
    RMS_NORM("isthmus_rms_norm", Sig.RMS_NORM),
    LAYER_NORM("isthmus_layer_norm", Sig.LAYER_NORM),
    SOFTMAX("isthmus_softmax", Sig.SOFTMAX),
    ARGMAX("isthmus_argmax", Sig.ARGMAX),
    // elementwise.cu
    ADD("isthmus_add", Sig.BINARY), MUL("isthmus_mul", Sig.BINARY), SWIGLU("isthmus_swiglu", Sig.BINARY),
    SCALE("isthmus_scale", Sig.UNARY), SILU("isthmus_silu", Sig.UNARY), GELU("isthmus_gelu", Sig.UNARY),
    // rope.cu
    ROPE("isthmus_rope", Sig.ROPE),
    // attention.cu
    ATTENTION_F32("isthmus_attention_f32", Sig.ATTENTION), ATTENTION_F16("isthmus_attention_f16", Sig.ATTENTION),
    ATTENTION_BF16("isthmus_attention_bf16", Sig.ATTENTION),
    ATTENTION_COMBINE("isthmus_attention_combine", Sig.ATTENTION_COMBINE);

    /** Kind of a kernel parameter as the C signature declares it. */
    public enum Param {
        /** A device pointer (8 bytes), passed as a {@code long} address. */
        PTR(8, 'p'),
        /** {@code int}. */
        I32(4, 'i'),
        /** {@code long long} (strides in bytes). */
        I64(8, 'l'),
        /** {@code float}. */
        F32(4, 'f');

        private final int bytes;
        private final char code;

        Param(int bytes, char code) {
            this.bytes = bytes;
            this.code = code;
        }

        public int bytes() {
            return bytes;
        }

        /** The letter the kernel emulator uses for this kind in its signatures. */
        public char code() {
            return code;
        }
    }

    /** The parameter lists shared by families of kernels (names only document the order). */
    private enum Sig {
        // src, srcStride, ids/rows, rows, groups/cols, dst, dstStride
        ROWS("src:PTR srcStride:I64 ids:PTR rows:I32 cols:I32 dst:PTR dstStride:I64"),
        MATVEC("x:PTR xStride:I64 w:PTR wStride:I64 out:PTR outStride:I64 n:I32 m:I32 k:I32"),
        RMS_NORM("x:PTR xStride:I64 weight:PTR out:PTR outStride:I64 rows:I32 cols:I32 eps:F32"),
        LAYER_NORM("x:PTR xStride:I64 weight:PTR bias:PTR out:PTR outStride:I64 rows:I32 cols:I32 eps:F32"),
        SOFTMAX("x:PTR xStride:I64 out:PTR outStride:I64 rows:I32 cols:I32"),
        ARGMAX("x:PTR xStride:I64 rows:I32 cols:I32 out:PTR"),
        BINARY("a:PTR aStride:I64 b:PTR bStride:I64 out:PTR outStride:I64 rows:I32 cols:I32"),
        UNARY("x:PTR xStride:I64 out:PTR outStride:I64 rows:I32 cols:I32 s:F32"),
        ROPE("x:PTR rowStride:I64 headStride:I64 n:I32 heads:I32 dims:I32 positions:PTR theta:F32 freqScale:F32 "
                + "freqFactors:PTR neox:I32"),
        ATTENTION("q:PTR qRowStride:I64 qHeadStride:I64 k:PTR kSlotStride:I64 kHeadStride:I64 v:PTR vSlotStride:I64 "
                + "vHeadStride:I64 out:PTR oRowStride:I64 oHeadStride:I64 querySeq:PTR queryPos:PTR contextLen:PTR "
                + "tableOffset:PTR tables:PTR n:I32 heads:I32 kvHeads:I32 headDim:I32 headsPerBlock:I32 tileKeys:I32 "
                + "blockSize:I32 scale:F32 causal:I32 window:I32 alibi:PTR softcap:F32 splits:I32 partial:PTR"),
        ATTENTION_COMBINE("partial:PTR n:I32 heads:I32 headDim:I32 splits:I32 out:PTR oRowStride:I64 oHeadStride:I64");

        final List<String> names;
        final List<Param> params;

        Sig(String spec) {
            String[] parts = spec.split(" ");
            this.names = Arrays.stream(parts).map(p -> p.substring(0, p.indexOf(':'))).toList();
            this.params = Arrays.stream(parts).map(p -> Param.valueOf(p.substring(p.indexOf(':') + 1))).toList();
        }
    }

    private final String symbol;
    private final Sig sig;

    Kernel(String symbol, Sig sig) {
        this.symbol = symbol;
        this.sig = sig;
    }

    /** The {@code extern "C"} name in the fatbin. */
    public String symbol() {
        return symbol;
    }

    /** Parameter kinds, in order. */
    public List<Param> params() {
        return sig.params;
    }

    /** Parameter names, in order (for messages). */
    public List<String> paramNames() {
        return sig.names;
    }

    /** The signature in the emulator's notation, e.g. {@code plpiipl}. */
    public String signatureCode() {
        return sig.params.stream().map(p -> String.valueOf(p.code())).collect(Collectors.joining());
    }

    private static String suffix(DType t) {
        return t.name().toLowerCase(Locale.ROOT);
    }

    private static Kernel bySymbol(String symbol, String what, DType t) {
        for (Kernel k : values()) {
            if (k.symbol.equals(symbol)) {
                return k;
            }
        }
        throw new IllegalArgumentException("no " + what + " kernel for " + t);
    }

    /** {@code isthmus_matvec_<dtype>}: the fused dequantize + matrix-vector product for weights of {@code t}. */
    public static Kernel matvec(DType t) {
        return bySymbol("isthmus_matvec_" + suffix(t), "matvec", t);
    }

    /** {@code isthmus_rows_<dtype>}: rows of {@code t} (gathered by id) to F32. */
    public static Kernel rows(DType t) {
        return bySymbol("isthmus_rows_" + suffix(t), "row conversion", t);
    }

    /** {@code isthmus_rows_<dtype>_to_f16}: rows of quantized {@code t} to F16. */
    public static Kernel rowsToF16(DType t) {
        return bySymbol("isthmus_rows_" + suffix(t) + "_to_f16", "dequantize-to-F16", t);
    }

    /** {@code isthmus_copy_rows_<dtype>}: F32 rows scattered into a tensor of {@code t}. */
    public static Kernel copyRows(DType t) {
        return bySymbol("isthmus_copy_rows_" + suffix(t), "copy-rows", t);
    }

    /** {@code isthmus_attention_<dtype>}: attention over a cache of {@code t}. */
    public static Kernel attention(DType t) {
        return bySymbol("isthmus_attention_" + suffix(t), "attention", t);
    }
}
