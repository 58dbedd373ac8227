// The Isthmus CUDA kernel emulator: runs the kernels of native/cuda/kernels.cu, compiled for the host, with
// CUDA's execution model, so that the CUDA backend's host code and its kernels can be tested without a GPU.
//
// It is a test instrument, not a backend: it exists so that the launch geometry, kernel arguments, memory
// layouts, barriers and arithmetic of the CUDA backend are exercised for real. The Java side
// (dev.isthmus.backend.cuda.EmulatorApi) drives it through the C functions at the end of this file, which
// mirror the driver API calls the backend makes (cuMemAlloc, cuMemcpy*, cuLaunchKernel) and cublasGemmEx.
//
// Scheduling: blocks run one after another; the threads of a block run as fibers (ucontext) on the calling OS
// thread. A fiber runs until it waits at __syncthreads (all live threads of the block must arrive), at a warp
// shuffle (all live lanes of its warp must arrive) or ends. Deadlocks (a barrier some threads never reach) and
// shuffles reading a lane that is not taking part are reported as launch failures, as are launch
// configurations that CUDA would reject. Launches are serialized by a global lock.
#include "cuda_emu.h"

#include <sys/mman.h>
#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#define EMU_API extern "C" __attribute__((visibility("default")))

// ---- fiber context switch ------------------------------------------------------------------------------
// On x86-64 a few instructions: save the callee-saved registers and the SSE/x87 control words on the current
// stack, swap stack pointers, restore. (ucontext's swapcontext also saves the signal mask with a system call on
// every switch, which made the emulator ~20x slower.) Other architectures use ucontext.
#if defined(__x86_64__)
extern "C" void isthmus_emu_switch(void** saveSp, void* loadSp);
asm(R"(
    .text
    .globl isthmus_emu_switch
    .hidden isthmus_emu_switch
    .type isthmus_emu_switch,@function
isthmus_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size isthmus_emu_switch, .-isthmus_emu_switch
    .section .note.GNU-stack,"",@progbits
    .text
)");
#endif

