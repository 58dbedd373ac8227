package dev.isthmus.backend.onednn;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URLClassLoader;
import java.net.URLConnection;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class NativeExtractorTest {
    private static final ClassLoader LOADER = NativeExtractorTest.class.getClassLoader();

    private static long entrySize(String lib) throws IOException {
        URLConnection c = LOADER.getResource(NativeExtractor.RESOURCE_DIR + lib).openConnection();
        c.setUseCaches(false);
        return c.getContentLengthLong();
    }

    private static void assertComplete(NativeExtractor.Extracted e) throws IOException {
        assertEquals(NativeExtractor.LIBRARIES.size(), e.libraries().size());
        for (int i = 0; i < e.libraries().size(); i++) {
            Path p = e.libraries().get(i);
            assertEquals(NativeExtractor.LIBRARIES.get(i), p.getFileName().toString());
            assertEquals(entrySize(NativeExtractor.LIBRARIES.get(i)), Files.size(p), p.toString());
        }
        try (Stream<Path> files = Files.list(e.directory())) {
            assertTrue(files.noneMatch(f -> f.toString().endsWith(".tmp")), "temporary files left behind");
        }
    }

    @Test
    void extractsIntoAVersionedDirectoryOnce(@TempDir Path root) throws Exception {
        NativeExtractor.Extracted e = NativeExtractor.extract(LOADER, root);
        assertEquals(root.resolve("native").resolve("dnnl-" + e.version()), e.directory());
        assertTrue(e.version().matches("\\d+\\.\\d+(\\.\\d+)?-\\d+\\.\\d+\\.\\d+"), e.version());
        assertComplete(e);

        FileTime old = FileTime.fromMillis(1_000_000L);
        for (Path p : e.libraries()) {
            Files.setLastModifiedTime(p, old);
        }
        NativeExtractor.Extracted again = NativeExtractor.extract(LOADER, root);
        for (Path p : again.libraries()) {
            assertEquals(old, Files.getLastModifiedTime(p), "complete files are not copied again");
        }
    }

    @Test
    void replacesATruncatedFile(@TempDir Path root) throws Exception {
        NativeExtractor.Extracted e = NativeExtractor.extract(LOADER, root);
        Path dnnl = e.libraries().get(1);
        Files.write(dnnl, new byte[] {1, 2, 3});
        assertComplete(NativeExtractor.extract(LOADER, root));
    }

    @Test
    void concurrentThreadsAndClassLoadersGetCompleteFiles(@TempDir Path root) throws Exception {
        int threads = 4;
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        CountDownLatch start = new CountDownLatch(1);
        List<Future<NativeExtractor.Extracted>> results = new ArrayList<>();
        try {
            for (int i = 0; i < threads; i++) {
                results.add(pool.submit((Callable<NativeExtractor.Extracted>) () -> {
                    start.await();
                    return NativeExtractor.extract(LOADER, root);
                }));
            }
            start.countDown();
            for (Future<NativeExtractor.Extracted> f : results) {
                assertComplete(f.get(5, TimeUnit.MINUTES));
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void concurrentProcessesGetCompleteFiles(@TempDir Path root) throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<Process> processes = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            processes.add(new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
                    ExtractMain.class.getName(), root.toString()).redirectErrorStream(true).start());
        }
        for (Process p : processes) {
            String output = new String(p.getInputStream().readAllBytes());
            assertTrue(p.waitFor(5, TimeUnit.MINUTES));
            assertEquals(0, p.exitValue(), output);
        }
        assertComplete(NativeExtractor.extract(LOADER, root));
    }

    @Test
    void missingJarIsReported(@TempDir Path root) throws Exception {
        try (URLClassLoader empty = new URLClassLoader(new java.net.URL[0], ClassLoader.getPlatformClassLoader())) {
            NativeExtractor.NativesUnavailable e = assertThrows(NativeExtractor.NativesUnavailable.class,
                    () -> NativeExtractor.extract(empty, root));
            assertTrue(e.getMessage().startsWith(NativeExtractor.MISSING_JAR), e.getMessage());
        }
    }

    /** Extracts into the directory given as argument; run as a separate JVM by the test above. */
    public static final class ExtractMain {
        public static void main(String[] args) throws Exception {
            NativeExtractor.Extracted e = NativeExtractor.extract(ExtractMain.class.getClassLoader(), Path.of(args[0]));
            System.out.println(e.directory());
        }
    }
}
