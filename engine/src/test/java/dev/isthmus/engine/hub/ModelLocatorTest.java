package dev.isthmus.engine.hub;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Downloads from a real HTTP server on loopback that behaves like the hub's resolve endpoint. */
class ModelLocatorTest {
    @TempDir
    Path cache;

    private HttpServer server;
    private final byte[] content = new byte[300_000];
    private final List<String> ranges = new ArrayList<>();
    private String etag;

    @BeforeEach
    void start() throws Exception {
        new Random(7).nextBytes(content);
        etag = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(content));
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/owner/repo/resolve/main/models/m.gguf", this::serve);
        server.start();
    }

    @AfterEach
    void stop() {
        server.stop(0);
    }

    private void serve(HttpExchange ex) throws IOException {
        String range = ex.getRequestHeaders().getFirst("Range");
        ranges.add(range);
        int from = range == null ? 0 : Integer.parseInt(range.replaceAll("bytes=(\\d+)-", "$1"));
        ex.getResponseHeaders().add("ETag", "\"" + etag + "\"");
        ex.sendResponseHeaders(range == null ? 200 : 206, content.length - from);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(content, from, content.length - from);
        }
    }

    private ModelLocator locator() {
        URI endpoint = URI.create("http://127.0.0.1:" + server.getAddress().getPort());
        return new ModelLocator(cache, endpoint, null, null);
    }

    @Test
    void downloadsOnceIntoTheCache() throws IOException {
        Path p = locator().resolve("hf:owner/repo/models/m.gguf");
        assertEquals(cache.resolve("hf/owner/repo/models/m.gguf"), p);
        assertArrayEquals(content, Files.readAllBytes(p));
        assertEquals(1, ranges.size());
        locator().resolve("hf:owner/repo/models/m.gguf");
        assertEquals(1, ranges.size(), "a cached file must not be downloaded again");
    }

    @Test
    void resumesAPartialDownload() throws IOException {
        Path part = cache.resolve("hf/owner/repo/models/m.gguf.part");
        Files.createDirectories(part.getParent());
        Files.write(part, Arrays.copyOf(content, 123_456));
        Path p = locator().resolve("hf:owner/repo/models/m.gguf");
        assertEquals(List.of("bytes=123456-"), ranges);
        assertArrayEquals(content, Files.readAllBytes(p));
        assertFalse(Files.exists(part));
    }

    @Test
    void rejectsContentThatDoesNotMatchTheChecksum() throws IOException {
        Path part = cache.resolve("hf/owner/repo/models/m.gguf.part");
        Files.createDirectories(part.getParent());
        byte[] corrupt = Arrays.copyOf(content, 1000);
        corrupt[10] ^= 1;
        Files.write(part, corrupt);
        UncheckedIOException e = assertThrows(UncheckedIOException.class,
                () -> locator().resolve("hf:owner/repo/models/m.gguf"));
        assertTrue(e.getMessage().contains("checksum mismatch"), e.getMessage());
        assertFalse(Files.exists(cache.resolve("hf/owner/repo/models/m.gguf")));
        assertFalse(Files.exists(part), "a corrupt partial file must not be resumed");
    }

    @Test
    void missingFileNamesTheUrl() {
        UncheckedIOException e = assertThrows(UncheckedIOException.class,
                () -> locator().resolve("hf:owner/repo/nothing.gguf"));
        assertTrue(e.getMessage().contains("HTTP 404"), e.getMessage());
        assertTrue(e.getMessage().contains("/owner/repo/resolve/main/nothing.gguf"), e.getMessage());
    }

    @Test
    void badReferencesAndMissingLocalFilesAreClear() {
        assertThrows(IllegalArgumentException.class, () -> locator().resolve("hf:owner/repo"));
        assertThrows(IllegalArgumentException.class, () -> locator().resolve("hf:owner/repo/../../etc/passwd"));
        UncheckedIOException e = assertThrows(UncheckedIOException.class,
                () -> locator().resolve(cache.resolve("absent.gguf").toString()));
        assertTrue(e.getMessage().contains("absent.gguf"), e.getMessage());
    }
}
