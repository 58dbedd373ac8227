// TEST DOUBLE of cuBLAS (libcublas.so.13) over the kernel emulator's reference GEMM. Never packaged or installed:
// it lives in backend-cuda/target/fake-cuda-driver/ beside the fake libcuda.so.1 (fake_libcuda.cpp) and is only
// on LD_LIBRARY_PATH in the surefire execution "fake-driver", so that the hand-written cuBLAS downcalls of
// dev.isthmus.bindings.cublas (argument order and types of cublasGemmEx, handle and stream passing) are exercised.
// It implements exactly the functions the bindings declare, with the documented C signatures, and rejects a
// GEMM during a stream capture of the fake driver (the backend must call cuBLAS outside captures).
#include <dlfcn.h>
#include <string.h>

#include <cstdint>

#define API extern "C" __attribute__((visibility("default")))

extern "C" int isthmus_emu_gemm_ex(int transa, int transb, int m, int n, int k, const void* alpha, const void* A,
                                   int Atype, int lda, const void* B, int Btype, int ldb, const void* beta, void* C,
                                   int Ctype, int ldc, int computeType, int algo);
extern "C" int isthmus_emu_gemm_strided_batched_ex(int transa, int transb, int m, int n, int k, const void* alpha,
                                                   const void* A, int Atype, int lda, long long strideA,
                                                   const void* B, int Btype, int ldb, long long strideB,
                                                   const void* beta, void* C, int Ctype, int ldc, long long strideC,
                                                   int batch, int computeType, int algo);

namespace {

struct Handle {
    int magic = 0xB1A5;
    void* stream = nullptr;
};

bool capturing() {
    void* cuda = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
    if (!cuda) {
        return false;
    }
    auto f = reinterpret_cast<int (*)()>(dlsym(cuda, "isthmus_fake_cuda_capturing"));
    int c = f ? f() : 0;
    dlclose(cuda);
    return c != 0;
}

bool valid(void* h) {
    return h && static_cast<Handle*>(h)->magic == 0xB1A5;
}

}  // namespace

API int cublasCreate_v2(void** handle) {
    *handle = new Handle();
    return 0;
}

API int cublasDestroy_v2(void* handle) {
    if (!valid(handle)) {
        return 1;  // CUBLAS_STATUS_NOT_INITIALIZED
    }
    delete static_cast<Handle*>(handle);
    return 0;
}

API int cublasSetStream_v2(void* handle, void* stream) {
    if (!valid(handle)) {
        return 1;
    }
    static_cast<Handle*>(handle)->stream = stream;
    return 0;
}

API int cublasGemmEx(void* handle, int transa, int transb, int m, int n, int k, const void* alpha, const void* A,
                     int Atype, int lda, const void* B, int Btype, int ldb, const void* beta, void* C, int Ctype,
                     int ldc, int computeType, int algo) {
    if (!valid(handle)) {
        return 1;
    }
    if (capturing()) {
        return 15;  // CUBLAS_STATUS_NOT_SUPPORTED: the backend calls cuBLAS outside captures
    }
    return isthmus_emu_gemm_ex(transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc,
                               computeType, algo);
}

API int cublasGemmStridedBatchedEx(void* handle, int transa, int transb, int m, int n, int k, const void* alpha,
                                   const void* A, int Atype, int lda, long long strideA, const void* B, int Btype,
                                   int ldb, long long strideB, const void* beta, void* C, int Ctype, int ldc,
                                   long long strideC, int batch, int computeType, int algo) {
    if (!valid(handle)) {
        return 1;
    }
    if (capturing()) {
        return 15;
    }
    return isthmus_emu_gemm_strided_batched_ex(transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B, Btype, ldb,
                                               strideB, beta, C, Ctype, ldc, strideC, batch, computeType, algo);
}
