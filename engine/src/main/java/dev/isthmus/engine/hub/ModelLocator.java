package dev.isthmus.engine.hub;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Locale;
import java.util.Optional;

/**
 * Resolves a model argument: a local path, or {@code hf:OWNER/REPO/PATH/IN/REPO} downloaded once from the
 * Hugging Face hub into a cache directory.
 *
 * <p>Downloads go to a {@code .part} file that later attempts resume with an HTTP range request, and are
 * verified before they are moved into place: the size against the server's, and the SHA-256 against the
 * hub's ETag when that is a SHA-256 (as it is for LFS files). The cache directory is {@code ISTHMUS_CACHE}
 * (default {@code ~/.cache/isthmus}); the endpoint is {@code HF_ENDPOINT} (default
 * {@code https://huggingface.co}); a token in {@code HF_TOKEN} is sent as a bearer token.
 */
public final class ModelLocator {
    /** The prefix of hub references. */
    public static final String HF_PREFIX = "hf:";

    private final Path cacheDir;
    private final URI endpoint;
    private final String token;
    private final PrintStream progress;
    private final HttpClient http;

    public ModelLocator(Path cacheDir, URI endpoint, String token, PrintStream progress) {
        this.cacheDir = cacheDir;
        this.endpoint = endpoint;
        this.token = token;
        this.progress = progress;
        this.http = HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NORMAL)
                .connectTimeout(Duration.ofSeconds(30)).build();
    }

    /** A locator configured from the environment, reporting progress on {@code progress} (may be null). */
    public static ModelLocator fromEnvironment(PrintStream progress) {
        String cache = System.getenv("ISTHMUS_CACHE");
        Path dir = cache != null && !cache.isBlank() ? Path.of(cache)
                : Path.of(System.getProperty("user.home"), ".cache", "isthmus");
        String ep = Optional.ofNullable(System.getenv("HF_ENDPOINT")).filter(s -> !s.isBlank())
                .orElse("https://huggingface.co");
        return new ModelLocator(dir, URI.create(ep), System.getenv("HF_TOKEN"), progress);
    }

    /**
     * The local file (or Hugging Face checkpoint directory) for {@code spec}, downloading it first if it is a hub
     * reference not yet cached.
     *
     * @throws UncheckedIOException with a message naming the file or URL when it cannot be had
     */
    public Path resolve(String spec) {
        if (!spec.startsWith(HF_PREFIX)) {
            Path p = Path.of(spec);
            if (!Files.isRegularFile(p) && !Files.isDirectory(p)) { // a directory: a Hugging Face checkpoint
                throw new UncheckedIOException(new NoSuchFileException(spec));
            }
            return p;
        }
        String ref = spec.substring(HF_PREFIX.length());
        String[] parts = ref.split("/", 3);
        if (parts.length < 3 || parts[0].isEmpty() || parts[1].isEmpty() || parts[2].isEmpty()
                || ref.contains("..") || ref.contains("\\")) {
            throw new IllegalArgumentException("bad hub reference '" + spec
                    + "': expected hf:OWNER/REPO/PATH/IN/REPO");
        }
        Path target = cacheDir.resolve("hf").resolve(parts[0]).resolve(parts[1]).resolve(parts[2]);
        if (Files.isRegularFile(target)) {
            return target;
        }
        URI url = endpoint.resolve("/" + parts[0] + "/" + parts[1] + "/resolve/main/" + parts[2]);
        try {
            download(url, target);
        } catch (IOException e) {
            throw new UncheckedIOException("download of " + url + " failed: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new UncheckedIOException(new IOException("download of " + url + " interrupted"));
        }
        return target;
    }

    private void download(URI url, Path target) throws IOException, InterruptedException {
        Files.createDirectories(target.getParent());
        Path part = target.resolveSibling(target.getFileName() + ".part");
        long have = Files.exists(part) ? Files.size(part) : 0;
        HttpRequest.Builder req = HttpRequest.newBuilder(url).GET();
        if (token != null && !token.isBlank()) {
            req.header("Authorization", "Bearer " + token);
        }
        if (have > 0) {
            req.header("Range", "bytes=" + have + "-");
        }
        HttpResponse<InputStream> resp = http.send(req.build(), HttpResponse.BodyHandlers.ofInputStream());
        int status = resp.statusCode();
        boolean resumed = status == 206;
        if (status != 200 && !resumed) {
            resp.body().close();
            throw new IOException("HTTP " + status + " for " + url);
        }
        if (!resumed) {
            have = 0;
        }
        long remaining = resp.headers().firstValueAsLong("Content-Length").orElse(-1);
        long total = remaining < 0 ? -1 : have + remaining;
        String sha256 = expectedSha256(resp);
        try (InputStream in = resp.body();
             OutputStream out = Files.newOutputStream(part, StandardOpenOption.CREATE,
                     resumed ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING)) {
            byte[] buf = new byte[1 << 16];
            long done = have;
            long lastReport = 0;
            for (int n; (n = in.read(buf)) > 0; ) {
                out.write(buf, 0, n);
                done += n;
                if (progress != null && System.nanoTime() - lastReport > 200_000_000L) {
                    report(url, done, total);
                    lastReport = System.nanoTime();
                }
            }
            if (progress != null) {
                report(url, done, total);
                progress.println();
            }
        }
        long size = Files.size(part);
        if (total >= 0 && size != total) {
            throw new IOException("incomplete download: " + size + " of " + total + " bytes (run again to resume)");
        }
        if (sha256 != null) {
            String actual = sha256Of(part);
            if (!actual.equals(sha256)) {
                Files.delete(part);
                throw new IOException("checksum mismatch: expected sha256 " + sha256 + ", got " + actual);
            }
        }
        Files.move(part, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    /** The hub's ETag of LFS files (also in X-Linked-Etag behind redirects) is the SHA-256 of the content. */
    private static String expectedSha256(HttpResponse<?> resp) {
        for (String h : new String[] {"X-Linked-Etag", "ETag"}) {
            Optional<String> v = resp.headers().firstValue(h);
            if (v.isPresent()) {
                String tag = v.get().replace("W/", "").replace("\"", "").trim().toLowerCase(Locale.ROOT);
                if (tag.matches("[0-9a-f]{64}")) {
                    return tag;
                }
            }
        }
        return null;
    }

    private static String sha256Of(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) {
                md.update(buf, 0, n);
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private void report(URI url, long done, long total) {
        String name = url.getPath().substring(url.getPath().lastIndexOf('/') + 1);
        if (total > 0) {
            int width = 30;
            int filled = (int) (width * done / total);
            progress.printf("\r%s [%s%s] %5.1f%% %s/%s", name, "=".repeat(filled), " ".repeat(width - filled),
                    100.0 * done / total, mib(done), mib(total));
        } else {
            progress.printf("\r%s %s", name, mib(done));
        }
        progress.flush();
    }

    private static String mib(long bytes) {
        return String.format(Locale.ROOT, "%.1f MiB", bytes / 1048576.0);
    }
}
