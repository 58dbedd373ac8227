package dev.isthmus.backend.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;
import java.util.Optional;
import java.util.Properties;

/**
 * The kernels packaged in this jar by {@code native/cuda/build.sh}: the fatbin (when nvcc was present at build
 * time), the kernel emulator library (when a host C++ compiler was), and {@code kernels.properties} saying which.
 */
public final class KernelResources {
    /** Resource directory of the kernels. */
    public static final String DIR = "dev/isthmus/backend/cuda/";
    /** The fatbin resource. */
    public static final String FATBIN = DIR + "isthmus_kernels.fatbin";
    /** The build description resource. */
    public static final String PROPERTIES = DIR + "kernels.properties";

    private final ClassLoader loader;
    private final Properties properties;

    KernelResources(ClassLoader loader, Properties properties) {
        this.loader = loader;
        this.properties = properties;
    }

    /** The resources of this jar (or class path). */
    public static KernelResources load() {
        return load(KernelResources.class.getClassLoader());
    }

    static KernelResources load(ClassLoader loader) {
        Properties p = new Properties();
        try (InputStream in = loader.getResourceAsStream(PROPERTIES)) {
            if (in != null) {
                p.load(in);
            } else {
                p.setProperty("fatbin", "absent");
                p.setProperty("fatbin.reason", "built without CUDA kernels: " + PROPERTIES
                        + " is missing (backend-cuda was not built by its Maven build)");
                p.setProperty("emulator", "absent");
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + PROPERTIES, e);
        }
        return new KernelResources(loader, p);
    }

    /** Whether the build packaged a fatbin. */
    public boolean hasFatbin() {
        return "present".equals(properties.getProperty("fatbin"));
    }

    /** Why there is no fatbin ("built without CUDA kernels: ..."). */
    public String fatbinAbsenceReason() {
        return properties.getProperty("fatbin.reason", "built without CUDA kernels");
    }

    /** The CUDA toolkit version the fatbin was built with, e.g. {@code 13.0}. */
    public String cudaVersion() {
        return properties.getProperty("cuda.version", "unknown");
    }

    /** Major version of {@link #cudaVersion()}, or 0. */
    public int cudaMajor() {
        try {
            return Integer.parseInt(cudaVersion().split("\\.")[0]);
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    /** The architectures the fatbin was built for, as the build recorded them. */
    public String targets() {
        return properties.getProperty("targets", "");
    }

    /**
     * The fatbin's bytes, checked to be a well-formed fat binary.
     *
     * @throws IllegalStateException with {@link #fatbinAbsenceReason()} if there is none, or saying what is wrong
     *                               with the resource
     */
    public byte[] fatbin() {
        return fatbin(FATBIN);
    }

    byte[] fatbin(String resource) {
        if (!hasFatbin()) {
            throw new IllegalStateException(fatbinAbsenceReason());
        }
        byte[] bytes;
        try (InputStream in = loader.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("CUDA kernels missing: " + PROPERTIES + " says the fatbin was built, "
                        + "but resource " + resource + " is not on the class path");
            }
            bytes = in.readAllBytes();
        } catch (IOException e) {
            throw new IllegalStateException("cannot read CUDA kernels from " + resource + ": " + e.getMessage(), e);
        }
        try {
            Fatbin.parse(bytes);
        } catch (Fatbin.FormatException e) {
            throw new IllegalStateException("CUDA kernels in " + resource + " are damaged: " + e.getMessage(), e);
        }
        return bytes;
    }

    /**
     * Why there is no kernel emulator for this platform, or null if there is one (for tests: they skip only when
     * the build recorded that it could not make one).
     */
    public String emulatorAbsenceReason() {
        if (emulatorResource().isPresent()) {
            return null;
        }
        return "absent".equals(properties.getProperty("emulator", "absent"))
                ? "built without the CUDA kernel emulator (no host C++ compiler when backend-cuda was built)"
                : "the CUDA kernel emulator was built for another platform (" + properties.getProperty("emulator") + ")";
    }

    /** The emulator library resource for this platform, if the build made one. */
    public Optional<String> emulatorResource() {
        String r = properties.getProperty("emulator", "absent");
        if (r.equals("absent")) {
            return Optional.empty();
        }
        String os = System.getProperty("os.name").toLowerCase(Locale.ROOT).startsWith("linux") ? "linux" : "other";
        String arch = switch (System.getProperty("os.arch")) {
            case "amd64", "x86_64" -> "x86_64";
            case "aarch64", "arm64" -> "aarch64";
            default -> System.getProperty("os.arch");
        };
        return r.endsWith("-" + os + "-" + arch + ".so") ? Optional.of(r) : Optional.empty();
    }

    /**
     * Extracts the emulator library to a temporary file (deleted on exit) and returns its path.
     *
     * @throws IllegalStateException if the build made none for this platform
     */
    public Path extractEmulator() {
        String r = emulatorResource().orElseThrow(() -> new IllegalStateException(
                "no CUDA kernel emulator for " + System.getProperty("os.name") + "/" + System.getProperty("os.arch")
                        + " in this build (it needs a host C++ compiler when backend-cuda is built)"));
        try (InputStream in = loader.getResourceAsStream(r)) {
            if (in == null) {
                throw new IllegalStateException("resource " + r + " is missing");
            }
            Path tmp = Files.createTempFile("isthmus-cuda-emu", ".so");
            tmp.toFile().deleteOnExit();
            Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
            return tmp;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot extract " + r, e);
        }
    }
}
