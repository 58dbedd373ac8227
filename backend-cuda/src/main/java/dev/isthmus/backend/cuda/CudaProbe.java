package dev.isthmus.backend.cuda;

import dev.isthmus.api.spi.Availability;
import dev.isthmus.bindings.cublas.cublas_h;
import dev.isthmus.bindings.cuda.cuda_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Locale;

/**
 * Whether the CUDA backend can run here, and if not, precisely why: no driver library, a {@code cuInit} error
 * (with its name and code), a driver older than the toolkit that built the kernels, no device, a device too old
 * for the kernels (compute capability below 8.0), or a build without kernels. Never throws.
 */
final class CudaProbe {
    private CudaProbe() {
    }

    /** Oldest compute capability the fatbin has code for (sm_80). */
    static final int MIN_COMPUTE_CAPABILITY = 80;

    /** What the probe found about the device, when there is one. */
    record DeviceInfo(int ordinal, String name, int ccMajor, int ccMinor, long totalBytes, int multiprocessors,
                      int driverVersion) {
        String summary() {
            return String.format(Locale.ROOT, "%s, compute capability %d.%d, %.1f GiB, %d SMs, driver CUDA %d.%d", name,
                    ccMajor, ccMinor, totalBytes / (double) (1L << 30), multiprocessors, driverVersion / 1000,
                    driverVersion % 1000 / 10);
        }
    }

    /** The probe's answer and, if a device was found, what it is. */
    record Result(Availability availability, DeviceInfo device) {
    }

    /** The driver calls the probe makes (a fake in tests). Each returns a {@code CUresult}. */
    interface Driver {
        /** Loads the library: null, or why it cannot be loaded. */
        String load();

        int init();

        int driverVersion(int[] out);

        int deviceCount(int[] out);

        int device(int ordinal, int[] out);

        int attribute(int attribute, int device, int[] out);

        int name(int device, String[] out);

        int totalMem(int device, long[] out);

        /** {@code NAME (code): description}. */
        String describe(int code);
    }

    static final int ATTR_CC_MAJOR = 75;
    static final int ATTR_CC_MINOR = 76;
    static final int ATTR_MULTIPROCESSORS = 16;

    static Result probe(Driver d, KernelResources kernels, int ordinal) {
        try {
            return probeUnchecked(d, kernels, ordinal);
        } catch (RuntimeException | LinkageError e) {
            return new Result(Availability.unavailable("CUDA probe failed: " + e), null);
        }
    }

    private static Result unavailable(String reason) {
        return new Result(Availability.unavailable(reason), null);
    }

    private static Result probeUnchecked(Driver d, KernelResources kernels, int ordinal) {
        String why = d.load();
        if (why != null) {
            return unavailable(why);
        }
        int rc = d.init();
        if (rc != 0) {
            return unavailable("cuInit failed: " + d.describe(rc));
        }
        int[] v = new int[1];
        rc = d.driverVersion(v);
        if (rc != 0) {
            return unavailable("cuDriverGetVersion failed: " + d.describe(rc));
        }
        int driver = v[0];
        int needed = kernels.cudaMajor();
        if (kernels.hasFatbin() && needed > 0 && driver / 1000 < needed) {
            return unavailable(String.format(Locale.ROOT, "insufficient driver: it supports CUDA %d.%d (%d), the kernels "
                            + "were built with CUDA %s; install an NVIDIA driver for CUDA %d or newer",
                    driver / 1000, driver % 1000 / 10, driver, kernels.cudaVersion(), needed));
        }
        rc = d.deviceCount(v);
        if (rc != 0) {
            return unavailable("cuDeviceGetCount failed: " + d.describe(rc));
        }
        if (v[0] == 0) {
            return unavailable("no CUDA device");
        }
        if (ordinal < 0 || ordinal >= v[0]) {
            return unavailable("no CUDA device " + ordinal + " (" + v[0] + " found; set cuda.device)");
        }
        rc = d.device(ordinal, v);
        if (rc != 0) {
            return unavailable("cuDeviceGet(" + ordinal + ") failed: " + d.describe(rc));
        }
        int dev = v[0];
        int[] major = new int[1];
        int[] minor = new int[1];
        int[] sms = new int[1];
        String[] name = new String[1];
        long[] mem = new long[1];
        if ((rc = d.attribute(ATTR_CC_MAJOR, dev, major)) != 0 || (rc = d.attribute(ATTR_CC_MINOR, dev, minor)) != 0
                || (rc = d.attribute(ATTR_MULTIPROCESSORS, dev, sms)) != 0 || (rc = d.name(dev, name)) != 0
                || (rc = d.totalMem(dev, mem)) != 0) {
            return unavailable("querying CUDA device " + ordinal + " failed: " + d.describe(rc));
        }
        DeviceInfo info = new DeviceInfo(ordinal, name[0], major[0], minor[0], mem[0], sms[0], driver);
        if (major[0] * 10 + minor[0] < MIN_COMPUTE_CAPABILITY) {
            return unavailable(info.name() + " has compute capability " + major[0] + "." + minor[0]
                    + "; the CUDA kernels need 8.0 or newer (built for " + kernels.targets() + ")");
        }
        if (!kernels.hasFatbin()) {
            return unavailable(kernels.fatbinAbsenceReason() + " (device: " + info.summary() + ")");
        }
        String blas;
        try {
            blas = "cuBLAS " + cublas_h.load();
        } catch (IllegalStateException e) {
            blas = "no cuBLAS (matmul uses the Isthmus kernels only): " + e.getMessage();
        }
        return new Result(Availability.available(info.summary() + "; kernels CUDA " + kernels.cudaVersion() + " ("
                + kernels.targets() + "); " + blas), info);
    }

    /** {@link Driver} over the CUDA driver API ({@link cuda_h}), loaded through {@link DriverApi}. */
    static final class RealDriver implements Driver {
        @Override
        public String load() {
            return DriverApi.load();
        }

        @Override
        public int init() {
            return cuda_h.cuInit(0);
        }

        private interface IntCall {
            int call(MemorySegment out);
        }

        private static int intOut(int[] out, IntCall call) {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment s = a.allocate(ValueLayout.JAVA_INT);
                int rc = call.call(s);
                out[0] = s.get(ValueLayout.JAVA_INT, 0);
                return rc;
            }
        }

        @Override
        public int driverVersion(int[] out) {
            return intOut(out, cuda_h::cuDriverGetVersion);
        }

        @Override
        public int deviceCount(int[] out) {
            return intOut(out, cuda_h::cuDeviceGetCount);
        }

        @Override
        public int device(int ordinal, int[] out) {
            return intOut(out, s -> cuda_h.cuDeviceGet(s, ordinal));
        }

        @Override
        public int attribute(int attribute, int device, int[] out) {
            return intOut(out, s -> cuda_h.cuDeviceGetAttribute(s, attribute, device));
        }

        @Override
        public int name(int device, String[] out) {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment s = a.allocate(256);
                int rc = cuda_h.cuDeviceGetName(s, 256, device);
                out[0] = s.getString(0);
                return rc;
            }
        }

        @Override
        public int totalMem(int device, long[] out) {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment s = a.allocate(ValueLayout.JAVA_LONG);
                int rc = cuda_h.cuDeviceTotalMem_v2(s, device);
                out[0] = s.get(ValueLayout.JAVA_LONG, 0);
                return rc;
            }
        }

        @Override
        public String describe(int code) {
            return DriverApi.describe(code);
        }
    }
}
