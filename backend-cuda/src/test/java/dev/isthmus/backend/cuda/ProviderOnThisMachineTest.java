package dev.isthmus.backend.cuda;

import dev.isthmus.api.DType;
import dev.isthmus.api.Op;
import dev.isthmus.api.discovery.BackendUnavailableException;
import dev.isthmus.api.discovery.Backends;
import dev.isthmus.api.spi.Availability;
import dev.isthmus.api.spi.BackendOptions;
import dev.isthmus.api.spi.BackendProvider;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.util.ServiceLoader;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The provider as ServiceLoader finds it, probed on this machine for real. Where there is no usable GPU (the
 * development machines and CI), {@code cuda} must be unavailable with the driver's reason, quickly, without
 * throwing, and selecting it by name must fail with that reason.
 */
class ProviderOnThisMachineTest {

    private static BackendProvider provider() {
        return ServiceLoader.load(BackendProvider.class).stream().map(ServiceLoader.Provider::get)
                .filter(p -> p.name().equals("cuda")).findFirst().orElseThrow();
    }

    @Test
    void isRegisteredWithItsNameAndPriority() {
        BackendProvider p = provider();
        assertEquals(CudaBackendProvider.class, p.getClass());
        assertEquals(100, p.priority());
    }

    @Test
    void probeGivesAReasonWithoutThrowing() {
        long start = System.nanoTime();
        Availability a = provider().probe();
        long ms = (System.nanoTime() - start) / 1_000_000;
        assertNotNull(a.detail());
        assertFalse(a.detail().isBlank());
        assertFalse(a.detail().contains("Exception"), a.detail());
        assertTrue(ms < 5000, "probe took " + ms + " ms");
        if (!a.available()) {
            // The reasons the probe gives before finding a usable device.
            assertTrue(a.detail().equals("CUDA driver not found (libcuda.so.1)") || a.detail().startsWith("cuInit failed: ")
                    || a.detail().startsWith("insufficient driver") || a.detail().startsWith("no CUDA device")
                    || a.detail().contains("compute capability") || a.detail().startsWith("built without CUDA kernels"),
                    a.detail());
        }
    }

    @Test
    void withoutADriverLibraryTheReasonIsExactlyThat() {
        Assumptions.assumeTrue(DriverApi.load() != null, "libcuda.so.1 is present here");
        Availability a = provider().probe();
        assertEquals(Availability.unavailable("CUDA driver not found (libcuda.so.1)"), a);
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> provider().create(BackendOptions.defaults()));
        assertEquals("CUDA driver not found (libcuda.so.1)", e.getMessage());
        BackendUnavailableException named = assertThrows(BackendUnavailableException.class, () -> Backends.select("cuda"));
        assertEquals("backend 'cuda' is unavailable: CUDA driver not found (libcuda.so.1)", named.getMessage());
    }

    @Test
    void theEmulatorIsOnlyUsedWhenAskedFor() {
        String why = KernelResources.load().emulatorAbsenceReason();
        Assumptions.assumeTrue(why == null, why);
        String before = System.getProperty(CudaBackendProvider.EMULATOR_PROPERTY);
        try {
            System.setProperty(CudaBackendProvider.EMULATOR_PROPERTY, "true");
            Availability a = provider().probe();
            assertTrue(a.available(), a.detail());
            assertTrue(a.detail().startsWith("CUDA kernel emulator on the CPU"), a.detail());
            try (var b = provider().create(BackendOptions.defaults())) {
                assertEquals("cuda", b.name());
                assertFalse(b.device().hostAccessible());
                assertTrue(b.supports(Op.MATMUL, DType.Q4_K));
                assertFalse(b.supports(Op.TOP_K, DType.F32));
            }
        } finally {
            if (before == null) {
                System.clearProperty(CudaBackendProvider.EMULATOR_PROPERTY);
            } else {
                System.setProperty(CudaBackendProvider.EMULATOR_PROPERTY, before);
            }
        }
    }
}
