// TEST DOUBLE of the CUDA driver (libcuda.so.1) over the kernel emulator. Never packaged or installed: the build
// puts it in backend-cuda/target/fake-cuda-driver/, and only the surefire execution "fake-driver" puts that
// directory on LD_LIBRARY_PATH, so that the backend's real driver path — the jextract bindings
// (dev.isthmus.bindings.cuda), DriverGpu, the probe — runs end to end without a GPU.
//
// It implements the driver API functions the backend binds (same symbols and C ABI as cuda.h of CUDA 13.0) with
// the semantics the backend relies on:
//   * one device ("sm_80", 4 SMs), its primary context, streams that run work when it is queued;
//   * cuModuleLoadData[Ex] accepts only a well-formed fatbin with an sm_80 ELF, and cuModuleGetFunction finds a
//     name only if it is a global function of that ELF *and* a kernel of the emulator: the real fatbin decides;
//   * kernelParams are read with the sizes of the kernel's C signature, as the driver does;
//   * stream capture records work and runs it at cuGraphLaunch; what CUDA forbids during a capture
//     (synchronizing, pageable-memory copies, cuMemFree) returns CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED.
#include <string.h>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#define API extern "C" __attribute__((visibility("default")))

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;

extern "C" {
int isthmus_emu_launch(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                       unsigned sharedBytes, void** params);
const char* isthmus_emu_kernel_signature(const char* name);
const char* isthmus_emu_last_error();
int isthmus_emu_mem_alloc(uint64_t* ptr, size_t bytes);
int isthmus_emu_mem_free(uint64_t ptr);
}

namespace {

constexpr CUresult OK = 0;
constexpr CUresult INVALID_VALUE = 1;
constexpr CUresult NOT_INITIALIZED = 3;
constexpr CUresult INVALID_DEVICE = 101;
constexpr CUresult INVALID_IMAGE = 200;
constexpr CUresult INVALID_CONTEXT = 201;
constexpr CUresult NO_BINARY_FOR_GPU = 209;
constexpr CUresult INVALID_HANDLE = 400;
constexpr CUresult NOT_FOUND = 500;
constexpr CUresult CAPTURE_UNSUPPORTED = 900;
constexpr CUresult ILLEGAL_STATE = 401;

struct Context {
    int magic = 0x1C7;
} primary;

struct Stream {
    int magic = 0x57E;
};

struct Module {
    std::set<std::string> functions;
};

struct Function {
    std::string name;
    std::vector<int> sizes;
};

struct Event {
    double ms = 0;
};

struct Recorded {
    std::string kind;
    std::function<CUresult()> run;
};

struct Graph {
    std::vector<Recorded> work;
};

std::mutex lock;
bool initialized = false;
Stream* capturing = nullptr;
std::vector<Recorded> capture;
std::map<uintptr_t, size_t> pinned;
std::map<std::string, Function*> functions;

bool isPinned(const void* p, size_t n) {
    uintptr_t a = (uintptr_t)p;
    auto it = pinned.upper_bound(a);
    if (it == pinned.begin()) {
        return false;
    }
    --it;
    return a >= it->first && a + n <= it->first + it->second;
}

// Queues work: recorded while capturing, run now otherwise.
CUresult queue(const std::string& kind, std::function<CUresult()> work) {
    if (capturing) {
        capture.push_back(Recorded{kind, std::move(work)});
        return OK;
    }
    return work();
}

uint32_t u32(const unsigned char* p) { uint32_t v; memcpy(&v, p, 4); return v; }
uint64_t u64(const unsigned char* p) { uint64_t v; memcpy(&v, p, 8); return v; }
uint16_t u16(const unsigned char* p) { uint16_t v; memcpy(&v, p, 2); return v; }

// The global functions of the sm_80 ELF of a fatbin, or an error.
CUresult parseFatbin(const unsigned char* image, std::set<std::string>& out) {
    if (u32(image) != 0xBA55ED50u || u16(image + 4) != 1 || u16(image + 6) != 16) {
        return INVALID_IMAGE;
    }
    const uint64_t size = u64(image + 8);
    const unsigned char* end = image + 16 + size;
    const unsigned char* e = image + 16;
    while (e + 64 <= end) {
        const uint16_t kind = u16(e);
        const uint32_t header = u32(e + 4);
        const uint64_t payload = u64(e + 8);
        const uint32_t arch = u32(e + 28);
        const uint64_t flags = u64(e + 40);
        if (header < 64 || e + header + payload > end) {
            return INVALID_IMAGE;
        }
        if (kind == 2 && arch == 80) {
            if (flags & (0x2000 | 0x8000)) {
                return INVALID_IMAGE;  // compressed: the build passes --no-compress
            }
            const unsigned char* elf = e + header;
            if (memcmp(elf, "\x7f" "ELF", 4) != 0) {
                return INVALID_IMAGE;
            }
            const uint64_t shoff = u64(elf + 0x28);
            const uint16_t shentsize = u16(elf + 0x3A);
            const uint16_t shnum = u16(elf + 0x3C);
            for (int i = 0; i < shnum; i++) {
                const unsigned char* sh = elf + shoff + (uint64_t)i * shentsize;
                if (u32(sh + 4) != 2) {  // SHT_SYMTAB
                    continue;
                }
                const uint64_t off = u64(sh + 0x18);
                const uint64_t len = u64(sh + 0x20);
                const uint32_t link = u32(sh + 0x28);
                const uint64_t ent = u64(sh + 0x38);
                const unsigned char* str = elf + u64(elf + shoff + (uint64_t)link * shentsize + 0x18);
                for (uint64_t s = off; s + ent <= off + len; s += ent) {
                    const unsigned char info = elf[s + 4];
                    if ((info & 0xF) == 2 && (info >> 4) == 1) {  // STT_FUNC, STB_GLOBAL
                        out.insert(reinterpret_cast<const char*>(str + u32(elf + s)));
                    }
                }
            }
            return OK;
        }
        e += header + payload;
    }
    return NO_BINARY_FOR_GPU;
}

}  // namespace

