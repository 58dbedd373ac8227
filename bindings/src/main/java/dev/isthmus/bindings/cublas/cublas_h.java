package dev.isthmus.bindings.cublas;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;

/**
 * HAND-WRITTEN downcalls into cuBLAS ({@code libcublas.so.13}, or {@code .12}), not jextract output: the cuBLAS
 * headers are not installed on the machines that build Isthmus, so the few functions the CUDA backend uses are
 * declared here from the public cuBLAS API reference (NVIDIA, "cuBLAS Library User Guide",
 * https://docs.nvidia.com/cuda/cublas/ — sections "cublasCreate()", "cublasDestroy()", "cublasSetStream()",
 * "cublasGemmEx()", "cublasGemmStridedBatchedEx()", and the type references "cublasStatus_t",
 * "cublasOperation_t", "cublasComputeType_t", "cublasGemmAlgo_t", "cudaDataType_t"). The {@code _v2} symbols are
 * what {@code cublas_v2.h} maps the documented names to, and what the library exports.
 *
 * <p>C declarations bound here (every handle and pointer is a {@code void*}, every enum an {@code int}):
 * <pre>
 * cublasStatus_t cublasCreate_v2(cublasHandle_t *handle);
 * cublasStatus_t cublasDestroy_v2(cublasHandle_t handle);
 * cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId);
 * cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
 *         int m, int n, int k, const void *alpha, const void *A, cudaDataType_t Atype, int lda,
 *         const void *B, cudaDataType_t Btype, int ldb, const void *beta, void *C, cudaDataType_t Ctype, int ldc,
 *         cublasComputeType_t computeType, cublasGemmAlgo_t algo);
 * cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa,
 *         cublasOperation_t transb, int m, int n, int k, const void *alpha, const void *A, cudaDataType_t Atype,
 *         int lda, long long int strideA, const void *B, cudaDataType_t Btype, int ldb, long long int strideB,
 *         const void *beta, void *C, cudaDataType_t Ctype, int ldc, long long int strideC, int batchCount,
 *         cublasComputeType_t computeType, cublasGemmAlgo_t algo);
 * </pre>
 * cuBLAS is column-major: {@code C = alpha op(A) op(B) + beta C} with {@code op(A)} m×k and {@code op(B)} k×n.
 *
 * <p>Unlike the jextract classes, loading is explicit: call {@link #load()} (which never throws for a missing
 * library, it reports why) before any downcall.
 */
public final class cublas_h {
    private cublas_h() {
    }

    /** Library names tried by {@link #load()}, in order. */
    public static final List<String> LIBRARY_NAMES = List.of("libcublas.so.13", "libcublas.so.12");

    // cublasStatus_t
    public static final int CUBLAS_STATUS_SUCCESS = 0;
    public static final int CUBLAS_STATUS_NOT_INITIALIZED = 1;
    public static final int CUBLAS_STATUS_ALLOC_FAILED = 3;
    public static final int CUBLAS_STATUS_INVALID_VALUE = 7;
    public static final int CUBLAS_STATUS_ARCH_MISMATCH = 8;
    public static final int CUBLAS_STATUS_MAPPING_ERROR = 11;
    public static final int CUBLAS_STATUS_EXECUTION_FAILED = 13;
    public static final int CUBLAS_STATUS_INTERNAL_ERROR = 14;
    public static final int CUBLAS_STATUS_NOT_SUPPORTED = 15;
    public static final int CUBLAS_STATUS_LICENSE_ERROR = 16;

    // cublasOperation_t
    public static final int CUBLAS_OP_N = 0;
    public static final int CUBLAS_OP_T = 1;

    // cudaDataType_t (library_types.h)
    public static final int CUDA_R_32F = 0;
    public static final int CUDA_R_16F = 2;
    public static final int CUDA_R_16BF = 14;

    // cublasComputeType_t
    public static final int CUBLAS_COMPUTE_32F = 68;
    public static final int CUBLAS_COMPUTE_32F_FAST_TF32 = 77;

    // cublasGemmAlgo_t
    public static final int CUBLAS_GEMM_DEFAULT = -1;

    /** The name of a {@code cublasStatus_t} value, e.g. {@code CUBLAS_STATUS_INVALID_VALUE}. */
    public static String statusName(int status) {
        return switch (status) {
            case CUBLAS_STATUS_SUCCESS -> "CUBLAS_STATUS_SUCCESS";
            case CUBLAS_STATUS_NOT_INITIALIZED -> "CUBLAS_STATUS_NOT_INITIALIZED";
            case CUBLAS_STATUS_ALLOC_FAILED -> "CUBLAS_STATUS_ALLOC_FAILED";
            case CUBLAS_STATUS_INVALID_VALUE -> "CUBLAS_STATUS_INVALID_VALUE";
            case CUBLAS_STATUS_ARCH_MISMATCH -> "CUBLAS_STATUS_ARCH_MISMATCH";
            case CUBLAS_STATUS_MAPPING_ERROR -> "CUBLAS_STATUS_MAPPING_ERROR";
            case CUBLAS_STATUS_EXECUTION_FAILED -> "CUBLAS_STATUS_EXECUTION_FAILED";
            case CUBLAS_STATUS_INTERNAL_ERROR -> "CUBLAS_STATUS_INTERNAL_ERROR";
            case CUBLAS_STATUS_NOT_SUPPORTED -> "CUBLAS_STATUS_NOT_SUPPORTED";
            case CUBLAS_STATUS_LICENSE_ERROR -> "CUBLAS_STATUS_LICENSE_ERROR";
            default -> "cublasStatus_t " + status;
        };
    }

