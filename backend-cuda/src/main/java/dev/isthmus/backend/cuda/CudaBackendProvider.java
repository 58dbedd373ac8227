package dev.isthmus.backend.cuda;

import dev.isthmus.api.Device;
import dev.isthmus.api.spi.Availability;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import dev.isthmus.api.spi.BackendProvider;

import java.util.Locale;
import java.util.Map;

/**
 * The {@code cuda} backend: NVIDIA GPUs of compute capability 8.0 or newer through the CUDA driver API, with
 * cuBLAS when it is installed. Priority 100, so it is chosen over the CPU when a GPU is present.
 *
 * <p>{@link #probe()} loads {@code libcuda.so.1} lazily and reports why the backend cannot run (see
 * {@link CudaProbe}); it never throws. With {@code -Disthmus.cuda.emulator=true} (or
 * {@code ISTHMUS_CUDA_EMULATOR=1}) the backend runs on the kernel emulator instead of a GPU — the same host code
 * and kernel sources, executed on the CPU, slowly — which is how it is tested where there is no GPU.
 */
public final class CudaBackendProvider implements BackendProvider {
    /** System property that selects the kernel emulator instead of a GPU. */
    public static final String EMULATOR_PROPERTY = "isthmus.cuda.emulator";

    private volatile CudaProbe.Result driverProbe;
    private volatile int probedOrdinal = -1;

    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public int priority() {
        return 100;
    }

    static boolean emulatorRequested() {
        String p = System.getProperty(EMULATOR_PROPERTY);
        if (p != null && !p.isBlank()) {
            return Boolean.parseBoolean(p.trim());
        }
        String e = System.getenv("ISTHMUS_CUDA_EMULATOR");
        return e != null && (e.equals("1") || e.toLowerCase(Locale.ROOT).equals("true"));
    }

    @Override
    public Availability probe() {
        try {
            if (emulatorRequested()) {
                return probeEmulator();
            }
            return probeDriver(CudaOptions.from(BackendOptions.defaults()).device()).availability();
        } catch (RuntimeException | LinkageError e) {
            return Availability.unavailable("CUDA probe failed: " + e);
        }
    }

    private CudaProbe.Result probeDriver(int ordinal) {
        CudaProbe.Result r = driverProbe;
        if (r == null || probedOrdinal != ordinal) {
            r = CudaProbe.probe(new CudaProbe.RealDriver(), KernelResources.load(), ordinal);
            driverProbe = r;
            probedOrdinal = ordinal;
        }
        return r;
    }

    private static Availability probeEmulator() {
        KernelResources k = KernelResources.load();
        if (k.emulatorResource().isEmpty()) {
            return Availability.unavailable(EMULATOR_PROPERTY + " is set, but this build has no CUDA kernel emulator for "
                    + System.getProperty("os.name") + "/" + System.getProperty("os.arch"));
        }
        return Availability.available("CUDA kernel emulator on the CPU (" + EMULATOR_PROPERTY + "): the CUDA "
                + "backend's kernels and host code without a GPU, for testing; slow");
    }

    @Override
    public Backend create(BackendOptions options) {
        CudaOptions o = CudaOptions.from(options);
        if (emulatorRequested()) {
            Availability a = probeEmulator();
            if (!a.available()) {
                throw new IllegalStateException(a.detail());
            }
            return emulated(o);
        }
        CudaProbe.Result r = probeDriver(o.device());
        if (!r.availability().available()) {
            throw new IllegalStateException(r.availability().detail());
        }
        byte[] fatbin = KernelResources.load().fatbin();
        CudaProbe.DeviceInfo info = r.device();
        DriverGpu gpu = DriverGpu.open(o.device(), fatbin, info.summary(), info.multiprocessors(), o.cublas());
        try {
            return new CudaBackend(gpu, new Device("cuda:" + o.device(), false), o);
        } catch (RuntimeException e) {
            gpu.close();
            throw e;
        }
    }

    /** A CUDA backend on the kernel emulator, whatever the system properties say (for tests). */
    public static CudaBackend emulated(BackendOptions options) {
        return emulated(CudaOptions.from(options));
    }

    static CudaBackend emulated(CudaOptions o) {
        EmulatedGpu gpu = new EmulatedGpu(EmulatorApi.get(), o.cublas(), o.emulatorReverse());
        try {
            return new CudaBackend(gpu, new Device("cuda-emulator:0", false), o);
        } catch (RuntimeException e) {
            gpu.close();
            throw e;
        }
    }

    /** Options with {@code properties} set (convenience for tests and tools). */
    public static BackendOptions options(Map<String, String> properties) {
        return new BackendOptions(0, properties);
    }
}