// Whether a stream capture is in progress (for the fake cuBLAS, which must not be called during one).
API int isthmus_fake_cuda_capturing() {
    return capturing != nullptr;
}

API CUresult cuGetErrorName(CUresult error, const char** p) {
    static std::map<int, const char*> names = {
            {0, "CUDA_SUCCESS"}, {1, "CUDA_ERROR_INVALID_VALUE"}, {2, "CUDA_ERROR_OUT_OF_MEMORY"},
            {3, "CUDA_ERROR_NOT_INITIALIZED"}, {101, "CUDA_ERROR_INVALID_DEVICE"}, {200, "CUDA_ERROR_INVALID_IMAGE"},
            {201, "CUDA_ERROR_INVALID_CONTEXT"}, {209, "CUDA_ERROR_NO_BINARY_FOR_GPU"},
            {400, "CUDA_ERROR_INVALID_HANDLE"}, {401, "CUDA_ERROR_ILLEGAL_STATE"}, {500, "CUDA_ERROR_NOT_FOUND"},
            {719, "CUDA_ERROR_LAUNCH_FAILED"}, {900, "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED"}};
    auto it = names.find(error);
    if (it == names.end()) {
        *p = nullptr;
        return INVALID_VALUE;
    }
    *p = it->second;
    return OK;
}

API CUresult cuGetErrorString(CUresult error, const char** p) {
    *p = error == 0 ? "no error" : error == 900 ? "operation not permitted when stream is capturing"
                                 : "error reported by the fake CUDA driver (kernel emulator)";
    return OK;
}

API CUresult cuInit(unsigned int flags) {
    initialized = flags == 0;
    return flags == 0 ? OK : INVALID_VALUE;
}

API CUresult cuDriverGetVersion(int* v) {
    *v = 13000;
    return OK;
}

API CUresult cuDeviceGetCount(int* n) {
    if (!initialized) {
        return NOT_INITIALIZED;
    }
    *n = 1;
    return OK;
}

API CUresult cuDeviceGet(CUdevice* d, int ordinal) {
    if (!initialized) {
        return NOT_INITIALIZED;
    }
    if (ordinal != 0) {
        return INVALID_DEVICE;
    }
    *d = 0;
    return OK;
}

API CUresult cuDeviceGetAttribute(int* v, int attribute, CUdevice d) {
    if (d != 0) {
        return INVALID_DEVICE;
    }
    switch (attribute) {
        case 75: *v = 8; return OK;     // compute capability major
        case 76: *v = 0; return OK;     // minor
        case 16: *v = 4; return OK;     // multiprocessors
        case 97: *v = 49152; return OK; // max shared memory per block (opt-in)
        default: return INVALID_VALUE;
    }
}

API CUresult cuDeviceGetName(char* name, int len, CUdevice d) {
    if (d != 0 || len <= 0) {
        return INVALID_VALUE;
    }
    strncpy(name, "Isthmus fake CUDA driver (kernel emulator)", (size_t)len - 1);
    name[len - 1] = 0;
    return OK;
}

API CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice d) {
    *bytes = (size_t)16 << 30;
    return d == 0 ? OK : INVALID_DEVICE;
}

API CUresult cuDevicePrimaryCtxRetain(void** ctx, CUdevice d) {
    if (d != 0) {
        return INVALID_DEVICE;
    }
    *ctx = &primary;
    return OK;
}

API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice d) {
    return d == 0 ? OK : INVALID_DEVICE;
}

API CUresult cuCtxSetCurrent(void* ctx) {
    return ctx == nullptr || ctx == &primary ? OK : INVALID_CONTEXT;
}

API CUresult cuCtxSynchronize() {
    return capturing ? CAPTURE_UNSUPPORTED : OK;
}

API CUresult cuModuleLoadDataEx(void** module, const void* image, unsigned int n, int* options, void** values) {
    (void)n;
    (void)options;
    (void)values;
    Module* m = new Module();
    CUresult rc = parseFatbin(static_cast<const unsigned char*>(image), m->functions);
    if (rc != OK) {
        delete m;
        return rc;
    }
    *module = m;
    return OK;
}

API CUresult cuModuleLoadData(void** module, const void* image) {
    return cuModuleLoadDataEx(module, image, 0, nullptr, nullptr);
}

API CUresult cuModuleUnload(void* module) {
    delete static_cast<Module*>(module);
    return OK;
}

API CUresult cuModuleGetFunction(void** f, void* module, const char* name) {
    Module* m = static_cast<Module*>(module);
    const char* sig = isthmus_emu_kernel_signature(name);
    if (!m || !m->functions.count(name) || !sig) {
        return NOT_FOUND;
    }
    std::lock_guard<std::mutex> g(lock);
    Function*& fn = functions[name];
    if (!fn) {
        fn = new Function{name, {}};
        for (const char* c = sig; *c; c++) {
            fn->sizes.push_back(*c == 'i' || *c == 'f' ? 4 : 8);
        }
    }
    *f = fn;
    return OK;
}

API CUresult cuFuncSetAttribute(void* f, int attribute, int value) {
    (void)attribute;
    (void)value;
    return f ? OK : INVALID_HANDLE;
}

API CUresult cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                            unsigned shared, void* stream, void** params, void** extra) {
    (void)stream;
    if (!f || extra) {
        return INVALID_VALUE;
    }
    Function* fn = static_cast<Function*>(f);
    // Copy the argument values now, with the sizes of the C signature, as the driver does.
    auto values = std::make_shared<std::vector<uint64_t>>(fn->sizes.size());
    for (size_t i = 0; i < fn->sizes.size(); i++) {
        memcpy(&(*values)[i], params[i], (size_t)fn->sizes[i]);
    }
    std::string name = fn->name;
    return queue("kernel " + name, [=]() {
        std::vector<void*> p(values->size());
        for (size_t i = 0; i < p.size(); i++) {
            p[i] = &(*values)[i];
        }
        return (CUresult)isthmus_emu_launch(name.c_str(), gx, gy, gz, bx, by, bz, shared, p.data());
    });
}

API CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t bytes) {
    uint64_t a = 0;
    CUresult rc = isthmus_emu_mem_alloc(&a, bytes);
    *p = a;
    return rc;
}

API CUresult cuMemFree_v2(CUdeviceptr p) {
    return capturing ? CAPTURE_UNSUPPORTED : (CUresult)isthmus_emu_mem_free(p);
}

API CUresult cuMemGetInfo_v2(size_t* free, size_t* total) {
    *free = (size_t)15 << 30;
    *total = (size_t)16 << 30;
    return OK;
}

API CUresult cuMemHostAlloc(void** p, size_t bytes, unsigned int flags) {
    (void)flags;
    void* a = nullptr;
    if (posix_memalign(&a, 256, bytes ? bytes : 1) != 0) {
        return 2;
    }
    std::lock_guard<std::mutex> g(lock);
    pinned[(uintptr_t)a] = bytes;
    *p = a;
    return OK;
}

API CUresult cuMemFreeHost(void* p) {
    std::lock_guard<std::mutex> g(lock);
    if (!pinned.erase((uintptr_t)p)) {
        return INVALID_VALUE;
    }
    free(p);
    return OK;
}

API CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t n) {
    if (capturing) {
        return CAPTURE_UNSUPPORTED;
    }
    memcpy((void*)dst, src, n);
    return OK;
}

API CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t n) {
    if (capturing) {
        return CAPTURE_UNSUPPORTED;
    }
    memcpy(dst, (const void*)src, n);
    return OK;
}

API CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n) {
    if (capturing) {
        return CAPTURE_UNSUPPORTED;
    }
    memmove((void*)dst, (const void*)src, n);
    return OK;
}

API CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t n, void* stream) {
    (void)stream;
    if (capturing && !isPinned(src, n)) {
        return CAPTURE_UNSUPPORTED;  // pageable memory cannot be captured
    }
    return queue("memcpy", [=]() {
        memcpy((void*)dst, src, n);
        return OK;
    });
}

API CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t n, void* stream) {
    (void)stream;
    if (capturing && !isPinned(dst, n)) {
        return CAPTURE_UNSUPPORTED;
    }
    return queue("memcpy", [=]() {
        memcpy(dst, (const void*)src, n);
        return OK;
    });
}

API CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, void* stream) {
    (void)stream;
    return queue("memcpy", [=]() {
        memmove((void*)dst, (const void*)src, n);
        return OK;
    });
}

API CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char v, size_t n, void* stream) {
    (void)stream;
    return queue("memset", [=]() {
        memset((void*)dst, v, n);
        return OK;
    });
}

API CUresult cuStreamCreate(void** s, unsigned int flags) {
    (void)flags;
    *s = new Stream();
    return OK;
}

API CUresult cuStreamSynchronize(void* s) {
    return !s ? INVALID_HANDLE : capturing ? CAPTURE_UNSUPPORTED : OK;
}

API CUresult cuStreamDestroy_v2(void* s) {
    if (capturing == s) {
        return ILLEGAL_STATE;
    }
    delete static_cast<Stream*>(s);
    return OK;
}

API CUresult cuEventCreate(void** e, unsigned int flags) {
    (void)flags;
    *e = new Event();
    return OK;
}

API CUresult cuEventRecord(void* e, void* s) {
    (void)e;
    (void)s;
    return OK;
}

API CUresult cuEventSynchronize(void* e) {
    return e ? OK : INVALID_HANDLE;
}

API CUresult cuEventElapsedTime_v2(float* ms, void* start, void* end) {
    (void)start;
    (void)end;
    *ms = 0;
    return OK;
}

API CUresult cuEventDestroy_v2(void* e) {
    delete static_cast<Event*>(e);
    return OK;
}

API CUresult cuStreamBeginCapture_v2(void* s, int mode) {
    (void)mode;
    if (capturing) {
        return ILLEGAL_STATE;
    }
    capturing = static_cast<Stream*>(s);
    capture.clear();
    return OK;
}

API CUresult cuStreamEndCapture(void* s, void** graph) {
    if (capturing != s) {
        return ILLEGAL_STATE;
    }
    capturing = nullptr;
    *graph = new Graph{capture};
    capture.clear();
    return OK;
}

API CUresult cuGraphInstantiateWithFlags(void** exec, void* graph, unsigned long long flags) {
    (void)flags;
    *exec = new Graph{static_cast<Graph*>(graph)->work};
    return OK;
}

// CUgraphExecUpdateResultInfo: { int result; void* errorNode; void* errorFromNode; }
API CUresult cuGraphExecUpdate_v2(void* exec, void* graph, void* info) {
    Graph* target = static_cast<Graph*>(exec);
    Graph* source = static_cast<Graph*>(graph);
    int result = 0;  // CU_GRAPH_EXEC_UPDATE_SUCCESS
    if (target->work.size() != source->work.size()) {
        result = 2;  // CU_GRAPH_EXEC_UPDATE_ERROR_TOPOLOGY_CHANGED
    } else {
        for (size_t i = 0; i < target->work.size(); i++) {
            if (target->work[i].kind != source->work[i].kind) {
                result = 3;  // CU_GRAPH_EXEC_UPDATE_ERROR_NODE_TYPE_CHANGED
            }
        }
    }
    memcpy(info, &result, 4);
    memset(static_cast<char*>(info) + 8, 0, 16);
    if (result != 0) {
        return 910;  // CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE
    }
    target->work = source->work;
    return OK;
}

API CUresult cuGraphLaunch(void* exec, void* stream) {
    (void)stream;
    if (capturing) {
        return CAPTURE_UNSUPPORTED;
    }
    for (Recorded& r : static_cast<Graph*>(exec)->work) {
        CUresult rc = r.run();
        if (rc != OK) {
            return rc;
        }
    }
    return OK;
}

API CUresult cuGraphExecDestroy(void* exec) {
    delete static_cast<Graph*>(exec);
    return OK;
}

API CUresult cuGraphDestroy(void* graph) {
    delete static_cast<Graph*>(graph);
    return OK;
}
