package dev.isthmus.backend.onednn;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.JarURLConnection;
import java.net.URL;
import java.net.URLConnection;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Properties;

/**
 * Copies the oneDNN shared libraries out of the {@code org.bytedeco:dnnl} natives jar on the class path into a
 * versioned cache directory, {@code $ISTHMUS_CACHE/native/dnnl-<version>/} (default {@code ~/.cache/isthmus}),
 * where {@code dlopen} can load them.
 *
 * <p>Safe for concurrent JVMs and threads: each file is written to a temporary file in the same directory and
 * renamed over the target atomically, so a reader only ever sees complete files (a library being replaced
 * stays valid for whoever has it mapped); a lock file serializes extractors so that the copying happens once.
 * An existing file whose size differs from the jar entry's is extracted again.
 */
final class NativeExtractor {
    /** Where the JavaCPP presets put the natives of this platform inside the jar. */
    static final String RESOURCE_DIR = "org/bytedeco/dnnl/linux-x86_64/";
    /** Load order: the OpenMP runtime first, then oneDNN (whose RUNPATH is {@code $ORIGIN}). */
    static final List<String> LIBRARIES = List.of("libgomp.so.1", "libdnnl.so.3");
    static final String MISSING_JAR = "org.bytedeco:dnnl linux-x86_64 natives jar not on the class path";

    private static final String POM_PROPERTIES = "META-INF/maven/org.bytedeco/dnnl/pom.properties";

    /** The extracted libraries, in load order, and the natives jar version they came from. */
    record Extracted(Path directory, List<Path> libraries, String version) {
    }

    /** Thrown with a message for humans when the natives cannot be provided. */
    static final class NativesUnavailable extends Exception {
        private static final long serialVersionUID = 1L;

        NativesUnavailable(String message) {
            super(message);
        }

        NativesUnavailable(String message, Throwable cause) {
            super(message, cause);
        }
    }

    private NativeExtractor() {
    }

    /** The cache root: {@code $ISTHMUS_CACHE}, or {@code ~/.cache/isthmus}. */
    static Path defaultCacheRoot() {
        String env = System.getenv("ISTHMUS_CACHE");
        return env != null && !env.isBlank() ? Path.of(env)
                : Path.of(System.getProperty("user.home"), ".cache", "isthmus");
    }

    /** Whether this JVM runs on the one platform the dependency ships natives for. */
    static String unsupportedPlatform() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "");
        if (os.contains("linux") && (arch.equals("amd64") || arch.equals("x86_64"))) {
            return null;
        }
        return "the oneDNN natives are packaged for linux-x86_64 only; this JVM runs on "
                + System.getProperty("os.name") + "/" + arch;
    }

    /**
     * Extracts (if needed) the libraries visible to {@code loader} under {@code cacheRoot}.
     *
     * @throws NativesUnavailable if the jar is missing from {@code loader}'s class path or copying fails
     */
    static Extracted extract(ClassLoader loader, Path cacheRoot) throws NativesUnavailable {
        List<URL> urls = new ArrayList<>();
        for (String lib : LIBRARIES) {
            URL url = loader.getResource(RESOURCE_DIR + lib);
            if (url == null) {
                throw new NativesUnavailable(MISSING_JAR + " (no " + RESOURCE_DIR + lib + ")");
            }
            urls.add(url);
        }
        String version = version(loader, urls.get(1));
        Path dir = cacheRoot.resolve("native").resolve("dnnl-" + version);
        try {
            Files.createDirectories(dir);
            List<Path> out = new ArrayList<>();
            try (FileChannel lockFile = FileChannel.open(dir.resolve(".lock"),
                    StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
                FileLock lock = lock(lockFile);
                try {
                    for (int i = 0; i < LIBRARIES.size(); i++) {
                        out.add(extractOne(urls.get(i), dir.resolve(LIBRARIES.get(i))));
                    }
                } finally {
                    lock.release();
                }
            }
            return new Extracted(dir, List.copyOf(out), version);
        } catch (IOException | UncheckedIOException e) {
            throw new NativesUnavailable("cannot extract the oneDNN natives into " + dir + ": " + e, e);
        }
    }

    /**
     * The inter-process lock. Another thread of this JVM holding it (possibly through another class loader)
     * shows as {@link OverlappingFileLockException}: wait and retry.
     */
    private static FileLock lock(FileChannel channel) throws IOException {
        long deadline = System.nanoTime() + 120_000_000_000L;
        while (true) {
            try {
                return channel.lock();
            } catch (OverlappingFileLockException e) {
                if (System.nanoTime() > deadline) {
                    throw new IOException("timed out waiting for the extraction lock held in this JVM", e);
                }
                try {
                    Thread.sleep(20);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw new IOException("interrupted while waiting for the extraction lock", ie);
                }
            }
        }
    }

    private static Path extractOne(URL url, Path target) throws IOException {
        URLConnection c = url.openConnection();
        c.setUseCaches(false);
        long expected = c.getContentLengthLong();
        if (Files.isRegularFile(target) && expected >= 0 && Files.size(target) == expected) {
            return target;
        }
        Path tmp = Files.createTempFile(target.getParent(), target.getFileName() + ".", ".tmp");
        try {
            try (InputStream in = c.getInputStream()) {
                Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
            }
            if (expected >= 0 && Files.size(tmp) != expected) {
                throw new IOException("short copy of " + url + ": " + Files.size(tmp) + " of " + expected + " bytes");
            }
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
        return target;
    }

    /**
     * The natives jar's Maven version from its {@code pom.properties} (kept by shading), else from the jar's
     * file name, else a fingerprint of the library entry.
     */
    static String version(ClassLoader loader, URL libraryUrl) {
        try (InputStream in = loader.getResourceAsStream(POM_PROPERTIES)) {
            if (in != null) {
                Properties p = new Properties();
                p.load(in);
                String v = p.getProperty("version");
                if (v != null && v.matches("[A-Za-z0-9._-]+")) {
                    return v;
                }
            }
        } catch (IOException ignored) {
            // fall through to the other sources
        }
        String s = libraryUrl.toString();
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("/dnnl-([A-Za-z0-9._-]+)-linux-x86_64\\.jar!").matcher(s);
        if (m.find()) {
            return m.group(1);
        }
        try {
            URLConnection c = libraryUrl.openConnection();
            if (c instanceof JarURLConnection j && j.getJarEntry() != null) {
                return "crc" + Long.toHexString(j.getJarEntry().getCrc()) + "-" + j.getJarEntry().getSize();
            }
            return "size" + c.getContentLengthLong();
        } catch (IOException e) {
            return "unknown";
        }
    }
}
