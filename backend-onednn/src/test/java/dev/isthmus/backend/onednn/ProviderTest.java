package dev.isthmus.backend.onednn;

import dev.isthmus.api.DType;
import dev.isthmus.api.Op;
import dev.isthmus.api.discovery.Backends;
import dev.isthmus.api.discovery.Capabilities;
import dev.isthmus.api.spi.Availability;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import dev.isthmus.api.spi.BackendProvider;
import dev.isthmus.bindings.onednn.dnnl_h;
import org.junit.jupiter.api.Test;

import java.net.URL;
import java.net.URLClassLoader;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ProviderTest {

    @Test
    void registeredAndAvailableWithVersionAndIsa() {
        BackendProvider p = ServiceLoader.load(BackendProvider.class).stream().map(ServiceLoader.Provider::get)
                .filter(x -> x.name().equals("onednn")).findFirst().orElseThrow();
        assertEquals(-10, p.priority());
        Availability a = p.probe();
        assertTrue(a.available(), a.detail());
        assertTrue(a.detail().startsWith("oneDNN 3."), a.detail());
        assertTrue(a.detail().contains("ISA "), a.detail());
        assertTrue(a.detail().contains("org.bytedeco:dnnl"), a.detail());
        // A second probe answers from the loaded state.
        assertEquals(a, p.probe());
    }

    @Test
    void selectedByName() {
        assertEquals("onednn", Backends.select("onednn").name());
    }

    @Test
    void withoutTheCpuBackendClaimsMatmulAndRowOpsOnly() {
        try (Backend b = new OneDnnBackendProvider().create(new BackendOptions(0, Map.of("cpuDelegate", "false")))) {
            for (DType t : List.of(DType.F32, DType.F16, DType.BF16, DType.Q8_0, DType.Q4_0, DType.Q5_0)) {
                assertTrue(b.supports(Op.MATMUL, t), "matmul " + t + ": " + ((OneDnnBackend) b).matmulImplementations());
            }
            for (Op op : List.of(Op.RMS_NORM, Op.LAYER_NORM, Op.ADD, Op.MUL, Op.SCALE, Op.SILU, Op.GELU, Op.SWIGLU,
                    Op.SOFTMAX)) {
                assertTrue(b.supports(op, DType.F32), op.toString());
            }
            assertFalse(b.supports(Op.MATMUL, DType.Q4_K));
            assertFalse(b.supports(Op.ATTENTION, DType.F16));
            assertFalse(b.supports(Op.MATMUL, DType.F32, DType.Q4_K), "every dtype must be supported");
            List<Capabilities.Pair> gaps = Capabilities.gaps(b);
            assertTrue(gaps.contains(new Capabilities.Pair(Op.ROPE, DType.F32)));
            assertThrows(UnsupportedOperationException.class, () -> b.argmax(null));
        }
    }

    @Test
    void withTheCpuBackendOnTheClassPathCoversEveryOpAndDtype() {
        try (OneDnnBackend b = (OneDnnBackend) new OneDnnBackendProvider().create(BackendOptions.defaults())) {
            assertTrue(b.hasCpuDelegate());
            assertEquals(List.of(), Capabilities.gaps(b));
            assertFalse(b.onOneDnn(Op.ATTENTION, DType.F16));
            assertTrue(b.onOneDnn(Op.MATMUL, DType.Q8_0));
        }
    }

    @Test
    void matmulImplementationsAreJittedOnThisCpu() {
        try (OneDnnBackend b = (OneDnnBackend) new OneDnnBackendProvider().create(BackendOptions.defaults())) {
            b.matmulImplementations().forEach((kind, impl) ->
                    assertFalse(impl.startsWith("ref") || impl.startsWith("unavailable"), kind + ": " + impl));
        }
    }

    @Test
    void unavailableWithReasonWhenTheNativesJarIsMissing() throws Exception {
        // A class loader with the backend, the bindings and the API, but not org.bytedeco:dnnl.
        URL[] path = {
                OneDnnBackendProvider.class.getProtectionDomain().getCodeSource().getLocation(),
                dnnl_h.class.getProtectionDomain().getCodeSource().getLocation(),
                BackendProvider.class.getProtectionDomain().getCodeSource().getLocation(),
        };
        try (URLClassLoader loader = new URLClassLoader(path, ClassLoader.getPlatformClassLoader())) {
            assertTrue(loader.getResource(NativeExtractor.RESOURCE_DIR + "libdnnl.so.3") == null);
            Class<?> type = loader.loadClass(OneDnnBackendProvider.class.getName());
            Object provider = type.getConstructor().newInstance();
            Object availability = type.getMethod("probe").invoke(provider);
            boolean available = (boolean) availability.getClass().getMethod("available").invoke(availability);
            String detail = (String) availability.getClass().getMethod("detail").invoke(availability);
            assertFalse(available);
            assertTrue(detail.contains(NativeExtractor.MISSING_JAR), detail);

            Class<?> options = loader.loadClass(BackendOptions.class.getName());
            Object defaults = options.getMethod("defaults").invoke(null);
            Exception e = assertThrows(Exception.class,
                    () -> type.getMethod("create", options).invoke(provider, defaults));
            Throwable cause = e.getCause() == null ? e : e.getCause();
            assertTrue(cause instanceof IllegalStateException && cause.getMessage().contains(NativeExtractor.MISSING_JAR),
                    cause.toString());
        }
    }
}