namespace emu {

thread_local ThreadCtx* current = nullptr;

namespace {

// CUresult values returned to the Java side (same numbers as cuda.h).
constexpr int CUDA_SUCCESS = 0;
constexpr int CUDA_ERROR_INVALID_VALUE = 1;
constexpr int CUDA_ERROR_OUT_OF_MEMORY = 2;
constexpr int CUDA_ERROR_NOT_FOUND = 500;
constexpr int CUDA_ERROR_LAUNCH_FAILED = 719;

constexpr size_t kStackBytes = 256 * 1024;
constexpr unsigned kMaxDynamicShared = 48 * 1024;

struct Kernel {
    std::string name;
    void* fn;
    Invoker invoker;
    std::string signature;
};

std::map<std::string, Kernel>& registry() {
    static std::map<std::string, Kernel> r;
    return r;
}

enum State { RUNNABLE, WAIT_BLOCK, WAIT_WARP, DONE, FAILED };

struct Fiber {
#if defined(__x86_64__)
    void* sp;
#else
    ucontext_t ctx;
#endif
    State state;
    int linear;
    int lane;
    int warp;
    long shuffles;
    ThreadCtx tc;
    char* stack;
};

struct Slot {
    uint64_t bits;
    long count;
};

struct Run {
    const Kernel* kernel = nullptr;
    void** params = nullptr;
    std::vector<Fiber> fibers;
    std::vector<Slot> slots;
#if defined(__x86_64__)
    void* scheduler;
#else
    ucontext_t scheduler;
#endif
    Fiber* cur = nullptr;
    std::string error;
    std::vector<unsigned char> dynamicShared;
};

thread_local Run* run = nullptr;
std::mutex launchLock;
std::string lastError;
bool reverseOrder = false;

std::vector<char*>& stackPool() {
    static std::vector<char*> pool;
    return pool;
}

char* stackFor(size_t i) {
    auto& pool = stackPool();
    while (pool.size() <= i) {
        void* p = mmap(nullptr, kStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            return nullptr;
        }
        pool.push_back(static_cast<char*>(p));
    }
    return pool[i];
}

// Switches from the scheduler to fiber f, returning when f suspends or ends.
void resume(Fiber& f) {
#if defined(__x86_64__)
    isthmus_emu_switch(&run->scheduler, f.sp);
#else
    swapcontext(&run->scheduler, &f.ctx);
#endif
}

void suspend(State s) {
    Fiber* f = run->cur;
    f->state = s;
#if defined(__x86_64__)
    isthmus_emu_switch(&f->sp, run->scheduler);
#else
    swapcontext(&f->ctx, &run->scheduler);
#endif
}

[[noreturn]] void fail(const std::string& message) {
    if (run->error.empty()) {
        run->error = message;
    }
    suspend(FAILED);
    abort();  // a failed fiber is never resumed
}

void fiberMain() {
    run->kernel->invoker(run->kernel->fn, run->params);
#if defined(__x86_64__)
    suspend(DONE);  // never resumed
    abort();
#else
    run->cur->state = DONE;  // returning switches to uc_link, the scheduler
#endif
}

// Prepares f to start in fiberMain on its own stack.
void start(Fiber& f) {
#if defined(__x86_64__)
    // The frame isthmus_emu_switch pops: control words, r15..rbp, then a return address. fiberMain is entered as
    // if called, so the stack pointer after that `ret` must be 8 mod 16 (hence the zero "return address" above).
    uintptr_t top = ((uintptr_t)f.stack + kStackBytes) & ~(uintptr_t)15;
    uint64_t* sp = reinterpret_cast<uint64_t*>(top);
    *--sp = 0;                                         // fiberMain's (unused) return address
    *--sp = (uint64_t)(uintptr_t)&fiberMain;           // popped by ret
    for (int i = 0; i < 6; i++) {
        *--sp = 0;                                     // rbp, rbx, r12..r15
    }
    *--sp = 0x037Full << 32 | 0x1F80u;                 // mxcsr (low), x87 control word (high)
    f.sp = sp;
#else
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack;
    f.ctx.uc_stack.ss_size = kStackBytes;
    f.ctx.uc_link = &run->scheduler;
    makecontext(&f.ctx, fiberMain, 0);
#endif
}

std::string dimText(const dim3& d) {
    return "(" + std::to_string(d.x) + "," + std::to_string(d.y) + "," + std::to_string(d.z) + ")";
}

// Runs one block to completion; false (with run->error) on a failure.
bool runBlock(const dim3& grid, const dim3& block, const dim3& blockIndex) {
    const int threads = (int)(block.x * block.y * block.z);
    for (int t = 0; t < threads; t++) {
        Fiber& f = run->fibers[t];
        f.state = RUNNABLE;
        f.linear = t;
        f.lane = t & 31;
        f.warp = t >> 5;
        f.shuffles = 0;
        f.tc.thread = dim3{(unsigned)(t % block.x), (unsigned)((t / block.x) % block.y),
                              (unsigned)(t / (block.x * block.y))};
        f.tc.block = blockIndex;
        f.tc.blockSize = block;
        f.tc.gridSize = grid;
        start(f);
    }
    for (Slot& s : run->slots) {
        s.count = -1;
    }
    const int warps = (threads + 31) / 32;
    while (true) {
        for (int i = 0; i < threads; i++) {
            Fiber& f = run->fibers[reverseOrder ? threads - 1 - i : i];
            if (f.state != RUNNABLE) {
                continue;
            }
            run->cur = &f;
            current = &f.tc;
            resume(f);
            current = nullptr;
            if (f.state == FAILED) {
                run->error += " [block " + dimText(blockIndex) + ", thread " + dimText(f.tc.thread) + "]";
                return false;
            }
        }
        bool released = false;
        for (int w = 0; w < warps; w++) {
            int live = 0;
            int waiting = 0;
            for (int t = w * 32; t < threads && t < w * 32 + 32; t++) {
                State s = run->fibers[t].state;
                live += s != DONE;
                waiting += s == WAIT_WARP;
            }
            if (live > 0 && waiting == live) {
                for (int t = w * 32; t < threads && t < w * 32 + 32; t++) {
                    if (run->fibers[t].state == WAIT_WARP) {
                        run->fibers[t].state = RUNNABLE;
                    }
                }
                released = true;
            }
        }
        if (released) {
            continue;
        }
        int live = 0;
        int atBarrier = 0;
        for (int t = 0; t < threads; t++) {
            State s = run->fibers[t].state;
            live += s != DONE;
            atBarrier += s == WAIT_BLOCK;
        }
        if (live == 0) {
            return true;
        }
        if (atBarrier == live) {
            for (int t = 0; t < threads; t++) {
                if (run->fibers[t].state == WAIT_BLOCK) {
                    run->fibers[t].state = RUNNABLE;
                }
            }
            continue;
        }
        run->error = "deadlock in block " + dimText(blockIndex) + ": " + std::to_string(atBarrier) +
                     " thread(s) wait at __syncthreads while " + std::to_string(live - atBarrier) +
                     " wait at a warp shuffle that not all lanes of their warp reach";
        return false;
    }
}

}  // namespace

void syncthreads() {
    suspend(WAIT_BLOCK);
}

void syncwarp() {
    suspend(WAIT_WARP);
}

int current_lane() {
    return run->cur->lane;
}

uint64_t shuffle_exchange(uint64_t bits, int srcLane) {
    Fiber* f = run->cur;
    const int base = f->warp * 32;
    f->shuffles++;
    run->slots[f->linear] = Slot{bits, f->shuffles};
    suspend(WAIT_WARP);
    const int src = base + srcLane;
    if (src >= (int)run->fibers.size() || src >= (int)run->slots.size() ||
        run->slots[src].count != f->shuffles) {
        fail("warp shuffle: lane " + std::to_string(f->lane) + " reads lane " + std::to_string(srcLane) +
             ", which does not take part in the same shuffle");
    }
    const uint64_t result = run->slots[src].bits;
    suspend(WAIT_WARP);  // nobody overwrites its slot before everyone has read
    return result;
}

unsigned char* dynamic_shared() {
    return run->dynamicShared.data();
}

void register_kernel(const char* name, void* fn, Invoker invoker, const char* signature) {
    registry()[name] = Kernel{name, fn, invoker, signature};
}

}  // namespace emu