    private static final Linker LINKER = Linker.nativeLinker();
    private static final ValueLayout.OfInt C_INT = ValueLayout.JAVA_INT;
    private static final ValueLayout.OfLong C_LONG_LONG = ValueLayout.JAVA_LONG;
    private static final ValueLayout C_POINTER = ValueLayout.ADDRESS;

    private static final FunctionDescriptor CREATE = FunctionDescriptor.of(C_INT, C_POINTER);
    private static final FunctionDescriptor DESTROY = FunctionDescriptor.of(C_INT, C_POINTER);
    private static final FunctionDescriptor SET_STREAM = FunctionDescriptor.of(C_INT, C_POINTER, C_POINTER);
    private static final FunctionDescriptor GEMM_EX = FunctionDescriptor.of(C_INT,
            C_POINTER, C_INT, C_INT, C_INT, C_INT, C_INT, C_POINTER, C_POINTER, C_INT, C_INT,
            C_POINTER, C_INT, C_INT, C_POINTER, C_POINTER, C_INT, C_INT, C_INT, C_INT);
    private static final FunctionDescriptor GEMM_STRIDED_BATCHED_EX = FunctionDescriptor.of(C_INT,
            C_POINTER, C_INT, C_INT, C_INT, C_INT, C_INT, C_POINTER, C_POINTER, C_INT, C_INT, C_LONG_LONG,
            C_POINTER, C_INT, C_INT, C_LONG_LONG, C_POINTER, C_POINTER, C_INT, C_INT, C_LONG_LONG, C_INT, C_INT, C_INT);

    /** The loaded library's downcall handles. */
    private record Library(String name, MethodHandle create, MethodHandle destroy, MethodHandle setStream,
                           MethodHandle gemmEx, MethodHandle gemmStridedBatchedEx) {
    }

    private static volatile Library library;
    private static volatile String failure;

    /**
     * Loads cuBLAS once (trying {@link #LIBRARY_NAMES} with {@link SymbolLookup#libraryLookup(String, Arena)}).
     *
     * @return the name of the library loaded
     * @throws IllegalStateException saying which names were tried and why each failed
     */
    public static synchronized String load() {
        if (library != null) {
            return library.name();
        }
        if (failure != null) {
            throw new IllegalStateException(failure);
        }
        List<String> reasons = new ArrayList<>();
        for (String name : LIBRARY_NAMES) {
            try {
                SymbolLookup lookup = SymbolLookup.libraryLookup(name, Arena.global());
                library = new Library(name,
                        handle(lookup, "cublasCreate_v2", CREATE),
                        handle(lookup, "cublasDestroy_v2", DESTROY),
                        handle(lookup, "cublasSetStream_v2", SET_STREAM),
                        handle(lookup, "cublasGemmEx", GEMM_EX),
                        handle(lookup, "cublasGemmStridedBatchedEx", GEMM_STRIDED_BATCHED_EX));
                return name;
            } catch (IllegalArgumentException | java.util.NoSuchElementException e) {
                reasons.add(name + ": " + e.getMessage());
            }
        }
        failure = "cuBLAS not found (" + String.join("; ", reasons) + ")";
        throw new IllegalStateException(failure);
    }

    /** Whether {@link #load()} has succeeded. */
    public static boolean isLoaded() {
        return library != null;
    }

    private static MethodHandle handle(SymbolLookup lookup, String symbol, FunctionDescriptor descriptor) {
        MemorySegment address = lookup.find(symbol).orElseThrow(
                () -> new java.util.NoSuchElementException("no symbol " + symbol));
        return LINKER.downcallHandle(address, descriptor);
    }

    private static Library lib() {
        Library l = library;
        if (l == null) {
            throw new IllegalStateException("cuBLAS is not loaded; call cublas_h.load() first");
        }
        return l;
    }

    private static int invoke(MethodHandle h, Object... args) {
        try {
            return (int) h.invokeWithArguments(args);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    /** {@code cublasStatus_t cublasCreate_v2(cublasHandle_t *handle)}. */
    public static int cublasCreate_v2(MemorySegment handle) {
        return invoke(lib().create(), handle);
    }

    /** {@code cublasStatus_t cublasDestroy_v2(cublasHandle_t handle)}. */
    public static int cublasDestroy_v2(MemorySegment handle) {
        return invoke(lib().destroy(), handle);
    }

    /** {@code cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId)}. */
    public static int cublasSetStream_v2(MemorySegment handle, MemorySegment stream) {
        return invoke(lib().setStream(), handle, stream);
    }

    /** {@code cublasGemmEx}, see the class comment for the C declaration. */
    public static int cublasGemmEx(MemorySegment handle, int transa, int transb, int m, int n, int k,
                                   MemorySegment alpha, MemorySegment A, int Atype, int lda,
                                   MemorySegment B, int Btype, int ldb, MemorySegment beta,
                                   MemorySegment C, int Ctype, int ldc, int computeType, int algo) {
        return invoke(lib().gemmEx(), handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta,
                C, Ctype, ldc, computeType, algo);
    }

    /** {@code cublasGemmStridedBatchedEx}, see the class comment for the C declaration. */
    public static int cublasGemmStridedBatchedEx(MemorySegment handle, int transa, int transb, int m, int n, int k,
                                                 MemorySegment alpha, MemorySegment A, int Atype, int lda,
                                                 long strideA, MemorySegment B, int Btype, int ldb, long strideB,
                                                 MemorySegment beta, MemorySegment C, int Ctype, int ldc,
                                                 long strideC, int batchCount, int computeType, int algo) {
        return invoke(lib().gemmStridedBatchedEx(), handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA,
                B, Btype, ldb, strideB, beta, C, Ctype, ldc, strideC, batchCount, computeType, algo);
    }
}
