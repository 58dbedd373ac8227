package dev.isthmus.backend.cuda;

import dev.isthmus.bindings.cuda.cuda_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;

/**
 * Loading of the CUDA driver and the error reporting every driver call shares. The jextract class
 * {@link cuda_h} loads {@code libcuda.so.1} in its static initializer; {@link #load()} checks the library with
 * {@link SymbolLookup#libraryLookup(String, Arena)} first, so that a machine without a driver gets a reason
 * instead of an {@link ExceptionInInitializerError}.
 */
final class DriverApi {
    private DriverApi() {
    }

    /** The driver library name, as the NVIDIA driver installs it. */
    static final String LIBRARY = "libcuda.so.1";

    private static volatile Boolean loaded;
    private static volatile String loadFailure;

    /**
     * Whether {@code libcuda.so.1} can be loaded; the first call tries.
     *
     * @return null if loaded, else why not
     */
    static synchronized String load() {
        if (loaded == null) {
            try {
                SymbolLookup.libraryLookup(LIBRARY, Arena.global());
                loaded = true;
            } catch (IllegalArgumentException | IllegalCallerException e) {
                loaded = false;
                loadFailure = "CUDA driver not found (" + LIBRARY + ")";
            }
        }
        return loaded ? null : loadFailure;
    }

    /** {@code NAME (code): description} of a {@code CUresult}, from the driver. */
    static String describe(int code) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            String name = cuda_h.cuGetErrorName(code, p) == 0 ? cString(p) : CudaErrors.name(code);
            String text = cuda_h.cuGetErrorString(code, p) == 0 ? cString(p) : "";
            return name + " (" + code + ")" + (text.isEmpty() ? "" : ": " + text);
        }
    }

    private static String cString(MemorySegment pointerToString) {
        MemorySegment s = pointerToString.get(ValueLayout.ADDRESS, 0);
        return s.equals(MemorySegment.NULL) ? "" : s.reinterpret(4096).getString(0);
    }

    /** Throws a {@link CudaException} naming {@code call} unless {@code code} is {@code CUDA_SUCCESS}. */
    static void check(int code, String call) {
        if (code != 0) {
            if (code == 2) {
                throw new DevicePool.OutOfDeviceMemoryException(call + ": " + describe(code));
            }
            throw new CudaException(call + " failed: " + describe(code), code);
        }
    }
}