// ---- C API used by dev.isthmus.backend.cuda.EmulatorApi ---------------------------------------------------

EMU_API int isthmus_emu_kernel_count() {
    return (int)emu::registry().size();
}

// Name of kernel i (in name order), or NULL.
EMU_API const char* isthmus_emu_kernel_name(int i) {
    if (i < 0 || i >= (int)emu::registry().size()) {
        return nullptr;
    }
    auto it = emu::registry().begin();
    std::advance(it, i);
    return it->second.name.c_str();
}

// Parameter kinds of a kernel, one letter per parameter: p pointer, i 32-bit integer, l 64-bit integer,
// f float, d double; NULL if there is no such kernel.
EMU_API const char* isthmus_emu_kernel_signature(const char* name) {
    auto it = emu::registry().find(name);
    return it == emu::registry().end() ? nullptr : it->second.signature.c_str();
}

EMU_API const char* isthmus_emu_last_error() {
    return emu::lastError.c_str();
}

// 1: run the threads of a block in reverse order (shakes out missing barriers), 0: in order.
EMU_API void isthmus_emu_set_reverse_order(int reverse) {
    std::lock_guard<std::mutex> g(emu::launchLock);
    emu::reverseOrder = reverse != 0;
}

namespace {
std::mutex memLock;
long long allocations = 0;
long long frees = 0;
long long liveBytes = 0;
std::map<uintptr_t, size_t> live;
}  // namespace

// Like cuMemAlloc: 256-byte aligned device ("host", here) memory.
EMU_API int isthmus_emu_mem_alloc(uint64_t* ptr, size_t bytes) {
    if (bytes == 0) {
        return emu::CUDA_ERROR_INVALID_VALUE;
    }
    void* p = nullptr;
    if (posix_memalign(&p, 256, bytes) != 0) {
        return emu::CUDA_ERROR_OUT_OF_MEMORY;
    }
    memset(p, 0xA5, bytes);  // device memory is not zeroed: neither is this
    std::lock_guard<std::mutex> g(memLock);
    live[(uintptr_t)p] = bytes;
    allocations++;
    liveBytes += (long long)bytes;
    *ptr = (uint64_t)(uintptr_t)p;
    return emu::CUDA_SUCCESS;
}

