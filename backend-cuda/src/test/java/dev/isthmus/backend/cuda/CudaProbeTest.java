package dev.isthmus.backend.cuda;

import dev.isthmus.api.spi.Availability;
import org.junit.jupiter.api.Test;

import java.util.Properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Each reason the probe can give, with a fake driver; and that it never throws. */
class CudaProbeTest {

    /** A driver that answers from fields; 0 = CUDA_SUCCESS. */
    static class FakeDriver implements CudaProbe.Driver {
        String loadFailure;
        int initResult;
        int version = 13000;
        int count = 1;
        int major = 8;
        int minor = 0;
        String name = "NVIDIA A100-SXM4-80GB";
        long memory = 80L << 30;
        int sms = 108;
        int attributeResult;

        @Override
        public String load() {
            return loadFailure;
        }

        @Override
        public int init() {
            return initResult;
        }

        @Override
        public int driverVersion(int[] out) {
            out[0] = version;
            return 0;
        }

        @Override
        public int deviceCount(int[] out) {
            out[0] = count;
            return 0;
        }

        @Override
        public int device(int ordinal, int[] out) {
            out[0] = ordinal;
            return 0;
        }

        @Override
        public int attribute(int attribute, int device, int[] out) {
            out[0] = switch (attribute) {
                case CudaProbe.ATTR_CC_MAJOR -> major;
                case CudaProbe.ATTR_CC_MINOR -> minor;
                case CudaProbe.ATTR_MULTIPROCESSORS -> sms;
                default -> throw new AssertionError("attribute " + attribute);
            };
            return attributeResult;
        }

        @Override
        public int name(int device, String[] out) {
            out[0] = name;
            return 0;
        }

        @Override
        public int totalMem(int device, long[] out) {
            out[0] = memory;
            return 0;
        }

        @Override
        public String describe(int code) {
            return CudaErrors.name(code) + " (" + code + ")";
        }
    }

    static KernelResources kernels(boolean fatbin) {
        Properties p = new Properties();
        if (fatbin) {
            p.setProperty("fatbin", "present");
            p.setProperty("cuda.version", "13.0");
            p.setProperty("targets", "sm_80,sm_90,compute_90");
        } else {
            p.setProperty("fatbin", "absent");
            p.setProperty("fatbin.reason", "built without CUDA kernels: no nvcc found");
        }
        return new KernelResources(CudaProbeTest.class.getClassLoader(), p);
    }

    static Availability probe(FakeDriver d, boolean fatbin) {
        return CudaProbe.probe(d, kernels(fatbin), 0).availability();
    }

    @Test
    void noDriverLibrary() {
        FakeDriver d = new FakeDriver();
        d.loadFailure = "CUDA driver not found (libcuda.so.1)";
        assertEquals(Availability.unavailable("CUDA driver not found (libcuda.so.1)"), probe(d, true));
    }

    @Test
    void cuInitErrorsCarryTheirNameAndCode() {
        FakeDriver d = new FakeDriver();
        d.initResult = 100;
        assertEquals("cuInit failed: CUDA_ERROR_NO_DEVICE (100)", probe(d, true).detail());
        d.initResult = 803;
        assertEquals("cuInit failed: CUDA_ERROR_SYSTEM_DRIVER_MISMATCH (803)", probe(d, true).detail());
    }

    @Test
    void aDriverOlderThanTheKernelsToolkitIsAnInsufficientDriver() {
        FakeDriver d = new FakeDriver();
        d.version = 12040;
        Availability a = probe(d, true);
        assertFalse(a.available());
        assertEquals("insufficient driver: it supports CUDA 12.4 (12040), the kernels were built with CUDA 13.0; "
                + "install an NVIDIA driver for CUDA 13 or newer", a.detail());
    }

    @Test
    void noDeviceAndAMissingOrdinal() {
        FakeDriver d = new FakeDriver();
        d.count = 0;
        assertEquals("no CUDA device", probe(d, true).detail());
        d.count = 1;
        assertEquals("no CUDA device 3 (1 found; set cuda.device)",
                CudaProbe.probe(d, kernels(true), 3).availability().detail());
    }

    @Test
    void aDeviceOlderThanSm80() {
        FakeDriver d = new FakeDriver();
        d.name = "Tesla T4";
        d.major = 7;
        d.minor = 5;
        assertEquals("Tesla T4 has compute capability 7.5; the CUDA kernels need 8.0 or newer (built for "
                + "sm_80,sm_90,compute_90)", probe(d, true).detail());
    }

    @Test
    void aBuildWithoutKernelsSaysSoAndWhatItFound() {
        Availability a = probe(new FakeDriver(), false);
        assertFalse(a.available());
        assertTrue(a.detail().startsWith("built without CUDA kernels: no nvcc found (device: NVIDIA A100-SXM4-80GB, "
                + "compute capability 8.0, 80.0 GiB, 108 SMs, driver CUDA 13.0)"), a.detail());
    }

    @Test
    void aGoodDeviceIsAvailableWithItsCapabilityAndMemory() {
        FakeDriver d = new FakeDriver();
        d.name = "NVIDIA H100 80GB HBM3";
        d.major = 9;
        d.sms = 132;
        CudaProbe.Result r = CudaProbe.probe(d, kernels(true), 0);
        assertTrue(r.availability().available());
        assertTrue(r.availability().detail().startsWith("NVIDIA H100 80GB HBM3, compute capability 9.0, 80.0 GiB, "
                + "132 SMs, driver CUDA 13.0; kernels CUDA 13.0 (sm_80,sm_90,compute_90); "), r.availability().detail());
        assertEquals(132, r.device().multiprocessors());
    }

    @Test
    void aThrowingDriverIsAReasonNotACrash() {
        FakeDriver d = new FakeDriver() {
            @Override
            public int init() {
                throw new UnsatisfiedLinkError("symbol cuInit missing");
            }
        };
        Availability a = probe(d, true);
        assertFalse(a.available());
        assertTrue(a.detail().startsWith("CUDA probe failed: java.lang.UnsatisfiedLinkError: symbol cuInit missing"));
    }

    @Test
    void attributeErrorsAreReported() {
        FakeDriver d = new FakeDriver();
        d.attributeResult = 101;
        assertEquals("querying CUDA device 0 failed: CUDA_ERROR_INVALID_DEVICE (101)", probe(d, true).detail());
    }
}
