package dev.isthmus.engine.format;

import dev.isthmus.engine.SharedData;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.engine.gguf.GgufFile;
import dev.isthmus.engine.llama2c.Llama2cCheckpoint;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelFilesTest {
    @TempDir
    Path dir;

    /** Misleading names (links, not copies, of the shared files) prove detection is by content. */
    private Path linkAs(String shared, String name) throws IOException {
        return Files.createSymbolicLink(dir.resolve(name), SharedData.file(shared).toAbsolutePath());
    }

    @Test
    void detectsGgufByContent() throws IOException {
        try (ModelFile m = ModelFiles.open(linkAs("models/stories260K.gguf", "model.bin"), null)) {
            assertInstanceOf(GgufFile.class, m);
            assertEquals("gguf", m.format());
            assertEquals(48, m.tensorInfos().size());
        }
        // A tokenizer path is ignored for GGUF, which carries its own vocabulary.
        try (ModelFile m = ModelFiles.open(SharedData.file("models/stories260K.gguf"), SharedData.file("llama2c/tok512.bin"))) {
            assertEquals(512, m.metadata().getStringArray("tokenizer.ggml.tokens").length);
        }
    }

    @Test
    void detectsLlama2cByContent() throws IOException {
        try (ModelFile m = ModelFiles.open(linkAs("llama2c/stories260K.bin", "model.gguf"),
                SharedData.file("llama2c/tok512.bin"))) {
            assertInstanceOf(Llama2cCheckpoint.class, m);
            assertEquals("llama2c", m.format());
            assertEquals("llama", m.metadata().require("general.architecture"));
            assertEquals(512, m.metadata().getStringArray("tokenizer.ggml.tokens").length);
            assertEquals(47, m.tensorInfos().size());
        }
    }

    @Test
    void llama2cNeedsATokenizer() {
        ModelFormatException e = assertThrows(ModelFormatException.class,
                () -> ModelFiles.open(SharedData.file("llama2c/stories260K.bin"), null));
        assertTrue(e.getMessage().contains("stories260K.bin") && e.getMessage().contains("tokenizer.bin"), e.getMessage());
    }

    @Test
    void rejectsUnknownFormats() throws IOException {
        for (String name : new String[] {"README.md", "llama2c/tok512.bin", "golden/stories260K.bos-pos0.logits.f32"}) {
            ModelFormatException e = assertThrows(ModelFormatException.class,
                    () -> ModelFiles.open(SharedData.file(name), null));
            assertTrue(e.getMessage().contains("unrecognized model format"), e.getMessage());
        }
        Path empty = Files.write(dir.resolve("empty"), new byte[0]);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> ModelFiles.open(empty, null));
        assertTrue(e.getMessage().contains("unrecognized model format") && e.getMessage().contains("truncated"),
                e.getMessage());
        assertThrows(UncheckedIOException.class, () -> ModelFiles.open(dir.resolve("missing"), null));
    }
}