EMU_API int isthmus_emu_mem_free(uint64_t ptr) {
    std::lock_guard<std::mutex> g(memLock);
    auto it = live.find((uintptr_t)ptr);
    if (it == live.end()) {
        return emu::CUDA_ERROR_INVALID_VALUE;
    }
    liveBytes -= (long long)it->second;
    live.erase(it);
    frees++;
    free((void*)(uintptr_t)ptr);
    return emu::CUDA_SUCCESS;
}

// Counters of isthmus_emu_mem_alloc/free: {allocations, frees, live bytes}.
EMU_API void isthmus_emu_mem_stats(long long* out) {
    std::lock_guard<std::mutex> g(memLock);
    out[0] = allocations;
    out[1] = frees;
    out[2] = liveBytes;
}

// Like cuLaunchKernel with kernelParams (an array of pointers to the argument values) and no `extra`.
EMU_API int isthmus_emu_launch(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                               unsigned bz, unsigned sharedBytes, void** params) {
    std::lock_guard<std::mutex> g(emu::launchLock);
    auto it = emu::registry().find(name);
    if (it == emu::registry().end()) {
        emu::lastError = std::string("no kernel named ") + name;
        return emu::CUDA_ERROR_NOT_FOUND;
    }
    const unsigned long long threads = (unsigned long long)bx * by * bz;
    if (bx == 0 || by == 0 || bz == 0 || bx > 1024 || by > 1024 || bz > 64 || threads > 1024) {
        emu::lastError = "invalid block " + emu::dimText(dim3{bx, by, bz}) + " for " + name;
        return emu::CUDA_ERROR_INVALID_VALUE;
    }
    if (gx == 0 || gy == 0 || gz == 0 || gx > 2147483647u || gy > 65535 || gz > 65535) {
        emu::lastError = "invalid grid " + emu::dimText(dim3{gx, gy, gz}) + " for " + name;
        return emu::CUDA_ERROR_INVALID_VALUE;
    }
    if (sharedBytes > emu::kMaxDynamicShared) {
        emu::lastError = std::to_string(sharedBytes) + " bytes of dynamic shared memory for " + name +
                         " (limit without opt-in: 49152)";
        return emu::CUDA_ERROR_INVALID_VALUE;
    }
    emu::Run r;
    r.kernel = &it->second;
    r.params = params;
    r.fibers.resize(threads);
    r.slots.resize(((threads + 31) / 32) * 32);
    for (size_t t = 0; t < threads; t++) {
        r.fibers[t].stack = emu::stackFor(t);
        if (!r.fibers[t].stack) {
            emu::lastError = "out of memory for fiber stacks";
            return emu::CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    // Shared memory starts with garbage on a GPU; all-ones bytes are NaN in every float format.
    r.dynamicShared.assign(sharedBytes + 16, 0xFF);
    emu::run = &r;
    const dim3 grid{gx, gy, gz};
    const dim3 block{bx, by, bz};
    for (unsigned z = 0; z < gz; z++) {
        for (unsigned y = 0; y < gy; y++) {
            for (unsigned x = 0; x < gx; x++) {
                if (!emu::runBlock(grid, block, dim3{x, y, z})) {
                    emu::lastError = std::string(name) + ": " + r.error;
                    emu::run = nullptr;
                    return emu::CUDA_ERROR_LAUNCH_FAILED;
                }
            }
        }
    }
    emu::run = nullptr;
    return emu::CUDA_SUCCESS;
}

// ---- cublasGemmEx, as the cuBLAS documentation defines it -------------------------------------------------
// Column-major: C (m x n, ldc) = alpha op(A) op(B) + beta C, op(A) m x k, op(B) k x n; op N = 0, T = 1.
// A is m x k (lda >= m) for N and k x m (lda >= k) for T; B is k x n (ldb >= k) for N, n x k (ldb >= n) for T.
// Types (cudaDataType): 0 = CUDA_R_32F, 2 = CUDA_R_16F, 14 = CUDA_R_16BF; A and B of the same type, C 32F.
// Compute type 68 (CUBLAS_COMPUTE_32F) or 77 (32F_FAST_TF32), alpha and beta as float. Returns cublasStatus_t.

namespace {

constexpr int CUBLAS_STATUS_SUCCESS = 0;
constexpr int CUBLAS_STATUS_INVALID_VALUE = 7;
constexpr int CUBLAS_STATUS_NOT_SUPPORTED = 15;

double element(const void* base, int type, long long index) {
    switch (type) {
        case 0:
            return static_cast<const float*>(base)[index];
        case 2:
            return emu::f16_to_f32(static_cast<const uint16_t*>(base)[index]);
        default:
            return __uint_as_float((unsigned)static_cast<const uint16_t*>(base)[index] << 16);
    }
}

int gemm(int transa, int transb, int m, int n, int k, const void* alpha, const void* A, int Atype, int lda,
         long long strideA, const void* B, int Btype, int ldb, long long strideB, const void* beta, void* C,
         int Ctype, int ldc, long long strideC, int batch, int computeType) {
    if (m < 0 || n < 0 || k < 0 || batch < 0 || (transa != 0 && transa != 1) || (transb != 0 && transb != 1)) {
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (lda < (transa == 0 ? (m > 1 ? m : 1) : (k > 1 ? k : 1)) ||
        ldb < (transb == 0 ? (k > 1 ? k : 1) : (n > 1 ? n : 1)) || ldc < (m > 1 ? m : 1)) {
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (Atype != Btype || (Atype != 0 && Atype != 2 && Atype != 14) || Ctype != 0 ||
        (computeType != 68 && computeType != 77)) {
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    const double a = *static_cast<const float*>(alpha);
    const double b = *static_cast<const float*>(beta);
    for (int bt = 0; bt < batch; bt++) {
        const char* Ab = static_cast<const char*>(A) + strideA * bt * (Atype == 0 ? 4 : 2);
        const char* Bb = static_cast<const char*>(B) + strideB * bt * (Btype == 0 ? 4 : 2);
        float* Cb = static_cast<float*>(C) + strideC * bt;
        for (int j = 0; j < n; j++) {
            for (int i = 0; i < m; i++) {
                double s = 0;
                for (int l = 0; l < k; l++) {
                    const double av = element(Ab, Atype, transa == 0 ? i + (long long)l * lda : l + (long long)i * lda);
                    const double bv = element(Bb, Btype, transb == 0 ? l + (long long)j * ldb : j + (long long)l * ldb);
                    s += av * bv;
                }
                float& c = Cb[i + (long long)j * ldc];
                c = (float)(a * s + (b == 0 ? 0.0 : b * c));  // beta == 0: C is not read (may hold NaN)
            }
        }
    }
    return CUBLAS_STATUS_SUCCESS;
}

}  // namespace

EMU_API int isthmus_emu_gemm_ex(int transa, int transb, int m, int n, int k, const void* alpha, const void* A,
                                int Atype, int lda, const void* B, int Btype, int ldb, const void* beta, void* C,
                                int Ctype, int ldc, int computeType, int algo) {
    (void)algo;
    return gemm(transa, transb, m, n, k, alpha, A, Atype, lda, 0, B, Btype, ldb, 0, beta, C, Ctype, ldc, 0, 1,
                computeType);
}

EMU_API int isthmus_emu_gemm_strided_batched_ex(int transa, int transb, int m, int n, int k, const void* alpha,
                                                const void* A, int Atype, int lda, long long strideA, const void* B,
                                                int Btype, int ldb, long long strideB, const void* beta, void* C,
                                                int Ctype, int ldc, long long strideC, int batch, int computeType,
                                                int algo) {
    (void)algo;
    return gemm(transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B, Btype, ldb, strideB, beta, C, Ctype, ldc,
                strideC, batch, computeType);
}
