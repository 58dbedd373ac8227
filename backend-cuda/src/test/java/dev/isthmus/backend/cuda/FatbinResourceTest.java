package dev.isthmus.backend.cuda;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The packaged fatbin holds SASS for sm_80 and sm_90 and PTX for compute_90, and every kernel the backend launches
 * (the {@link Kernel} table) is a global function of both ELFs and a PTX entry whose parameters have the sizes the
 * backend packs. Skipped only when the build recorded that nvcc was absent; if nvcc was present, a missing or
 * broken fatbin fails.
 */
class FatbinResourceTest {
    private static Fatbin fatbin;

    @BeforeAll
    static void load() {
        KernelResources k = KernelResources.load();
        Assumptions.assumeTrue(k.hasFatbin(), k.fatbinAbsenceReason());
        fatbin = Fatbin.parse(k.fatbin());
    }

    @Test
    void hasSm80AndSm90CodeAndCompute90Ptx() {
        assertTrue(fatbin.entry(Fatbin.Kind.ELF, 80).isPresent(), "no sm_80 ELF in " + fatbin.entries());
        assertTrue(fatbin.entry(Fatbin.Kind.ELF, 90).isPresent(), "no sm_90 ELF in " + fatbin.entries());
        assertTrue(fatbin.entry(Fatbin.Kind.PTX, 90).isPresent(), "no compute_90 PTX in " + fatbin.entries());
        for (Fatbin.Entry e : fatbin.entries()) {
            assertFalse(e.compressed(), e + " is compressed: the build must pass --no-compress");
        }
    }

    @Test
    void everyLaunchedKernelIsAFunctionOfBothElfs() {
        for (int arch : new int[] {80, 90}) {
            Fatbin.Entry elf = fatbin.entry(Fatbin.Kind.ELF, arch).orElseThrow();
            Set<String> functions = new HashSet<>(fatbin.elfFunctions(elf));
            List<String> missing = new ArrayList<>();
            for (Kernel k : Kernel.values()) {
                if (!functions.contains(k.symbol())) {
                    missing.add(k.symbol());
                }
            }
            assertTrue(missing.isEmpty(), "sm_" + arch + " lacks " + missing);
        }
    }

    @Test
    void everyLaunchedKernelIsAPtxEntryWithTheParametersTheBackendPacks() {
        Map<String, List<String>> entries = Fatbin.ptxEntries(fatbin.ptx(fatbin.entry(Fatbin.Kind.PTX, 90).orElseThrow()));
        assertEquals(Kernel.values().length, entries.size(),
                "the PTX has kernels the Kernel table does not know, or lacks some: " + entries.keySet());
        for (Kernel k : Kernel.values()) {
            List<String> types = entries.get(k.symbol());
            if (types == null) {
                fail("PTX has no .entry " + k.symbol());
            }
            assertEquals(k.params().size(), types.size(), k.symbol() + " parameter count");
            for (int i = 0; i < types.size(); i++) {
                String expected = switch (k.params().get(i)) {
                    case PTR, I64 -> "u64";
                    case I32 -> "u32";
                    case F32 -> "f32";
                };
                assertEquals(expected, types.get(i), k.symbol() + " parameter " + i + " (" + k.paramNames().get(i) + ")");
            }
        }
    }

    @Test
    void theBuildRecordedItsTargets() {
        KernelResources k = KernelResources.load();
        assertEquals("sm_80,sm_90,compute_90", k.targets());
        assertTrue(k.cudaMajor() >= 12, "CUDA version " + k.cudaVersion());
    }
}
